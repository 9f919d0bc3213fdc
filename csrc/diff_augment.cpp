// DiffAugment (color, translation, cutout) on the CPU as one linear map per sample, and its transpose.
//
// With the sampled parameters fixed, for an output pixel (h, w) of sample n that survives cutout
// and whose translation source (h + dh, w + dw) lies inside the image:
//     y[c, h, w] = a * x[c, sh, sw] + k * cm[sh, sw] + m0          (0 elsewhere)
//     a = contrast * saturation,  k = contrast - a,  m0 = (1 - contrast) * mean(x) + brightness
// with cm the per-pixel channel mean and mean(x) the per-sample mean (without color a = 1, k = m0 = 0).
// Backward: dx[c, h', w'] = keep * (a * dy[c, h, w] + k * mean_c dy[:, h, w])
//                           + (1 - contrast) * sum_kept(dy) / (C * H * W),  (h, w) = (h' - dh, w' - dw).
//
// The unit of work is one image row of one sample (all channels). On a row, the outputs that
// survive form at most two column intervals (the translation's valid range minus the cutout
// square), so the loops run over contiguous spans with no per-element tests.
//
// Determinism: the per-sample sums are taken per row (each span summed in a fixed lane order) and
// combined in row order in double, whatever the threading.
#include <ATen/Dispatch.h>

#include <algorithm>
#include <cmath>

#include "diff_augment.h"
#include "params.h"

namespace effgan {
namespace {

struct Geometry {
  int64_t N, C, H, W;
  int64_t cut_h, cut_w;
  bool color, trans, cutout;
  Layout layout;
};

// Per-sample parameters: translation, cutout corner, color coefficients (double).
struct SampleParams {
  std::vector<int64_t> shift;  // (N, 2) or empty
  std::vector<int64_t> cut;    // (N, 2) or empty
  std::vector<double> br, sat, con;
};

// Surviving output columns of output row h of sample n: up to two intervals [iv[2i], iv[2i+1]).
EFFGAN_INLINE int kept_cols(const Geometry& g, const SampleParams& sp, int64_t n, int64_t h, int64_t iv[4]) {
  int64_t lo = 0, hi = g.W;
  if (g.trans) {
    const int64_t sh = h + sp.shift[2 * n], dw = sp.shift[2 * n + 1];
    if (sh < 0 || sh >= g.H) return 0;
    lo = std::max<int64_t>(0, -dw);
    hi = std::min<int64_t>(g.W, g.W - dw);
    if (lo >= hi) return 0;
  }
  if (g.cutout) {
    const int64_t top = sp.cut[2 * n], left = sp.cut[2 * n + 1];
    if (h >= top && h < top + g.cut_h) {
      int cnt = 0;
      const int64_t a1 = std::min(hi, left), b0 = std::max(lo, left + g.cut_w);
      if (lo < a1) {
        iv[0] = lo;
        iv[1] = a1;
        cnt = 1;
      }
      if (b0 < hi) {
        iv[2 * cnt] = b0;
        iv[2 * cnt + 1] = hi;
        ++cnt;
      }
      return cnt;
    }
  }
  iv[0] = lo;
  iv[1] = hi;
  return 1;
}

// Calls gap(lo, hi) for the columns of [0, W) outside the intervals, keep(lo, hi) for the intervals.
template <typename Gap, typename Keep>
EFFGAN_INLINE void for_segments(int cnt, const int64_t* iv, int64_t W, const Gap& gap, const Keep& keep) {
  int64_t at = 0;
  for (int i = 0; i < cnt; ++i) {
    if (iv[2 * i] > at) gap(at, iv[2 * i]);
    keep(iv[2 * i], iv[2 * i + 1]);
    at = iv[2 * i + 1];
  }
  if (at < W) gap(at, W);
}

template <typename T, typename A>
EFFGAN_INLINE double span_sum(const T* __restrict p, int64_t len) {
  A s[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= len; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) s[l] += static_cast<A>(p[i + l]);
  }
  for (int l = 0; i + l < len; ++l) s[l] += static_cast<A>(p[i + l]);
  return static_cast<double>(lane_total(s));
}

template <typename T>
EFFGAN_INLINE void fill_span(T* __restrict p, int64_t len, T v) {
  for (int64_t i = 0; i < len; ++i) p[i] = v;
}

inline int64_t row_grain(const Geometry& g) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, g.W * g.C)); }

// Per-sample sums over rows: forward sums all of x, backward only the surviving outputs of dy.
// Rows are summed in parallel and combined in row order.
template <typename T, typename A>
std::vector<double> sample_sums(const T* t, const Geometry& g, const SampleParams& sp, bool keep_only) {
  const int64_t C = g.C, H = g.H, W = g.W, HW = H * W;
  std::vector<double> part(g.N * H);
  parallel_for(0, g.N * H, row_grain(g), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / H, h = r % H;
      const T* ts = t + n * C * HW;
      int64_t iv[4] = {0, W, 0, 0};
      const int cnt = keep_only ? kept_cols(g, sp, n, h, iv) : 1;
      double s = 0;
      for (int i = 0; i < cnt; ++i) {
        const int64_t lo = iv[2 * i], len = iv[2 * i + 1] - lo;
        if (g.layout == Layout::kNCHW) {
          for (int64_t c = 0; c < C; ++c) s += span_sum<T, A>(ts + c * HW + h * W + lo, len);
        } else {
          s += span_sum<T, A>(ts + (h * W + lo) * C, len * C);
        }
      }
      part[r] = s;
    }
  });
  std::vector<double> tot(g.N, 0.0);
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t h = 0; h < H; ++h) tot[n] += part[n * H + h];
  }
  return tot;
}

// Color coefficients of sample n: a, k, and the constant term.
template <typename A>
struct Coefs {
  A a = A(1), k = A(0), m = A(0);
};

template <typename T, typename A>
void forward_impl(const T* x, T* y, const Geometry& g, const SampleParams& sp) {
  const int64_t C = g.C, H = g.H, W = g.W, HW = H * W;
  std::vector<Coefs<A>> coef(g.N);
  if (g.color) {
    const std::vector<double> sums = sample_sums<T, A>(x, g, sp, false);
    for (int64_t n = 0; n < g.N; ++n) {
      const double a = sp.con[n] * sp.sat[n], mean = sums[n] / static_cast<double>(C * HW);
      coef[n] = Coefs<A>{static_cast<A>(a), static_cast<A>(sp.con[n] - a),
                         static_cast<A>((1.0 - sp.con[n]) * mean + sp.br[n])};
    }
  }
  const A inv_c = A(1) / static_cast<A>(C);
  parallel_for(0, g.N * H, row_grain(g), [&](int64_t r0, int64_t r1) {
    std::vector<A> buf(g.layout == Layout::kNCHW && g.color ? W : 0);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / H, h = r % H;
      const int64_t sh = g.trans ? h + sp.shift[2 * n] : h, dw = g.trans ? sp.shift[2 * n + 1] : 0;
      const T* xs = x + n * C * HW;
      T* ys = y + n * C * HW;
      const Coefs<A> k = coef[n];
      int64_t iv[4];
      const int cnt = kept_cols(g, sp, n, h, iv);
      if (g.layout == Layout::kNCHW) {
        A* __restrict t = buf.data();
        if (g.color) {
          // t[w] = k * cm + m0 for the surviving columns.
          for (int i = 0; i < cnt; ++i) {
            const int64_t lo = iv[2 * i], hi = iv[2 * i + 1];
            std::fill(t + lo, t + hi, A(0));
            for (int64_t c = 0; c < C; ++c) {
              const T* __restrict xr = xs + c * HW + sh * W + dw;
              for (int64_t w = lo; w < hi; ++w) t[w] += static_cast<A>(xr[w]);
            }
            for (int64_t w = lo; w < hi; ++w) t[w] = k.k * (t[w] * inv_c) + k.m;
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          const T* __restrict xr = xs + c * HW + sh * W + dw;
          T* __restrict yr = ys + c * HW + h * W;
          for_segments(
              cnt, iv, W, [&](int64_t lo, int64_t hi) { fill_span(yr + lo, hi - lo, T(0)); },
              [&](int64_t lo, int64_t hi) {
                if (g.color) {
                  const A a = k.a;
                  for (int64_t w = lo; w < hi; ++w) yr[w] = static_cast<T>(a * static_cast<A>(xr[w]) + t[w]);
                } else {
                  for (int64_t w = lo; w < hi; ++w) yr[w] = xr[w];
                }
              });
        }
      } else {
        T* yr = ys + h * W * C;
        const T* xr = xs + (sh * W + dw) * C;
        for_segments(
            cnt, iv, W, [&](int64_t lo, int64_t hi) { fill_span(yr + lo * C, (hi - lo) * C, T(0)); },
            [&](int64_t lo, int64_t hi) {
              if (!g.color) {
                std::copy(xr + lo * C, xr + hi * C, yr + lo * C);
                return;
              }
              for (int64_t w = lo; w < hi; ++w) {
                const T* __restrict xp = xr + w * C;
                T* __restrict yp = yr + w * C;
                A s = 0;
                for (int64_t c = 0; c < C; ++c) s += static_cast<A>(xp[c]);
                const A tt = k.k * (s * inv_c) + k.m;
                for (int64_t c = 0; c < C; ++c) yp[c] = static_cast<T>(k.a * static_cast<A>(xp[c]) + tt);
              }
            });
      }
    }
  });
}

template <typename T, typename A>
void backward_impl(const T* dy, T* dx, const Geometry& g, const SampleParams& sp) {
  const int64_t C = g.C, H = g.H, W = g.W, HW = H * W;
  std::vector<Coefs<A>> coef(g.N);
  if (g.color) {
    const std::vector<double> sums = sample_sums<T, A>(dy, g, sp, true);
    for (int64_t n = 0; n < g.N; ++n) {
      const double a = sp.con[n] * sp.sat[n], mean = sums[n] / static_cast<double>(C * HW);
      coef[n] = Coefs<A>{static_cast<A>(a), static_cast<A>(sp.con[n] - a), static_cast<A>((1.0 - sp.con[n]) * mean)};
    }
  }
  const A inv_c = A(1) / static_cast<A>(C);
  parallel_for(0, g.N * H, row_grain(g), [&](int64_t r0, int64_t r1) {
    std::vector<A> buf(g.layout == Layout::kNCHW && g.color ? W : 0);
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r / H, hi_row = r % H;
      const int64_t dh = g.trans ? sp.shift[2 * n] : 0, dw = g.trans ? sp.shift[2 * n + 1] : 0;
      const int64_t ho = hi_row - dh;  // the output row that read this input row
      const T* gs = dy + n * C * HW;
      T* ds = dx + n * C * HW;
      const Coefs<A> k = coef[n];
      const T fillv = static_cast<T>(k.m);  // (1 - contrast) * mean_kept(dy), or 0
      int64_t iv[4];
      int cnt = 0;
      if (ho >= 0 && ho < H) {
        cnt = kept_cols(g, sp, n, ho, iv);
        for (int i = 0; i < 2 * cnt; ++i) iv[i] += dw;  // output columns -> input columns
      }
      if (g.layout == Layout::kNCHW) {
        A* __restrict t = buf.data();
        if (g.color) {
          for (int i = 0; i < cnt; ++i) {
            const int64_t lo = iv[2 * i], hi = iv[2 * i + 1];
            std::fill(t + lo, t + hi, A(0));
            for (int64_t c = 0; c < C; ++c) {
              const T* __restrict gr = gs + c * HW + ho * W - dw;
              for (int64_t w = lo; w < hi; ++w) t[w] += static_cast<A>(gr[w]);
            }
            for (int64_t w = lo; w < hi; ++w) t[w] = k.k * (t[w] * inv_c);
          }
        }
        for (int64_t c = 0; c < C; ++c) {
          const T* __restrict gr = gs + c * HW + ho * W - dw;
          T* __restrict dr = ds + c * HW + hi_row * W;
          for_segments(
              cnt, iv, W, [&](int64_t lo, int64_t hi) { fill_span(dr + lo, hi - lo, fillv); },
              [&](int64_t lo, int64_t hi) {
                if (g.color) {
                  const A a = k.a, m = k.m;
                  for (int64_t w = lo; w < hi; ++w) dr[w] = static_cast<T>((a * static_cast<A>(gr[w]) + t[w]) + m);
                } else {
                  for (int64_t w = lo; w < hi; ++w) dr[w] = gr[w];
                }
              });
        }
      } else {
        T* dr = ds + hi_row * W * C;
        const T* gr = gs + (ho * W - dw) * C;
        for_segments(
            cnt, iv, W, [&](int64_t lo, int64_t hi) { fill_span(dr + lo * C, (hi - lo) * C, fillv); },
            [&](int64_t lo, int64_t hi) {
              if (!g.color) {
                std::copy(gr + lo * C, gr + hi * C, dr + lo * C);
                return;
              }
              for (int64_t w = lo; w < hi; ++w) {
                const T* __restrict gp = gr + w * C;
                T* __restrict dp = dr + w * C;
                A s = 0;
                for (int64_t c = 0; c < C; ++c) s += static_cast<A>(gp[c]);
                const A tt = k.k * (s * inv_c);
                for (int64_t c = 0; c < C; ++c) dp[c] = static_cast<T>((k.a * static_cast<A>(gp[c]) + tt) + k.m);
              }
            });
      }
    }
  });
}

// ------------------------------------------------------------------ argument checks

std::vector<double> per_sample(const std::optional<at::Tensor>& t, int64_t N, const char* name) {
  TORCH_CHECK_VALUE(t.has_value() && t->defined(), name, " is required by the color transform");
  check_cpu_float(*t, name);
  TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == N, name, " must have shape (", N, "), got ", t->sizes());
  const at::Tensor d = t->to(at::kDouble).contiguous();
  const double* p = d.const_data_ptr<double>();
  return std::vector<double>(p, p + N);
}

std::vector<int64_t> per_sample_pair(const std::optional<at::Tensor>& t, int64_t N, const char* name,
                                     const char* transform) {
  TORCH_CHECK_VALUE(t.has_value() && t->defined(), name, " is required by the ", transform, " transform");
  TORCH_CHECK_VALUE(t->device().is_cpu(), name, " must be a CPU tensor, got ", t->device());
  TORCH_CHECK_TYPE(t->scalar_type() == at::kInt || t->scalar_type() == at::kLong, name,
                   " must be int32 or int64, got ", t->scalar_type());
  TORCH_CHECK_VALUE(t->dim() == 2 && t->size(0) == N && t->size(1) == 2, name, " must have shape (", N,
                    ", 2), got ", t->sizes());
  const at::Tensor d = t->to(at::kLong).contiguous();
  const int64_t* p = d.const_data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + 2 * N);
}

Geometry geometry(const at::Tensor& t, const char* name, int64_t cut_h, int64_t cut_w, bool color, bool trans,
                  bool cutout) {
  const Layout layout = input_layout(t, name);
  const int64_t H = t.size(2), W = t.size(3);
  TORCH_CHECK_VALUE(H * W < (int64_t(1) << 31), name, " has ", H * W,
                    " pixels per image; at most 2**31 - 1 are supported");
  if (cutout) {
    TORCH_CHECK_VALUE(cut_h >= 0 && cut_w >= 0, "cut_h and cut_w must be >= 0, got ", cut_h, " and ", cut_w);
  }
  return Geometry{t.size(0), t.size(1), H, W, cutout ? cut_h : 0, cutout ? cut_w : 0, color, trans, cutout, layout};
}

}  // namespace

// ------------------------------------------------------------------ entry points

void diff_augment_fwd(const at::Tensor& x, const std::optional<at::Tensor>& brightness,
                      const std::optional<at::Tensor>& saturation, const std::optional<at::Tensor>& contrast,
                      const std::optional<at::Tensor>& shift, const std::optional<at::Tensor>& cut, int64_t cut_h,
                      int64_t cut_w, bool color, bool translation, bool cutout, const at::Tensor& y) {
  const Geometry g = geometry(x, "x", cut_h, cut_w, color, translation, cutout);
  check_like(y, x, "y");
  SampleParams sp;
  if (color) {
    sp.br = per_sample(brightness, g.N, "brightness");
    sp.sat = per_sample(saturation, g.N, "saturation");
    sp.con = per_sample(contrast, g.N, "contrast");
  }
  if (translation) sp.shift = per_sample_pair(shift, g.N, "shift", "translation");
  if (cutout) sp.cut = per_sample_pair(cut, g.N, "cut", "cutout");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "diff_augment_fwd", [&] {
    forward_impl<scalar_t, acc_t<scalar_t>>(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), g, sp);
  });
}

void diff_augment_bwd(const at::Tensor& dy, const std::optional<at::Tensor>& saturation,
                      const std::optional<at::Tensor>& contrast, const std::optional<at::Tensor>& shift,
                      const std::optional<at::Tensor>& cut, int64_t cut_h, int64_t cut_w, bool color,
                      bool translation, bool cutout, const at::Tensor& dx) {
  const Geometry g = geometry(dy, "dy", cut_h, cut_w, color, translation, cutout);
  check_like(dx, dy, "dx");
  SampleParams sp;
  if (color) {
    sp.sat = per_sample(saturation, g.N, "saturation");
    sp.con = per_sample(contrast, g.N, "contrast");
  }
  if (translation) sp.shift = per_sample_pair(shift, g.N, "shift", "translation");
  if (cutout) sp.cut = per_sample_pair(cut, g.N, "cut", "cutout");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dy.scalar_type(), "diff_augment_bwd", [&] {
    backward_impl<scalar_t, acc_t<scalar_t>>(dy.const_data_ptr<scalar_t>(), dx.mutable_data_ptr<scalar_t>(), g,
                                             sp);
  });
}

}  // namespace effgan
