// Activations of the fused kernels, selected by a compile-time code shared with
// effgan/ops/_activation.py and kernels/_activation.py:
//   0 identity, 1 relu, 2 leaky_relu, 3 silu, 4 tanh.
//
// float uses a branch-free exp (Cody-Waite range reduction + a degree-5 minimax polynomial, about
// 1 ulp) written in plain arithmetic; libm's expf has no vector form. Everything here is written
// over a lane type V (float, or simd.h's vf8 for eight lanes), so a kernel's vector loop and its
// scalar tail evaluate the same expressions. double (the gradcheck path) uses libm.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "simd.h"

namespace effgan {

enum ActCode : int { kIdentity = 0, kRelu = 1, kLeakyRelu = 2, kSilu = 3, kTanh = 4 };
constexpr int kNumActs = 5;

template <typename V>
EFFGAN_INLINE V exp_approx(V x) {
  // Clamped so that 2^n below stays a normal float; exp(-87) ~ 1.6e-38, exp(88) ~ 1.65e38.
  x = clamp_lanes(x, -87.0f, 88.0f);
  // n = round(x / ln 2) by the 1.5 * 2^23 trick (exact for |n| < 2^22, no rounding instruction).
  const float kRound = 12582912.0f;
  const V n = fmadd(x, 1.44269504088896341f, kRound) - kRound;
  // r = x - n ln2 in two pieces, so that r carries no rounding error from the product.
  V r = fmadd(n, -0.693359375f, x);
  r = fmadd(n, 2.12194440e-4f, r);
  // exp(r) ~ 1 + r + r^2 (c2 + c3 r + c4 r^2 + c5 r^3 + c6 r^4 + c7 r^5), the bracket evaluated in
  // pairs (Estrin's scheme): three dependent steps instead of Horner's five. The silu and tanh loops
  // are bound by this chain's latency, not by the number of instructions.
  const V r2 = r * r, r4 = r2 * r2;
  const V c23 = fmadd(r, 1.6666665459e-1f, 5.0000001201e-1f);
  const V c45 = fmadd(r, 8.3334519073e-3f, 4.1665795894e-2f);
  const V c67 = fmadd(r, 1.9875691500e-4f, 1.3981999507e-3f);
  const V bracket = fmadd(r4, c67, fmadd(r2, c45, c23));
  return fmadd(bracket, r2, r + 1.0f) * exp2_int(n);
}

EFFGAN_INLINE double exp_approx(double x) { return std::exp(x); }

template <typename V>
EFFGAN_INLINE V sigmoid(V z) {
  return splat<V>(1) / (splat<V>(1) + exp_approx(-z));
}

template <typename V>
EFFGAN_INLINE V tanh_act(V z) {
  // From exp(-2|z|): no overflow for large |z|. Near 0, 1 - t cancels (a relative error of about
  // ulp / |z|: all of tanh lost below 1e-8), so |z| < 0.25 takes tanh's odd Taylor series to z^9,
  // whose first omitted term is < 1e-8 of tanh(z) there.
  const V zero = splat<V>(0);
  const V az = z < zero ? -z : z;
  const V t = exp_approx(splat<V>(-2) * az);
  V r = (splat<V>(1) - t) / (splat<V>(1) + t);
  r = z < zero ? -r : r;
  const V z2 = z * z;
  // tanh's Taylor series z - z^3/3 + 2z^5/15 - 17z^7/315 + 62z^9/2835, by Horner in z^2.
  const V c9 = splat<V>(0.021869488536155203f);
  const V c7 = splat<V>(-0.05396825396825397f);
  const V c5 = splat<V>(0.13333333333333333f);
  const V c3 = splat<V>(-0.3333333333333333f);
  const V series = fmadd(z * z2, fmadd(z2, fmadd(z2, fmadd(z2, c9, c7), c5), c3), z);
  return az < splat<V>(0.25f) ? series : r;
}

template <>
EFFGAN_INLINE double tanh_act<double>(double z) {
  return std::tanh(z);
}

// act(z); slope is a scalar of the accumulation type, applied to every lane.
template <int ACT, typename V, typename S>
EFFGAN_INLINE V act_forward(V z, S slope) {
  const V zero = splat<V>(0);
  if constexpr (ACT == kRelu) {
    return z < zero ? zero : z;  // a NaN passes through, as in torch.relu (a plane's NaN statistics show)
  } else if constexpr (ACT == kLeakyRelu) {
    return z > zero ? z : z * slope;
  } else if constexpr (ACT == kSilu) {
    return z / (splat<V>(1) + exp_approx(-z));  // z * sigmoid(z) with one division and no product
  } else if constexpr (ACT == kTanh) {
    return tanh_act(z);
  } else {
    return z;
  }
}

// d act(z) / dz at the pre-activation z
template <int ACT, typename V, typename S>
EFFGAN_INLINE V act_grad(V z, S slope) {
  const V one = splat<V>(1);
  if constexpr (ACT == kRelu) {
    return z > splat<V>(0) ? one : splat<V>(0);
  } else if constexpr (ACT == kLeakyRelu) {
    return z > splat<V>(0) ? one : splat<V>(slope);
  } else if constexpr (ACT == kSilu) {
    const V s = sigmoid(z);
    return s * (one + z * (one - s));
  } else if constexpr (ACT == kTanh) {
    const V t = tanh_act(z);
    return one - t * t;
  } else {
    return one;
  }
}

// g * silu'(z). silu'(z) = s (1 + z (1 - s)) with s = 1 / (1 + e), e = exp(-z), is evaluated as
// (1 + e + z e) / (1 + e)^2: one division, and after the exp a chain of three dependent steps
// instead of five (these loops are bound by that chain's latency). z is floored at -40 first so
// that (1 + e)^2 stays finite; below -40 |silu'(z)| < 2e-16, and so is the floor's error. Measured
// on a 64K-value loop (AVX2, one thread): 0.77 -> 0.66 ns a value; largest error against double
// over [-100, 100]: 2.2e-7, against 9.7e-7 for the product form.
template <typename V>
EFFGAN_INLINE V silu_backward(V g, V z) {
  const V zc = floor_lanes(z, -40.0f);
  const V e = exp_approx(-zc);
  const V d = splat<V>(1) + e;
  return (g * fmadd(zc, e, d)) / (d * d);
}

// double (the gradcheck path): the product form with libm's exp, no floor.
EFFGAN_INLINE double silu_backward(double g, double z) { return g * act_grad<kSilu>(z, 0.0); }

// g * tanh'(z) = g (1 - t^2) = g 4e / (1 + e)^2 with e = exp(-2|z|): the same short chain as
// silu_backward, no sign handling (tanh'(z) is even), and no cancellation in 1 - t^2 where t is
// near 1. Measured as above: 0.81 -> 0.69 ns a value; largest error 1.3e-7 instead of 1.9e-7.
template <typename V>
EFFGAN_INLINE V tanh_backward(V g, V z) {
  const V e = exp_approx(splat<V>(-2) * abs_lanes(z));
  const V d = splat<V>(1) + e;
  return (g * (splat<V>(4) * e)) / (d * d);
}

EFFGAN_INLINE double tanh_backward(double g, double z) { return g * act_grad<kTanh>(z, 0.0); }

// The gradient g of act(z) carried back to z: g * act'(z), applied the way torch's backward
// formulas apply it. ReLU and leaky ReLU select (torch's threshold_backward: a NaN gradient where
// ReLU is flat becomes 0 instead of spreading through the norm's sums), the smooth activations
// multiply.
template <int ACT, typename V, typename S>
EFFGAN_INLINE V act_backward(V g, V z, S slope) {
  const V zero = splat<V>(0);
  if constexpr (ACT == kRelu) {
    return z <= zero ? zero : g;
  } else if constexpr (ACT == kLeakyRelu) {
    return z > zero ? g : g * slope;
  } else if constexpr (ACT == kIdentity) {
    return g;
  } else if constexpr (ACT == kSilu) {
    return silu_backward(g, z);
  } else if constexpr (ACT == kTanh) {
    return tanh_backward(g, z);
  } else {
    return g * act_grad<ACT>(z, slope);
  }
}

// Activations whose evaluation (an exp and a division per value) costs more than a pass over
// memory: kernels keep their values between passes instead of evaluating them twice.
template <int ACT>
constexpr bool kCostlyAct = ACT == kSilu || ACT == kTanh;

// Calls f(std::integral_constant<int, ACT>{}) for the runtime code `act` (checked by the caller),
// so a generic lambda gets the activation as a compile-time constant: decltype(tag)::value.
template <typename F>
void dispatch_act(int act, F&& f) {
  switch (act) {
    case kRelu: f(std::integral_constant<int, kRelu>{}); break;
    case kLeakyRelu: f(std::integral_constant<int, kLeakyRelu>{}); break;
    case kSilu: f(std::integral_constant<int, kSilu>{}); break;
    case kTanh: f(std::integral_constant<int, kTanh>{}); break;
    default: f(std::integral_constant<int, kIdentity>{}); break;
  }
}

}  // namespace effgan
