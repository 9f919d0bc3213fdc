// Instance norm + activation (+ residual) on the CPU, forward and backward.
//
// Statistics are shifted sums: with shift = the mean of the plane's first values (params.h:
// sample_mean, which says why not the first value), sum(x - shift) and sum((x - shift)^2) stay
// accurate when |mean| >> std. The saved "mean" is relative to that shift (the backward recomputes
// the shift from x), so x - shift - mean loses nothing to the rounding of a large mean.
//
// NCHW: a plane is HW contiguous values. With enough planes each thread owns whole planes and
// reads a plane twice back to back (the statistics, then the output), so the second read comes
// from L2 for planes up to a few hundred KB. With few planes (batch 1, large H*W) the planes are
// cut into blocks shared among threads, at the cost of a second read from memory.
// channels_last: a sample is (HW, C) with channels contiguous; chunks of pixels accumulate
// per-channel sums in a thread-local buffer, combined afterwards in chunk order.
//
// Determinism: every reduction is cut at fixed block (or pixel-chunk) boundaries that depend only
// on the shape, each block is summed in a fixed lane order, and blocks are combined in order in
// double. Whichever thread runs a block, and however many threads there are, results are the same.
//
// The loops run on simd.h's 8-float vectors for float and bfloat16 (along HW for NCHW, along C for
// channels_last, with scalar tails), scalar for half and double; params.h's lane_sums keeps each
// block's 16-lane summation order.
#include <ATen/Dispatch.h>

#include <algorithm>
#include <cmath>

#include "instance_norm_act.h"
#include "params.h"

namespace effgan {
namespace {

// Everything the per-element loops need about one plane.
template <typename A>
struct PlaneCoef {
  A shift;  // the mean of the plane's first values (params.h: sample_mean)
  A mean;   // mean relative to shift
  A rstd;
  A w;  // affine weight (1 without)
  A b;  // affine bias (0 without)
};

template <typename A>
EFFGAN_INLINE void finalize_stats(double sum, double sumsq, int64_t count, double eps, A* mean_out, A* rstd_out) {
  const double mean = sum / static_cast<double>(count);
  const double var = std::max(sumsq / static_cast<double>(count) - mean * mean, 0.0);
  *mean_out = static_cast<A>(mean);
  *rstd_out = static_cast<A>(1.0 / std::sqrt(var + eps));
}

// ------------------------------------------------------------------ forward, NCHW

// sum(x - shift), sum((x - shift)^2) over len contiguous values.
template <typename T, typename A>
EFFGAN_INLINE void shifted_sums(const T* __restrict x, int64_t len, A shift, double& sum, double& sumsq) {
  double sums[2];
  lane_sums<2, T, A>(
      len,
      [&](auto v, int64_t i, auto* t) {
        using V = decltype(v);
        const V d = load<V>(x + i) - shift;
        t[0] = d;
        t[1] = d * d;
      },
      sums);
  sum = sums[0];
  sumsq = sums[1];
}

template <typename T, typename A, int ACT, bool HAS_RES>
void norm_act_span(const T* __restrict x, const T* __restrict res, T* __restrict y, int64_t len,
                   const PlaneCoef<A>& k, A slope, bool stream) {
  // Copies, so that the stores through y cannot be taken to change them.
  const A shift = k.shift, mean = k.mean, scale = k.rstd * k.w, b = k.b;
  for_each_lanes<T, A>(len, [&](auto v, int64_t i) {
    using V = decltype(v);
    V a = act_forward<ACT>(((load<V>(x + i) - shift) - mean) * scale + b, slope);
    if constexpr (HAS_RES) a += load<V>(res + i);
    store_out(y + i, a, stream);
  });
}

template <typename T, typename A, int ACT>
EFFGAN_INLINE void norm_act_span_any(const T* x, const T* res, T* y, int64_t len, const PlaneCoef<A>& k, A slope,
                                     bool stream) {
  if (res != nullptr) {
    norm_act_span<T, A, ACT, true>(x, res, y, len, k, slope, stream);
  } else {
    norm_act_span<T, A, ACT, false>(x, nullptr, y, len, k, slope, stream);
  }
}

template <typename T, typename A, int ACT>
void forward_nchw(const T* x, const T* res, T* y, A* mean, A* rstd, const A* w, const A* b, int64_t N, int64_t C,
                  int64_t HW, double eps, A slope) {
  const int64_t P = N * C;
  const int64_t nblk = ceil_div(HW, kBlock);
  const bool stream = stream_outputs<T>(P * HW);
  const bool split = split_planes(P, nblk);
  // Whole planes per thread take their shift as they start the plane (its first lines then stay
  // in cache for the sums); split planes need every shift before their blocks.
  std::vector<A> shifts = split ? plane_shifts<T, A>(x, P, HW) : std::vector<A>(P);
  auto coef = [&](int64_t p) {
    const int64_t c = p % C;
    return PlaneCoef<A>{shifts[p], mean[p], rstd[p], w ? w[c] : A(1), b ? b[c] : A(0)};
  };
  if (!split) {
    parallel_for(0, P, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const T* xp = x + p * HW;
        const A shift = shifts[p] = plane_shift<T, A>(xp, HW);
        double sum = 0, sumsq = 0;
        for (int64_t blk = 0; blk < nblk; ++blk) {
          const int64_t lo = blk * kBlock;
          double s, q;
          shifted_sums(xp + lo, std::min(kBlock, HW - lo), shift, s, q);
          sum += s;
          sumsq += q;
        }
        finalize_stats(sum, sumsq, HW, eps, mean + p, rstd + p);
        norm_act_span_any<T, A, ACT>(xp, res ? res + p * HW : nullptr, y + p * HW, HW, coef(p), slope, stream);
      }
    });
    return;
  }
  std::vector<double> part(2 * P * nblk);
  parallel_for(0, P * nblk, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = t / nblk, lo = (t % nblk) * kBlock;
      shifted_sums(x + p * HW + lo, std::min(kBlock, HW - lo), shifts[p], part[2 * t], part[2 * t + 1]);
    }
  });
  for (int64_t p = 0; p < P; ++p) {
    double sum = 0, sumsq = 0;
    for (int64_t blk = 0; blk < nblk; ++blk) {
      sum += part[2 * (p * nblk + blk)];
      sumsq += part[2 * (p * nblk + blk) + 1];
    }
    finalize_stats(sum, sumsq, HW, eps, mean + p, rstd + p);
  }
  parallel_for(0, P * nblk, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = t / nblk, lo = (t % nblk) * kBlock, off = p * HW + lo;
      norm_act_span_any<T, A, ACT>(x + off, res ? res + off : nullptr, y + off, std::min(kBlock, HW - lo), coef(p),
                                   slope, stream);
    }
  });
}

// ------------------------------------------------------------------ channels_last layout helpers

// The shifts of a channels_last x's (n, c) planes, shift[n * C + c].
template <typename T, typename A>
std::vector<A> cl_shifts(const T* x, int64_t N, int64_t C, int64_t HW) {
  return cl_sample_means<T, A>(N, C, HW, [&](auto v, int64_t n, int64_t px, int64_t c) {
    return load<decltype(v)>(x + (n * HW + px) * C + c);
  });
}

// Per-(n, c) coefficients as separate arrays so the channel loop reads them contiguously.
template <typename A>
struct ChannelCoefs {
  std::vector<A> shift, mean, scale, w, b;
};

template <typename T, typename A>
ChannelCoefs<A> channel_coefs(const T* x, const A* mean, const A* rstd, const A* w, const A* b, int64_t N, int64_t C,
                              int64_t HW) {
  ChannelCoefs<A> k;
  const int64_t P = N * C;
  k.shift = cl_shifts<T, A>(x, N, C, HW);
  k.mean.assign(mean, mean + P);
  k.scale.resize(P);
  k.w.resize(P);
  k.b.resize(P);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t p = n * C + c;
      k.w[p] = w ? w[c] : A(1);
      k.b[p] = b ? b[c] : A(0);
      k.scale[p] = rstd[p] * k.w[p];
    }
  }
  return k;
}

// ------------------------------------------------------------------ forward, channels_last

template <typename T, typename A, int ACT, bool HAS_RES>
void norm_act_pixels(const T* __restrict x, const T* __restrict res, T* __restrict y, int64_t pixels, int64_t C,
                     const A* __restrict shift, const A* __restrict mean, const A* __restrict scale,
                     const A* __restrict bias, A slope, bool stream) {
  for (int64_t px = 0; px < pixels; ++px) {
    const int64_t o = px * C;
    for_each_lanes<T, A>(C, [&](auto v, int64_t c) {
      using V = decltype(v);
      V a = act_forward<ACT>(((load<V>(x + o + c) - load<V>(shift + c)) - load<V>(mean + c)) * load<V>(scale + c) +
                                 load<V>(bias + c),
                             slope);
      if constexpr (HAS_RES) a += load<V>(res + o + c);
      store_out(y + o + c, a, stream);
    });
  }
}

template <typename T, typename A, int ACT>
void forward_cl(const T* x, const T* res, T* y, A* mean, A* rstd, const A* w, const A* b, int64_t N, int64_t C,
                int64_t HW, double eps, A slope) {
  const PixelChunks ch(HW, C);
  // Shifted sums, about the mean of each (n, c)'s first pixels (params.h: sample_mean).
  const std::vector<A> shift = cl_shifts<T, A>(x, N, C, HW);
  std::vector<double> sum, sumsq;
  cl_channel_sums<T, A>(
      N, HW, C,
      [&](int64_t n, int64_t, int64_t off) {
        const T* __restrict xr = x + off;
        const A* __restrict sh = shift.data() + n * C;
        return [=](auto v, int64_t c) {
          using V = decltype(v);
          const V d = load<V>(xr + c) - load<V>(sh + c);
          return std::pair<V, V>(d, d * d);
        };
      },
      sum, sumsq);
  for (int64_t p = 0; p < N * C; ++p) finalize_stats(sum[p], sumsq[p], HW, eps, mean + p, rstd + p);
  const ChannelCoefs<A> k = channel_coefs(x, mean, rstd, w, b, N, C, HW);
  const bool stream = stream_outputs<T>(N * HW * C);
  parallel_for(0, N * ch.n, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / ch.n, kk = t % ch.n;
      const int64_t off = (n * HW + ch.begin(kk)) * C, pixels = ch.end(kk, HW) - ch.begin(kk);
      const int64_t pc = n * C;
      if (res != nullptr) {
        norm_act_pixels<T, A, ACT, true>(x + off, res + off, y + off, pixels, C, &k.shift[pc], &k.mean[pc],
                                         &k.scale[pc], &k.b[pc], slope, stream);
      } else {
        norm_act_pixels<T, A, ACT, false>(x + off, nullptr, y + off, pixels, C, &k.shift[pc], &k.mean[pc],
                                          &k.scale[pc], &k.b[pc], slope, stream);
      }
    }
  });
}

// ------------------------------------------------------------------ backward, NCHW
// With z = xhat * w + b and dz = dy * act'(z):
//   dx = rstd * w * (dz - mean(dz) - xhat * mean(dz * xhat)),
//   dweight = sum(dz * xhat), dbias = sum(dz) (summed over the batch by the caller).

// xhat and dz = dy * act'(xhat * w + b) for lanes V of x and dy. The coefficients are per channel,
// so the same code serves one plane (scalars of A) and a row of channels (vectors loaded from the
// per-channel arrays).
template <typename V, typename K>
EFFGAN_INLINE V normalized(V x, K shift, K mean, K rstd) {
  return ((x - shift) - mean) * rstd;
}

template <int ACT, typename V, typename K, typename A>
EFFGAN_INLINE V upstream_grad(V xhat, V dy, K w, K b, A slope) {
  V dz = dy;
  dz = act_backward<ACT>(dz, xhat * w + b, slope);
  return dz;
}

// The sums of dz and dz * xhat over the span; dz is also written to dz_keep when given.
template <typename T, typename A, int ACT>
EFFGAN_INLINE void grad_sums(const T* __restrict x, const T* __restrict dy, int64_t len, const PlaneCoef<A>& k,
                             A slope, double& sum_dz, double& sum_dzx, A* __restrict dz_keep) {
  double sums[2];
  lane_sums<2, T, A>(
      len,
      [&](auto v, int64_t i, auto* t) {
        using V = decltype(v);
        const V xhat = normalized(load<V>(x + i), k.shift, k.mean, k.rstd);
        const V dz = upstream_grad<ACT>(xhat, load<V>(dy + i), k.w, k.b, slope);
        if (dz_keep != nullptr) store(dz_keep + i, dz);
        t[0] = dz;
        t[1] = dz * xhat;
      },
      sums);
  sum_dz = sums[0];
  sum_dzx = sums[1];
}

// dx over the span, from dz_kept (grad_sums' dz_keep) when given, else recomputing dz.
template <typename T, typename A, int ACT>
void input_grad_span(const T* __restrict x, const T* __restrict dy, T* __restrict dx, int64_t len,
                     const PlaneCoef<A>& k, A slope, A mean_dz, A mean_dzx, const A* __restrict dz_kept,
                     bool stream) {
  // Copies, so that the stores through dx cannot be taken to change them.
  const PlaneCoef<A> kc = k;
  const A kw = kc.rstd * kc.w;
  for_each_lanes<T, A>(len, [&](auto v, int64_t i) {
    using V = decltype(v);
    const V xhat = normalized(load<V>(x + i), kc.shift, kc.mean, kc.rstd);
    const V dz =
        dz_kept != nullptr ? load<V>(dz_kept + i) : upstream_grad<ACT>(xhat, load<V>(dy + i), kc.w, kc.b, slope);
    store_out(dx + i, kw * (dz - mean_dz - xhat * mean_dzx), stream);
  });
}

template <typename T, typename A, int ACT>
void backward_nchw(const T* dy, const T* x, T* dx, const A* mean, const A* rstd, const A* w, const A* b,
                   A* sum_dz, A* sum_dzx, int64_t N, int64_t C, int64_t HW, A slope) {
  const int64_t P = N * C;
  const int64_t nblk = ceil_div(HW, kBlock);
  const bool stream = stream_outputs<T>(P * HW);
  const bool split = split_planes(P, nblk);
  std::vector<A> shifts = split ? plane_shifts<T, A>(x, P, HW) : std::vector<A>(P);  // as forward_nchw
  auto coef = [&](int64_t p) {
    const int64_t c = p % C;
    return PlaneCoef<A>{shifts[p], mean[p], rstd[p], w ? w[c] : A(1), b ? b[c] : A(0)};
  };
  auto finish = [&](int64_t p, double sdz, double sdzx) {
    sum_dz[p] = static_cast<A>(sdz);
    sum_dzx[p] = static_cast<A>(sdzx);
  };
  auto means = [&](int64_t p, A& mdz, A& mdzx) {
    mdz = static_cast<A>(static_cast<double>(sum_dz[p]) / HW);
    mdzx = static_cast<A>(static_cast<double>(sum_dzx[p]) / HW);
  };
  if (!split) {
    parallel_for(0, P, 1, [&](int64_t p0, int64_t p1) {
      // A costly activation's dz is kept for the dx pass (a plane per thread, read back from L2)
      // rather than evaluated twice; the same values either way.
      std::vector<A> dz_buf(kCostlyAct<ACT> ? HW : 0);
      A* dz_keep = kCostlyAct<ACT> ? dz_buf.data() : nullptr;
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t base = p * HW;
        shifts[p] = plane_shift<T, A>(x + base, HW);
        const PlaneCoef<A> k = coef(p);
        double sdz = 0, sdzx = 0;
        for (int64_t blk = 0; blk < nblk; ++blk) {
          const int64_t lo = blk * kBlock;
          double a, c;
          grad_sums<T, A, ACT>(x + base + lo, dy + base + lo, std::min(kBlock, HW - lo), k, slope, a, c,
                               dz_keep != nullptr ? dz_keep + lo : nullptr);
          sdz += a;
          sdzx += c;
        }
        finish(p, sdz, sdzx);
        A mdz, mdzx;
        means(p, mdz, mdzx);
        input_grad_span<T, A, ACT>(x + base, dy + base, dx + base, HW, k, slope, mdz, mdzx, dz_keep, stream);
      }
    });
    return;
  }
  std::vector<double> part(2 * P * nblk);
  parallel_for(0, P * nblk, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = t / nblk, lo = (t % nblk) * kBlock, off = p * HW + lo;
      grad_sums<T, A, ACT>(x + off, dy + off, std::min(kBlock, HW - lo), coef(p), slope, part[2 * t],
                           part[2 * t + 1], nullptr);
    }
  });
  for (int64_t p = 0; p < P; ++p) {
    double sdz = 0, sdzx = 0;
    for (int64_t blk = 0; blk < nblk; ++blk) {
      sdz += part[2 * (p * nblk + blk)];
      sdzx += part[2 * (p * nblk + blk) + 1];
    }
    finish(p, sdz, sdzx);
  }
  parallel_for(0, P * nblk, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = t / nblk, lo = (t % nblk) * kBlock, off = p * HW + lo;
      A mdz, mdzx;
      means(p, mdz, mdzx);
      input_grad_span<T, A, ACT>(x + off, dy + off, dx + off, std::min(kBlock, HW - lo), coef(p), slope, mdz, mdzx,
                                 nullptr, stream);
    }
  });
}

// ------------------------------------------------------------------ backward, channels_last

template <typename T, typename A, int ACT>
void backward_cl(const T* dy, const T* x, T* dx, const A* mean, const A* rstd, const A* w, const A* b, A* sum_dz,
                 A* sum_dzx, int64_t N, int64_t C, int64_t HW, A slope) {
  const PixelChunks ch(HW, C);
  const ChannelCoefs<A> k = channel_coefs(x, mean, rstd, w, b, N, C, HW);
  std::vector<double> tdz, tdzx;
  cl_channel_sums<T, A>(
      N, HW, C,
      [&](int64_t n, int64_t, int64_t off) {
        const T* __restrict xr = x + off;
        const T* __restrict dyr = dy + off;
        const int64_t pc = n * C;
        const A *__restrict sh = &k.shift[pc], *__restrict mu = &k.mean[pc], *__restrict rs = rstd + pc;
        const A *__restrict ww = &k.w[pc], *__restrict bb = &k.b[pc];
        return [=](auto v, int64_t c) {
          using V = decltype(v);
          const V xhat = normalized(load<V>(xr + c), load<V>(sh + c), load<V>(mu + c), load<V>(rs + c));
          const V dz = upstream_grad<ACT>(xhat, load<V>(dyr + c), load<V>(ww + c), load<V>(bb + c), slope);
          return std::pair<V, V>(dz, dz * xhat);
        };
      },
      tdz, tdzx);
  std::vector<A> mdz(N * C), mdzx(N * C);
  for (int64_t p = 0; p < N * C; ++p) {
    sum_dz[p] = static_cast<A>(tdz[p]);
    sum_dzx[p] = static_cast<A>(tdzx[p]);
    mdz[p] = static_cast<A>(static_cast<double>(sum_dz[p]) / HW);
    mdzx[p] = static_cast<A>(static_cast<double>(sum_dzx[p]) / HW);
  }
  const bool stream = stream_outputs<T>(N * HW * C);
  parallel_for(0, N * ch.n, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / ch.n, kk = t % ch.n, pc = n * C;
      const A* __restrict sh = &k.shift[pc];
      const A* __restrict mu = &k.mean[pc];
      const A* __restrict rs = rstd + pc;
      const A* __restrict sc = &k.scale[pc];
      const A* __restrict ww = &k.w[pc];
      const A* __restrict bb = &k.b[pc];
      const A* __restrict md = &mdz[pc];
      const A* __restrict mdx = &mdzx[pc];
      for (int64_t px = ch.begin(kk); px < ch.end(kk, HW); ++px) {
        const int64_t o = (n * HW + px) * C;
        for_each_lanes<T, A>(C, [&](auto v, int64_t c) {
          using V = decltype(v);
          const V xhat = normalized(load<V>(x + o + c), load<V>(sh + c), load<V>(mu + c), load<V>(rs + c));
          const V dz = upstream_grad<ACT>(xhat, load<V>(dy + o + c), load<V>(ww + c), load<V>(bb + c), slope);
          store_out(dx + o + c, load<V>(sc + c) * (dz - load<V>(md + c) - xhat * load<V>(mdx + c)), stream);
        });
      }
    }
  });
}

}  // namespace

// ------------------------------------------------------------------ entry points

void instance_norm_act_fwd(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual,
                           const at::Tensor& y, const at::Tensor& mean, const at::Tensor& rstd, double eps,
                           int64_t act, double slope) {
  const Layout layout = input_layout(x, "x");
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const at::ScalarType acc = acc_dtype(x.scalar_type());
  check_like(y, x, "y");
  if (residual.has_value() && residual->defined()) check_like(*residual, x, "residual");
  check_shape_dtype(mean, {N, C}, acc, "mean");
  check_shape_dtype(rstd, {N, C}, acc, "rstd");
  TORCH_CHECK_VALUE(std::isfinite(eps) && eps > 0, "eps must be a finite number > 0, got ", eps);
  TORCH_CHECK_VALUE(std::isfinite(slope), "slope must be finite, got ", slope);
  check_act(act);
  const auto w = per_channel(weight, C, acc, "weight");
  const auto b = per_channel(bias, C, acc, "bias");
  const bool has_res = residual.has_value() && residual->defined();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "instance_norm_act_fwd", [&] {
    using T = scalar_t;
    using A = acc_t<T>;
    const T* xp = x.const_data_ptr<T>();
    const T* rp = has_res ? residual->const_data_ptr<T>() : nullptr;
    T* yp = y.mutable_data_ptr<T>();
    A* mp = mean.mutable_data_ptr<A>();
    A* sp = rstd.mutable_data_ptr<A>();
    dispatch_act(static_cast<int>(act), [&](auto tag) {
      constexpr int ACT = decltype(tag)::value;
      if (layout == Layout::kNCHW) {
        forward_nchw<T, A, ACT>(xp, rp, yp, mp, sp, opt_ptr<A>(w), opt_ptr<A>(b), N, C, HW, eps,
                                static_cast<A>(slope));
      } else {
        forward_cl<T, A, ACT>(xp, rp, yp, mp, sp, opt_ptr<A>(w), opt_ptr<A>(b), N, C, HW, eps,
                              static_cast<A>(slope));
      }
    });
  });
}

void instance_norm_act_bwd(const at::Tensor& dy, const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
                           const at::Tensor& dx, const at::Tensor& sum_dz, const at::Tensor& sum_dzx, int64_t act,
                           double slope) {
  const Layout layout = input_layout(x, "x");
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const at::ScalarType acc = acc_dtype(x.scalar_type());
  check_like(dy, x, "dy");
  check_like(dx, x, "dx");
  check_shape_dtype(mean, {N, C}, acc, "mean");
  check_shape_dtype(rstd, {N, C}, acc, "rstd");
  check_shape_dtype(sum_dz, {N, C}, acc, "sum_dz");
  check_shape_dtype(sum_dzx, {N, C}, acc, "sum_dzx");
  TORCH_CHECK_VALUE(std::isfinite(slope), "slope must be finite, got ", slope);
  check_act(act);
  const auto w = per_channel(weight, C, acc, "weight");
  const auto b = per_channel(bias, C, acc, "bias");

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "instance_norm_act_bwd", [&] {
    using T = scalar_t;
    using A = acc_t<T>;
    const T* xp = x.const_data_ptr<T>();
    const T* gp = dy.const_data_ptr<T>();
    T* dxp = dx.mutable_data_ptr<T>();
    const A* mp = mean.const_data_ptr<A>();
    const A* sp = rstd.const_data_ptr<A>();
    A* s1 = sum_dz.mutable_data_ptr<A>();
    A* s2 = sum_dzx.mutable_data_ptr<A>();
    dispatch_act(static_cast<int>(act), [&](auto tag) {
      constexpr int ACT = decltype(tag)::value;
      if (layout == Layout::kNCHW) {
        backward_nchw<T, A, ACT>(gp, xp, dxp, mp, sp, opt_ptr<A>(w), opt_ptr<A>(b), s1, s2, N, C, HW,
                                 static_cast<A>(slope));
      } else {
        backward_cl<T, A, ACT>(gp, xp, dxp, mp, sp, opt_ptr<A>(w), opt_ptr<A>(b), s1, s2, N, C, HW,
                               static_cast<A>(slope));
      }
    });
  });
}

}  // namespace effgan
