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
// afterwards) and dx is the transposed conv of dz, scattered tap by tap into a plane buffer.
//
// Padding: zeros are skipped taps (reflect padding is applied by the caller, pad = 0 here).
// channels_last inputs run the same kernels on NCHW copies (one extra pass each way): the plane
// buffers are what makes this kernel fast, and a channel-interleaved version is future work.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cmath>

#include "dwconv_norm_act.h"
#include "params.h"

namespace effgan {
namespace {

struct Geometry {
  int64_t N, C, H, W, Ho, Wo;
  int K, S, P;
  int64_t HW() const { return H * W; }
  int64_t HWo() const { return Ho * Wo; }
  // Output columns [lo, hi] whose input column wo * S - P + kw lies inside [0, W); hi < lo if none.
  void valid_cols(int kw, int64_t& lo, int64_t& hi) const {
    const int64_t a = P - kw;  // wo * S >= a
    lo = a <= 0 ? 0 : (a + S - 1) / S;
    const int64_t b = W - 1 + P - kw;  // wo * S <= b
    hi = b < 0 ? -1 : std::min<int64_t>(Wo - 1, b / S);
  }
};

// z[Ho, Wo] = depthwise conv of one input plane x[H, W] with the K*K weights w.
template <typename T, typename A, int S>
void conv_plane(const T* __restrict x, const A* __restrict w, A* __restrict z, const Geometry& g) {
  std::fill(z, z + g.HWo(), A(0));
  for (int64_t ho = 0; ho < g.Ho; ++ho) {
    A* __restrict zr = z + ho * g.Wo;
    for (int kh = 0; kh < g.K; ++kh) {
      const int64_t hi = ho * S - g.P + kh;
      if (hi < 0 || hi >= g.H) continue;
      const T* __restrict xr = x + hi * g.W;
      for (int kw = 0; kw < g.K; ++kw) {
        const A wt = w[kh * g.K + kw];
        int64_t lo, hi_c;
        g.valid_cols(kw, lo, hi_c);
        const T* __restrict xs = xr + kw - g.P;
        for (int64_t wo = lo; wo <= hi_c; ++wo) zr[wo] += wt * static_cast<A>(xs[wo * S]);
      }
    }
  }
}

// dx[H, W] (accumulation buffer) = transposed depthwise conv of dz[Ho, Wo]; tap by tap, in order.
template <typename A, int S>
void conv_transpose_plane(const A* __restrict dz, const A* __restrict w, A* __restrict dx, const Geometry& g) {
  std::fill(dx, dx + g.HW(), A(0));
  for (int64_t ho = 0; ho < g.Ho; ++ho) {
    const A* __restrict dr = dz + ho * g.Wo;
    for (int kh = 0; kh < g.K; ++kh) {
      const int64_t hi = ho * S - g.P + kh;
      if (hi < 0 || hi >= g.H) continue;
      for (int kw = 0; kw < g.K; ++kw) {
        const A wt = w[kh * g.K + kw];
        int64_t lo, hi_c;
        g.valid_cols(kw, lo, hi_c);
        A* __restrict xs = dx + hi * g.W + kw - g.P;
        for (int64_t wo = lo; wo <= hi_c; ++wo) xs[wo * S] += wt * dr[wo];
      }
    }
  }
}

// Per-tap sums of dz * x[tap-shifted] for one plane, in double, tap by tap and row by row.
template <typename T, typename A, int S>
void weight_grad_plane(const T* __restrict x, const A* __restrict dz, double* __restrict taps, const Geometry& g) {
  for (int t = 0; t < g.K * g.K; ++t) taps[t] = 0;
  for (int64_t ho = 0; ho < g.Ho; ++ho) {
    const A* __restrict dr = dz + ho * g.Wo;
    for (int kh = 0; kh < g.K; ++kh) {
      const int64_t hi = ho * S - g.P + kh;
      if (hi < 0 || hi >= g.H) continue;
      for (int kw = 0; kw < g.K; ++kw) {
        int64_t lo, hi_c;
        g.valid_cols(kw, lo, hi_c);
        const T* __restrict xs = x + hi * g.W + kw - g.P;
        A acc[kLanes] = {};
        int64_t wo = lo;
        for (; wo + kLanes <= hi_c + 1; wo += kLanes) {
          for (int l = 0; l < kLanes; ++l) acc[l] += dr[wo + l] * static_cast<A>(xs[(wo + l) * S]);
        }
        for (int l = 0; wo + l <= hi_c; ++l) acc[l] += dr[wo + l] * static_cast<A>(xs[(wo + l) * S]);
        taps[kh * g.K + kw] += static_cast<double>(lane_total(acc));
      }
    }
  }
}

template <typename A>
EFFGAN_INLINE void blocked_shifted_sums(const A* z, int64_t len, A shift, double& sum, double& sumsq) {
  sum = sumsq = 0;
  for (int64_t lo = 0; lo < len; lo += kBlock) {
    const int64_t n = std::min(kBlock, len - lo);
    A s[kLanes] = {};
    A q[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        const A d = z[lo + i + l] - shift;
        s[l] += d;
        q[l] += d * d;
      }
    }
    for (int l = 0; i + l < n; ++l) {
      const A d = z[lo + i + l] - shift;
      s[l] += d;
      q[l] += d * d;
    }
    sum += static_cast<double>(lane_total(s));
    sumsq += static_cast<double>(lane_total(q));
  }
}

// y = act(((z - shift) - mean) * scale + b); returns sum(y) (blocked, in order).
template <typename T, typename A, int ACT>
double norm_act_plane(const A* __restrict z, T* __restrict y, int64_t len, A shift, A mean, A scale, A b, A slope) {
  double total = 0;
  for (int64_t lo = 0; lo < len; lo += kBlock) {
    const int64_t n = std::min(kBlock, len - lo);
    A s[kLanes] = {};
    auto one = [&](int64_t i, int l) {
      const A v = act_forward<ACT>(((z[i] - shift) - mean) * scale + b, slope);
      y[i] = static_cast<T>(v);
      s[l] += v;
    };
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) one(lo + i + l, l);
    }
    for (int l = 0; i + l < n; ++l) one(lo + i + l, l);
    total += static_cast<double>(lane_total(s));
  }
  return total;
}

// g = (dy + gsq) * act'(zhat * w + b) into gbuf; returns sums of g and g * zhat (blocked, in order).
template <typename T, typename A, int ACT>
void grad_plane(const A* __restrict z, const T* __restrict dy, A* __restrict gbuf, int64_t len, A shift, A mean,
                A rstd, A w, A b, A gsq, A slope, double& sum_g, double& sum_gz) {
  sum_g = sum_gz = 0;
  for (int64_t lo = 0; lo < len; lo += kBlock) {
    const int64_t n = std::min(kBlock, len - lo);
    A s[kLanes] = {};
    A q[kLanes] = {};
    auto one = [&](int64_t i, int l) {
      const A zhat = ((z[i] - shift) - mean) * rstd;
      A g = static_cast<A>(dy[i]) + gsq;
      if constexpr (ACT != kIdentity) g *= act_grad<ACT>(zhat * w + b, slope);
      gbuf[i] = g;
      s[l] += g;
      q[l] += g * zhat;
    };
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) one(lo + i + l, l);
    }
    for (int l = 0; i + l < n; ++l) one(lo + i + l, l);
    sum_g += static_cast<double>(lane_total(s));
    sum_gz += static_cast<double>(lane_total(q));
  }
}

template <typename T, typename A, int ACT, int S>
void forward_nchw(const T* x, const A* wt, const A* nw, const A* nb, T* y, T* squeeze, A* stats, const Geometry& g,
                  double eps, A slope) {
  const int64_t P = g.N * g.C, HWo = g.HWo(), KK = g.K * g.K;
  parallel_for(0, P, 1, [&](int64_t p0, int64_t p1) {
    std::vector<A> z(HWo);
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % g.C;
      conv_plane<T, A, S>(x + p * g.HW(), wt + c * KK, z.data(), g);
      const A shift = z[0];
      double sum, sumsq;
      blocked_shifted_sums(z.data(), HWo, shift, sum, sumsq);
      const double m = sum / static_cast<double>(HWo);
      const double var = std::max(sumsq / static_cast<double>(HWo) - m * m, 0.0);
      const A mean = static_cast<A>(m);
      const A rstd = static_cast<A>(1.0 / std::sqrt(var + eps));
      stats[p] = shift;
      stats[P + p] = mean;
      stats[2 * P + p] = rstd;
      const A scale = rstd * (nw ? nw[c] : A(1));
      const double ysum = norm_act_plane<T, A, ACT>(z.data(), y + p * HWo, HWo, shift, mean, scale, nb ? nb[c] : A(0),
                                                    slope);
      squeeze[p] = static_cast<T>(static_cast<A>(ysum / static_cast<double>(HWo)));
    }
  });
}

template <typename T, typename A, int ACT, int S>
void backward_nchw(const T* dy, const T* dsq, const T* x, const A* wt, const A* nw, const A* nb, const A* stats,
                   T* dx, A* dweight, A* sum_g_out, A* sum_gz_out, const Geometry& g, A slope) {
  const int64_t P = g.N * g.C, HWo = g.HWo(), HW = g.HW(), KK = g.K * g.K;
  std::vector<double> taps(P * KK);
  parallel_for(0, P, 1, [&](int64_t p0, int64_t p1) {
    std::vector<A> z(HWo), gb(HWo), dxb(HW);
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % g.C;
      const A* w = wt + c * KK;
      const T* xp = x + p * HW;
      conv_plane<T, A, S>(xp, w, z.data(), g);
      const A shift = stats[p], mean = stats[P + p], rstd = stats[2 * P + p];
      const A nwc = nw ? nw[c] : A(1), nbc = nb ? nb[c] : A(0);
      const A gsq = static_cast<A>(static_cast<double>(dsq[p]) / static_cast<double>(HWo));
      double sg, sgz;
      grad_plane<T, A, ACT>(z.data(), dy + p * HWo, gb.data(), HWo, shift, mean, rstd, nwc, nbc, gsq, slope, sg, sgz);
      sum_g_out[p] = static_cast<A>(sg);
      sum_gz_out[p] = static_cast<A>(sgz);
      const A mg = static_cast<A>(static_cast<double>(sum_g_out[p]) / HWo);
      const A mgz = static_cast<A>(static_cast<double>(sum_gz_out[p]) / HWo);
      const A k = rstd * nwc;
      for (int64_t i = 0; i < HWo; ++i) {
        const A zhat = ((z[i] - shift) - mean) * rstd;
        z[i] = k * (gb[i] - mg - zhat * mgz);  // z now holds dz
      }
      weight_grad_plane<T, A, S>(xp, z.data(), taps.data() + p * KK, g);
      conv_transpose_plane<A, S>(z.data(), w, dxb.data(), g);
      T* dxp = dx + p * HW;
      for (int64_t i = 0; i < HW; ++i) dxp[i] = static_cast<T>(dxb[i]);
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
  // channels_last: NCHW copies in and out (see the file comment).
  const at::Tensor xk = layout == Layout::kNCHW ? x : x.contiguous();
  const at::Tensor yk = layout == Layout::kNCHW ? y : at::empty({g.N, g.C, g.Ho, g.Wo}, y.options());

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dwconv_norm_act_fwd", [&] {
    using T = scalar_t;
    using A = acc_t<T>;
    dispatch_act(static_cast<int>(act), [&](auto atag) {
      dispatch_stride(g.S, [&](auto stag) {
        forward_nchw<T, A, decltype(atag)::value, decltype(stag)::value>(
            xk.const_data_ptr<T>(), wt.const_data_ptr<A>(), opt_ptr<A>(nw), opt_ptr<A>(nb), yk.mutable_data_ptr<T>(),
            squeeze.mutable_data_ptr<T>(), stats.mutable_data_ptr<A>(), g, eps, static_cast<A>(slope));
      });
    });
  });
  if (layout != Layout::kNCHW) y.copy_(yk);
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
  const at::Tensor xk = layout == Layout::kNCHW ? x : x.contiguous();
  const at::Tensor dyk = layout == Layout::kNCHW ? dy : dy.contiguous();
  const at::Tensor dxk = layout == Layout::kNCHW ? dx : at::empty(x.sizes(), dx.options());

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dwconv_norm_act_bwd", [&] {
    using T = scalar_t;
    using A = acc_t<T>;
    dispatch_act(static_cast<int>(act), [&](auto atag) {
      dispatch_stride(g.S, [&](auto stag) {
        backward_nchw<T, A, decltype(atag)::value, decltype(stag)::value>(
            dyk.const_data_ptr<T>(), dsqueeze.const_data_ptr<T>(), xk.const_data_ptr<T>(), wt.const_data_ptr<A>(),
            opt_ptr<A>(nw), opt_ptr<A>(nb), stats.const_data_ptr<A>(), dxk.mutable_data_ptr<T>(),
            dweight.mutable_data_ptr<A>(), sum_g.mutable_data_ptr<A>(), sum_gz.mutable_data_ptr<A>(), g,
            static_cast<A>(slope));
      });
    });
  });
  if (layout != Layout::kNCHW) dx.copy_(dxk);
}

}  // namespace effgan
