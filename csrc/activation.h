// Activations of the fused kernels, selected by a compile-time code shared with
// effgan/ops/_activation.py and kernels/_activation.py:
//   0 identity, 1 relu, 2 leaky_relu, 3 silu, 4 tanh.
//
// float uses a branch-free exp (Cody-Waite range reduction + a degree-5 minimax polynomial, about
// 1 ulp) written in plain arithmetic so the loops that call it auto-vectorise at the baseline ISA;
// libm's expf would keep those loops scalar. double (the gradcheck path) uses libm.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#define EFFGAN_INLINE inline __attribute__((always_inline))

namespace effgan {

enum ActCode : int { kIdentity = 0, kRelu = 1, kLeakyRelu = 2, kSilu = 3, kTanh = 4 };
constexpr int kNumActs = 5;

EFFGAN_INLINE float exp_approx(float x) {
  // Clamped so that 2^n below stays a normal float; exp(-87) ~ 1.6e-38, exp(88) ~ 1.65e38.
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // n = round(x / ln 2) by the 1.5 * 2^23 trick (exact for |n| < 2^22, no rounding instruction).
  const float kRound = 12582912.0f;
  float n = (x * 1.44269504088896341f + kRound) - kRound;
  // r = x - n ln2 in two pieces, so that r carries no rounding error from the product.
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}

EFFGAN_INLINE double exp_approx(double x) { return std::exp(x); }

template <typename A>
EFFGAN_INLINE A sigmoid(A z) {
  return A(1) / (A(1) + exp_approx(-z));
}

template <typename A>
EFFGAN_INLINE A tanh_act(A z) {
  // From exp(-2|z|): no overflow and no cancellation for large |z|.
  const A az = z < A(0) ? -z : z;
  const A t = exp_approx(A(-2) * az);
  const A r = (A(1) - t) / (A(1) + t);
  return z < A(0) ? -r : r;
}

template <>
EFFGAN_INLINE double tanh_act<double>(double z) {
  return std::tanh(z);
}

// act(z)
template <int ACT, typename A>
EFFGAN_INLINE A act_forward(A z, A slope) {
  if constexpr (ACT == kRelu) {
    return z > A(0) ? z : A(0);
  } else if constexpr (ACT == kLeakyRelu) {
    return z > A(0) ? z : z * slope;
  } else if constexpr (ACT == kSilu) {
    return z * sigmoid(z);
  } else if constexpr (ACT == kTanh) {
    return tanh_act(z);
  } else {
    return z;
  }
}

// d act(z) / dz at the pre-activation z
template <int ACT, typename A>
EFFGAN_INLINE A act_grad(A z, A slope) {
  if constexpr (ACT == kRelu) {
    return z > A(0) ? A(1) : A(0);
  } else if constexpr (ACT == kLeakyRelu) {
    return z > A(0) ? A(1) : slope;
  } else if constexpr (ACT == kSilu) {
    const A s = sigmoid(z);
    return s * (A(1) + z * (A(1) - s));
  } else if constexpr (ACT == kTanh) {
    const A t = tanh_act(z);
    return A(1) - t * t;
  } else {
    return A(1);
  }
}

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
