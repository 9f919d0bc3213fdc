// Depthwise conv -> instance norm (+affine) -> activation, plus the SE squeeze y.mean((2, 3)), on
// the CPU, forward and backward.
//
// One thread owns whole (n, c) planes. The conv output z of a plane goes to a thread-local buffer
// (a plane of a few hundred KB at most stays in L2), so x is read once, z is never recomputed and y
// is written once; the statistics and the squeeze are blocked sums over that buffer, combined in
// block order (deterministic for any threading).
//
// Backward per plane: z is recomputed into the buffer; g = (dy + dsqueeze / HWo) * act'(.) goes to
// a second buffer; then dz = rstd * w * (g - mean(g) - zhat * mean(g * zhat)) overwrites z, the
// conv-weight partials sum(dz * x[tap]) are taken per plane (summed over the batch in order
// afterwards) and dx is the transposed conv of dz: for stride 1 the forward conv routine with the
// flipped kernel, writing dx directly; for stride 2 tap by tap into a deinterleaved plane buffer.
//
// The per-plane conv routines are in depthwise_plane.h, the channels_last grouping in
// channel_groups.h.
//
// Padding: zeros are skipped taps (reflect padding is applied by the caller, pad = 0 here).
// channels_last: the same per-plane kernels, each plane gathered into (and its results scattered
// out of) the plane buffers in groups of channels (see Units).
#include <ATen/Dispatch.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "channel_groups.h"
#include "depthwise_plane.h"
#include "dwconv_norm_act.h"
#include "params.h"

namespace effgan {
namespace {

using namespace depthwise;

// sum(z - shift) and sum((z - shift)^2) over the z buffer: kBlock blocks in the reductions' lane
// order (params.h), combined in order.
template <typename A>
void blocked_shifted_sums(const A* __restrict z, int64_t len, A shift, double& sum, double& sumsq) {
  sum = sumsq = 0;
  for (int64_t lo = 0; lo < len; lo += kBlock) {
    double s[2];
    lane_sums<2, A, A>(
        std::min(kBlock, len - lo),
        [&](auto v, int64_t i, auto* t) {
          using V = decltype(v);
          const V d = load<V>(z + lo + i) - shift;
          t[0] = d;
          t[1] = d * d;
        },
        s);
    sum += s[0];
    sumsq += s[1];
  }
}

// y = act(((z - shift) - mean) * scale + b); returns sum(y) (blocked, in order).
template <typename T, typename A, int ACT>
double norm_act_plane(const A* __restrict z, T* __restrict y, int64_t len, A shift, A mean, A scale, A b, A slope) {
  double total = 0;
  for (int64_t lo = 0; lo < len; lo += kBlock) {
    double s[1];
    lane_sums<1, T, A>(
        std::min(kBlock, len - lo),
        [&](auto v, int64_t i, auto* t) {
          using V = decltype(v);
          const V a = act_forward<ACT>(((load<V>(z + lo + i) - shift) - mean) * scale + b, slope);
          store(y + lo + i, a);
          t[0] = a;
        },
        s);
    total += s[0];
  }
  return total;
}

// g = (dy + gsq) * act'(zhat * w + b) into gbuf; returns sums of g and g * zhat (blocked, in order).
template <typename T, typename A, int ACT>
void grad_plane(const A* __restrict z, const T* __restrict dy, A* __restrict gbuf, int64_t len, A shift, A mean,
                A rstd, A w, A b, A gsq, A slope, double& sum_g, double& sum_gz) {
  sum_g = sum_gz = 0;
  for (int64_t lo = 0; lo < len; lo += kBlock) {
    double s[2];
    lane_sums<2, T, A>(
        std::min(kBlock, len - lo),
        [&](auto v, int64_t i, auto* t) {
          using V = decltype(v);
          const V zhat = ((load<V>(z + lo + i) - shift) - mean) * rstd;
          V g = load<V>(dy + lo + i) + gsq;
          g = act_backward<ACT>(g, zhat * w + b, slope);
          store(gbuf + lo + i, g);
          t[0] = g;
          t[1] = g * zhat;
        },
        s);
    sum_g += s[0];
    sum_gz += s[1];
  }
}

template <typename T, typename A, int ACT, int S>
void forward_planes(const T* x, const A* wt, const A* nw, const A* nb, T* y, T* squeeze, A* stats, const Geometry& g,
                    const Units& units, double eps, A slope) {
  const int64_t P = g.N * g.C, HWo = g.HWo(), HW = g.HW(), KK = g.K * g.K;
  const bool cl = units.channels_last;
  parallel_for(0, units.count(), 1, [&](int64_t u0, int64_t u1) {
    const int G = units.max_size();
    std::vector<A> z(HWo);
    std::vector<PaddedPlane<A>> xpad(G, PaddedPlane<A>(g.H, g.W, g.K, S, g.P, g.Wo));
    std::vector<A*> xin(G);
    for (int k = 0; k < G; ++k) xin[k] = xpad[k].interior();
    PlaneBufs<A> ybuf(cl ? G : 0, HWo);
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t p0 = units.first(u), n = p0 / g.C, c0 = p0 % g.C;
      const int n_planes = units.size(u);
      if (cl) gather_channels(x + n * HW * g.C + c0, g.C, g.H, g.W, n_planes, xin.data(), xpad[0].stride);
      for (int k = 0; k < n_planes; ++k) {
        const int64_t p = p0 + k, c = c0 + k;
        const A* xp = cl ? xpad[k].buf.data() : xpad[k].fill(x + p * HW);
        conv_plane<S>(xp, xpad[k].stride, wt + c * KK, z.data(), g.K, g.Ho, g.Wo);
        const A shift = plane_shift<A, A>(z.data(), HWo);  // params.h: sample_mean says why
        double sum, sumsq;
        blocked_shifted_sums(z.data(), HWo, shift, sum, sumsq);
        const double m = sum / static_cast<double>(HWo);
        const double var = std::max(sumsq / static_cast<double>(HWo) - m * m, 0.0);
        const A mean = static_cast<A>(m);
        const A rstd = static_cast<A>(1.0 / std::sqrt(var + eps));
        stats[p] = shift;
        stats[P + p] = mean;
        stats[2 * P + p] = rstd;
        const A scale = rstd * (nw ? nw[c] : A(1)), bc = nb ? nb[c] : A(0);
        const double ysum = cl ? norm_act_plane<A, A, ACT>(z.data(), ybuf[k], HWo, shift, mean, scale, bc, slope)
                               : norm_act_plane<T, A, ACT>(z.data(), y + p * HWo, HWo, shift, mean, scale, bc, slope);
        squeeze[p] = static_cast<T>(static_cast<A>(ysum / static_cast<double>(HWo)));
      }
      if (cl) scatter_channels(ybuf.ptr.data(), HWo, n_planes, y + n * HWo * g.C + c0, g.C);
    }
  });
}

template <typename T, typename A, int ACT, int S>
void backward_planes(const T* dy, const T* dsq, const T* x, const A* wt, const A* nw, const A* nb, const A* stats,
                     T* dx, A* dweight, A* sum_g_out, A* sum_gz_out, const Geometry& g, const Units& units, A slope) {
  const int64_t P = g.N * g.C, HWo = g.HWo(), HW = g.HW(), KK = g.K * g.K;
  const bool cl = units.channels_last;
  std::vector<double> taps(P * KK);
  parallel_for(0, units.count(), 1, [&](int64_t u0, int64_t u1) {
    const int G = units.max_size();
    std::vector<A> z(HWo), gb(HWo);
    std::optional<TransposeRows<A>> tr;
    if constexpr (S == 2) tr.emplace(g);
    std::vector<PaddedPlane<A>> xpad(G, PaddedPlane<A>(g.H, g.W, g.K, S, g.P, g.Wo));
    std::vector<A*> xin(G);
    for (int k = 0; k < G; ++k) xin[k] = xpad[k].interior();
    PlaneBufs<A> dyb(cl ? G : 0, HWo), dxb(cl ? G : 0, HW);
    // Stride 1: dx[hi, wi] = sum w[kh, kw] dz[hi + P - kh, wi + P - kw], the conv of dz (an Ho x Wo
    // plane) with the flipped kernel and padding K - 1 - P, whose output is H x W.
    PaddedPlane<A> dzpad(S == 1 ? g.Ho : 0, g.Wo, g.K, 1, g.K - 1 - g.P, S == 1 ? g.W : 0);
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t p0 = units.first(u), n = p0 / g.C, c0 = p0 % g.C;
      const int n_planes = units.size(u);
      if (cl) {
        gather_channels(x + n * HW * g.C + c0, g.C, g.H, g.W, n_planes, xin.data(), xpad[0].stride);
        gather_channels(dy + n * HWo * g.C + c0, g.C, g.Ho, g.Wo, n_planes, dyb.ptr.data(), g.Wo);
      }
      for (int k = 0; k < n_planes; ++k) {
        const int64_t p = p0 + k, c = c0 + k;
        const A* w = wt + c * KK;
        const A* xp = cl ? xpad[k].buf.data() : xpad[k].fill(x + p * HW);
        conv_plane<S>(xp, xpad[k].stride, w, z.data(), g.K, g.Ho, g.Wo);
        const A shift = stats[p], mean = stats[P + p], rstd = stats[2 * P + p];
        const A nwc = nw ? nw[c] : A(1), nbc = nb ? nb[c] : A(0);
        const A gsq = static_cast<A>(static_cast<double>(dsq[p]) / static_cast<double>(HWo));
        double sg, sgz;
        if (cl) {
          grad_plane<A, A, ACT>(z.data(), dyb[k], gb.data(), HWo, shift, mean, rstd, nwc, nbc, gsq, slope, sg, sgz);
        } else {
          grad_plane<T, A, ACT>(z.data(), dy + p * HWo, gb.data(), HWo, shift, mean, rstd, nwc, nbc, gsq, slope, sg,
                                sgz);
        }
        sum_g_out[p] = static_cast<A>(sg);
        sum_gz_out[p] = static_cast<A>(sgz);
        const A mg = static_cast<A>(static_cast<double>(sum_g_out[p]) / HWo);
        const A mgz = static_cast<A>(static_cast<double>(sum_gz_out[p]) / HWo);
        const A kw = rstd * nwc;
        A* __restrict zb = z.data();
        const A* __restrict gbp = gb.data();
        for_each_lanes<A, A>(HWo, [&](auto v, int64_t i) {
          using V = decltype(v);
          const V zhat = ((load<V>(zb + i) - shift) - mean) * rstd;
          store(zb + i, kw * ((load<V>(gbp + i) - mg) - zhat * mgz));  // z now holds dz
        });
        weight_grad_plane<S>(xp, xpad[k].stride, z.data(), taps.data() + p * KK, g.K, g.Ho, g.Wo);
        // dx: straight into its plane (NCHW), or into the group's buffer, scattered below.
        auto input_grad = [&](auto* out) {
          if constexpr (S == 1) {
            A wf[25];
            for (int t = 0; t < KK; ++t) wf[t] = w[KK - 1 - t];
            conv_plane<1>(dzpad.fill(z.data()), dzpad.stride, wf, out, g.K, g.H, g.W);
          } else {
            conv_transpose_plane_s2(z.data(), w, *tr, out, g);
          }
        };
        if (cl) {
          input_grad(dxb[k]);
        } else {
          input_grad(dx + p * HW);
        }
      }
      if (cl) scatter_channels(dxb.ptr.data(), HW, n_planes, dx + n * HW * g.C + c0, g.C);
    }
  });
  for (int64_t c = 0; c < g.C; ++c) {
    for (int t = 0; t < KK; ++t) {
      double s = 0;
      for (int64_t n = 0; n < g.N; ++n) s += taps[(n * g.C + c) * KK + t];
      dweight[c * KK + t] = static_cast<A>(s);
    }
  }
}

template <typename F>
void dispatch_stride(int s, F&& f) {
  if (s == 2) {
    f(std::integral_constant<int, 2>{});
  } else {
    f(std::integral_constant<int, 1>{});
  }
}

Geometry geometry(const at::Tensor& x, const at::Tensor& weight, int64_t stride, int64_t pad) {
  TORCH_CHECK_VALUE(stride == 1 || stride == 2, "stride must be 1 or 2, got ", stride);
  check_cpu_float(weight, "weight");
  TORCH_CHECK_VALUE(weight.dim() == 4 && weight.size(0) == x.size(1) && weight.size(1) == 1 &&
                        (weight.size(2) == 3 || weight.size(2) == 5) && weight.size(3) == weight.size(2),
                    "weight must have shape (C, 1, k, k) with k in (3, 5) and C = ", x.size(1), ", got ",
                    weight.sizes());
  const int K = static_cast<int>(weight.size(2));
  TORCH_CHECK_VALUE(pad >= 0 && pad <= K / 2, "pad must be in [0, ", K / 2, "], got ", pad);
  Geometry g{x.size(0), x.size(1), x.size(2), x.size(3), 0, 0, K, static_cast<int>(stride), static_cast<int>(pad)};
  g.Ho = (g.H + 2 * pad - K) / stride + 1;
  g.Wo = (g.W + 2 * pad - K) / stride + 1;
  TORCH_CHECK_VALUE(g.H + 2 * pad >= K && g.W + 2 * pad >= K, "x of spatial size ", g.H, "x", g.W,
                    " is smaller than the kernel");
  return g;
}

// An output or gradient of shape (N, C, Ho, Wo) in the layout of x.
void check_out_layout(const at::Tensor& t, const Geometry& g, at::ScalarType dtype, Layout layout, const char* name) {
  check_cpu_float(t, name);
  TORCH_CHECK_VALUE(t.dim() == 4 && t.size(0) == g.N && t.size(1) == g.C && t.size(2) == g.Ho && t.size(3) == g.Wo,
                    name, " must have shape (", g.N, ", ", g.C, ", ", g.Ho, ", ", g.Wo, "), got ", t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == dtype, name, " must have dtype ", dtype, ", got ", t.scalar_type());
  const bool ok = layout == Layout::kNCHW ? t.is_contiguous() : t.is_contiguous(at::MemoryFormat::ChannelsLast);
  TORCH_CHECK_VALUE(ok, name, " must be laid out like x (", layout == Layout::kNCHW ? "contiguous" : "channels_last",
                    "), got strides ", t.strides());
}

}  // namespace

void dwconv_norm_act_fwd(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& norm_weight,
                         const std::optional<at::Tensor>& norm_bias, int64_t stride, int64_t pad, double eps,
                         int64_t act, double slope, const at::Tensor& y, const at::Tensor& squeeze,
                         const at::Tensor& stats) {
  const Layout layout = input_layout(x, "x");
  const Geometry g = geometry(x, weight, stride, pad);
  const at::ScalarType acc = acc_dtype(x.scalar_type());
  check_out_layout(y, g, x.scalar_type(), layout, "y");
  check_shape_dtype(squeeze, {g.N, g.C}, x.scalar_type(), "squeeze");
  check_shape_dtype(stats, {3, g.N, g.C}, acc, "stats");
  TORCH_CHECK_VALUE(std::isfinite(eps) && eps > 0, "eps must be a finite number > 0, got ", eps);
  TORCH_CHECK_VALUE(std::isfinite(slope), "slope must be finite, got ", slope);
  check_act(act);
  const auto nw = per_channel(norm_weight, g.C, acc, "norm_weight");
  const auto nb = per_channel(norm_bias, g.C, acc, "norm_bias");
  const at::Tensor wt = weight.to(acc).contiguous();
  const Units units{g.N, g.C, layout == Layout::kChannelsLast};

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dwconv_norm_act_fwd", [&] {
    using T = scalar_t;
    using A = acc_t<T>;
    dispatch_act(static_cast<int>(act), [&](auto atag) {
      dispatch_stride(g.S, [&](auto stag) {
        forward_planes<T, A, decltype(atag)::value, decltype(stag)::value>(
            x.const_data_ptr<T>(), wt.const_data_ptr<A>(), opt_ptr<A>(nw), opt_ptr<A>(nb), y.mutable_data_ptr<T>(),
            squeeze.mutable_data_ptr<T>(), stats.mutable_data_ptr<A>(), g, units, eps, static_cast<A>(slope));
      });
    });
  });
}

void dwconv_norm_act_bwd(const at::Tensor& dy, const at::Tensor& dsqueeze, const at::Tensor& x,
                         const at::Tensor& weight, const std::optional<at::Tensor>& norm_weight,
                         const std::optional<at::Tensor>& norm_bias, const at::Tensor& stats, int64_t stride,
                         int64_t pad, int64_t act, double slope, const at::Tensor& dx, const at::Tensor& dweight,
                         const at::Tensor& sum_g, const at::Tensor& sum_gz) {
  const Layout layout = input_layout(x, "x");
  const Geometry g = geometry(x, weight, stride, pad);
  const at::ScalarType acc = acc_dtype(x.scalar_type());
  check_out_layout(dy, g, x.scalar_type(), layout, "dy");
  check_shape_dtype(dsqueeze, {g.N, g.C}, x.scalar_type(), "dsqueeze");
  check_shape_dtype(stats, {3, g.N, g.C}, acc, "stats");
  check_like(dx, x, "dx");
  check_shape_dtype(dweight, {g.C, static_cast<int64_t>(g.K) * g.K}, acc, "dweight");
  check_shape_dtype(sum_g, {g.N, g.C}, acc, "sum_g");
  check_shape_dtype(sum_gz, {g.N, g.C}, acc, "sum_gz");
  TORCH_CHECK_VALUE(std::isfinite(slope), "slope must be finite, got ", slope);
  check_act(act);
  const auto nw = per_channel(norm_weight, g.C, acc, "norm_weight");
  const auto nb = per_channel(norm_bias, g.C, acc, "norm_bias");
  const at::Tensor wt = weight.to(acc).contiguous();
  const Units units{g.N, g.C, layout == Layout::kChannelsLast};

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dwconv_norm_act_bwd", [&] {
    using T = scalar_t;
    using A = acc_t<T>;
    dispatch_act(static_cast<int>(act), [&](auto atag) {
      dispatch_stride(g.S, [&](auto stag) {
        backward_planes<T, A, decltype(atag)::value, decltype(stag)::value>(
            dy.const_data_ptr<T>(), dsqueeze.const_data_ptr<T>(), x.const_data_ptr<T>(), wt.const_data_ptr<A>(),
            opt_ptr<A>(nw), opt_ptr<A>(nb), stats.const_data_ptr<A>(), dx.mutable_data_ptr<T>(),
            dweight.mutable_data_ptr<A>(), sum_g.mutable_data_ptr<A>(), sum_gz.mutable_data_ptr<A>(), g, units,
            static_cast<A>(slope));
      });
    });
  });
}

}  // namespace effgan
