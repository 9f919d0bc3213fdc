// AdaIN, the StyleGAN layer epilogue, on the CPU, forward and backward:
//   u = x + noise[n, hw] * noise_weight[c] + bias[c];  h = act(u);
//   y = instance_norm(h) * style_scale[n, c] + style_bias[n, c].
// u and h are never written out: passes recompute them from x and the noise image, except that the
// forward keeps one plane of h per thread between its two passes for costly activations (silu, tanh).
//
// Same plan as instance_norm_act.cpp (fixed reduction blocks, whole planes per thread when there
// are enough of them, pixel chunks for channels_last, simd.h vectors for float and bfloat16).
// Statistics are sums of h - shift with shift = the mean of h over the plane's first positions
// (params.h: sample_mean, which says why); the saved
// (shift, mean - shift, 1/std) are what this file's backward reads. Without noise the kernels read
// a row of zeros (x + 0 * 0 == x exactly), which keeps one code path; without bias, bias 0.
//
// Backward, with hhat = (h - mean) * rstd and k = rstd * style_scale:
//   d style_bias = sum(dy), d style_scale = sum(dy * hhat),
//   du = k * (dy - mean(dy) - hhat * mean(dy * hhat)) * act'(u)  (returned as dx),
//   per-plane sums of du * noise and du (noise-weight and bias gradients, summed over N by the caller).
#include <ATen/Dispatch.h>
#include <ATen/ops/zeros.h>

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <utility>

#include "adain.h"
#include "params.h"

namespace effgan {
namespace {

template <typename A>
struct AdaCoef {
  A nw, b;          // noise weight, bias (0 when absent)
  A shift, mean, rstd;
  A k, sb;          // rstd * style_scale, style_bias
};

// u = x + z * noise_weight + bias, elementwise over lanes: x is a value or a vector of values, and
// z and the coefficients are scalars or vectors (one plane, or a row of channels at one pixel).
template <typename X, typename Z, typename K>
EFFGAN_INLINE X pre_act(X x, Z z, K nw, K b) {
  return x + z * nw + b;
}

// h = act(u): the activated values whose statistics the AdaIN normalises.
template <int ACT, typename X, typename Z, typename K, typename S>
EFFGAN_INLINE X activated(X x, Z z, K nw, K b, S slope) {
  return act_forward<ACT>(pre_act(x, z, nw, b), slope);
}

// The sums of h - shift and its square over the span; h is also written to h_keep when given.
template <typename T, typename A, int ACT>
EFFGAN_INLINE void h_sums(const T* __restrict x, const T* __restrict z, int64_t len, const AdaCoef<A>& c, A slope,
                          double& sum, double& sumsq, A* __restrict h_keep) {
  double sums[2];
  lane_sums<2, T, A>(
      len,
      [&](auto v, int64_t i, auto* t) {
        using V = decltype(v);
        const V h = activated<ACT>(load<V>(x + i), load<V>(z + i), c.nw, c.b, slope);
        if (h_keep != nullptr) store(h_keep + i, h);
        const V d = h - c.shift;
        t[0] = d;
        t[1] = d * d;
      },
      sums);
  sum = sums[0];
  sumsq = sums[1];
}

// y over the span, from h_kept (h_sums' h_keep) when given, else recomputing h.
template <typename T, typename A, int ACT>
void style_span(const T* __restrict x, const T* __restrict z, T* __restrict y, int64_t len, const AdaCoef<A>& c,
                A slope, const A* __restrict h_kept, bool stream) {
  const AdaCoef<A> k = c;  // a copy: the stores through y cannot be taken to change it
  for_each_lanes<T, A>(len, [&](auto v, int64_t i) {
    using V = decltype(v);
    const V h = h_kept != nullptr ? load<V>(h_kept + i)
                                  : activated<ACT>(load<V>(x + i), load<V>(z + i), k.nw, k.b, slope);
    store_out(y + i, ((h - k.shift) - k.mean) * k.k + k.sb, stream);
  });
}

template <typename T, typename A, int ACT>
EFFGAN_INLINE void dy_sums(const T* __restrict x, const T* __restrict z, const T* __restrict dy, int64_t len,
                           const AdaCoef<A>& c, A slope, double& sum_dy, double& sum_dyh) {
  double sums[2];
  lane_sums<2, T, A>(
      len,
      [&](auto v, int64_t i, auto* t) {
        using V = decltype(v);
        const V h = activated<ACT>(load<V>(x + i), load<V>(z + i), c.nw, c.b, slope);
        const V g = load<V>(dy + i);
        t[0] = g;
        t[1] = g * (((h - c.shift) - c.mean) * c.rstd);
      },
      sums);
  sum_dy = sums[0];
  sum_dyh = sums[1];
}

// du = k * (dy - mean(dy) - hhat * mean(dy * hhat)) * act'(u) for lanes of u.
template <int ACT, typename V, typename K, typename A>
EFFGAN_INLINE V input_grad(V u, V dy, K shift, K mean, K rstd, K k, K mdy, K mdyh, A slope) {
  const V hhat = ((act_forward<ACT>(u, slope) - shift) - mean) * rstd;
  V du = k * (dy - mdy - hhat * mdyh);
  du = act_backward<ACT>(du, u, slope);
  return du;
}

// Writes du over the span and returns its sums of du * z and du.
template <typename T, typename A, int ACT>
EFFGAN_INLINE void du_span(const T* __restrict x, const T* __restrict z, const T* __restrict dy, T* __restrict dx,
                           int64_t len, const AdaCoef<A>& c, A slope, A mdy, A mdyh, double& sum_duz,
                           double& sum_du, bool stream) {
  const AdaCoef<A> k = c;  // a copy: the stores through dx cannot be taken to change it
  double sums[2];
  lane_sums<2, T, A>(
      len,
      [&](auto v, int64_t i, auto* t) {
        using V = decltype(v);
        const V zv = load<V>(z + i);
        const V du = input_grad<ACT>(pre_act(load<V>(x + i), zv, k.nw, k.b), load<V>(dy + i), k.shift, k.mean,
                                     k.rstd, k.k, mdy, mdyh, slope);
        store_out(dx + i, du, stream);
        t[0] = du * zv;
        t[1] = du;
      },
      sums);
  sum_duz = sums[0];
  sum_du = sums[1];
}

struct Operands {
  int64_t N, C, HW;
  int64_t z_stride_n;  // noise row stride (0: one image for the batch, or the zero row)
};

// ------------------------------------------------------------------ NCHW

template <typename T, typename A, int ACT>
void forward_nchw(const T* x, const T* z, const Operands& o, const A* nw, const A* b, const A* scale, const A* sbias,
                  T* y, A* shift, A* mean, A* rstd, double eps, A slope) {
  const int64_t P = o.N * o.C, HW = o.HW;
  const int64_t nblk = ceil_div(HW, kBlock);
  const bool stream = stream_outputs<T>(P * HW);
  // The shift of plane p: sample_mean of h. Whole planes per thread take it as they start the
  // plane; split planes need every shift before their blocks.
  auto plane_shift_h = [&](int64_t p) {
    const int64_t c = p % o.C;
    const A nwc = nw ? nw[c] : A(0), bc = b ? b[c] : A(0);
    const T* xp = x + p * HW;
    const T* zp = z + (p / o.C) * o.z_stride_n;
    return sample_mean<T, A>(HW, [&](auto v, int64_t i) {
      using V = decltype(v);
      return activated<ACT>(load<V>(xp + i), load<V>(zp + i), nwc, bc, slope);
    });
  };
  const bool split = split_planes(P, nblk);
  std::vector<A> shifts(P);
  if (split) {
    parallel_for(0, P, 64, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) shifts[p] = plane_shift_h(p);
    });
  }
  auto coef = [&](int64_t p) {
    const int64_t c = p % o.C;
    return AdaCoef<A>{nw ? nw[c] : A(0), b ? b[c] : A(0), shifts[p], A(0), A(0), A(0), A(0)};
  };
  auto finish = [&](int64_t p, AdaCoef<A>& k, double sum, double sumsq) {
    const double m = sum / static_cast<double>(HW);
    const double var = std::max(sumsq / static_cast<double>(HW) - m * m, 0.0);
    shift[p] = k.shift;
    mean[p] = k.mean = static_cast<A>(m);
    rstd[p] = k.rstd = static_cast<A>(1.0 / std::sqrt(var + eps));
    k.k = k.rstd * scale[p];
    k.sb = sbias[p];
  };
  if (!split) {
    parallel_for(0, P, 1, [&](int64_t p0, int64_t p1) {
      // A costly activation's h is kept for the output pass (a plane per thread, read back from L2)
      // rather than evaluated twice; the same values either way.
      std::vector<A> h_buf(kCostlyAct<ACT> ? HW : 0);
      A* h_keep = kCostlyAct<ACT> ? h_buf.data() : nullptr;
      for (int64_t p = p0; p < p1; ++p) {
        shifts[p] = plane_shift_h(p);
        AdaCoef<A> k = coef(p);
        const T* xp = x + p * HW;
        const T* zp = z + (p / o.C) * o.z_stride_n;
        double sum = 0, sumsq = 0;
        for (int64_t lo = 0; lo < HW; lo += kBlock) {
          double s, q;
          h_sums<T, A, ACT>(xp + lo, zp + lo, std::min(kBlock, HW - lo), k, slope, s, q,
                            h_keep != nullptr ? h_keep + lo : nullptr);
          sum += s;
          sumsq += q;
        }
        finish(p, k, sum, sumsq);
        style_span<T, A, ACT>(xp, zp, y + p * HW, HW, k, slope, h_keep, stream);
      }
    });
    return;
  }
  std::vector<double> part(2 * P * nblk);
  parallel_for(0, P * nblk, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = t / nblk, lo = (t % nblk) * kBlock;
      h_sums<T, A, ACT>(x + p * HW + lo, z + (p / o.C) * o.z_stride_n + lo, std::min(kBlock, HW - lo), coef(p), slope,
                        part[2 * t], part[2 * t + 1], nullptr);
    }
  });
  std::vector<AdaCoef<A>> ks(P);
  for (int64_t p = 0; p < P; ++p) {
    double sum = 0, sumsq = 0;
    for (int64_t blk = 0; blk < nblk; ++blk) {
      sum += part[2 * (p * nblk + blk)];
      sumsq += part[2 * (p * nblk + blk) + 1];
    }
    ks[p] = coef(p);
    finish(p, ks[p], sum, sumsq);
  }
  parallel_for(0, P * nblk, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = t / nblk, lo = (t % nblk) * kBlock;
      style_span<T, A, ACT>(x + p * HW + lo, z + (p / o.C) * o.z_stride_n + lo, y + p * HW + lo,
                            std::min(kBlock, HW - lo), ks[p], slope, nullptr, stream);
    }
  });
}

template <typename T, typename A, int ACT>
void backward_nchw(const T* dy, const T* x, const T* z, const Operands& o, const A* nw, const A* b, const A* scale,
                   const A* shift, const A* mean, const A* rstd, T* dx, A* sum_dy, A* sum_dyh, A* sum_duz, A* sum_du,
                   A slope) {
  const int64_t P = o.N * o.C, HW = o.HW;
  const int64_t nblk = ceil_div(HW, kBlock);
  const bool stream = stream_outputs<T>(P * HW);
  auto coef = [&](int64_t p) {
    const int64_t c = p % o.C;
    return AdaCoef<A>{nw ? nw[c] : A(0), b ? b[c] : A(0), shift[p], mean[p], rstd[p], rstd[p] * scale[p], A(0)};
  };
  // The two means of the input-gradient formula, from the stored per-plane sums.
  auto means = [&](int64_t p, A& mdy, A& mdyh) {
    mdy = static_cast<A>(static_cast<double>(sum_dy[p]) / HW);
    mdyh = static_cast<A>(static_cast<double>(sum_dyh[p]) / HW);
  };
  if (!split_planes(P, nblk)) {
    parallel_for(0, P, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const AdaCoef<A> k = coef(p);
        const int64_t base = p * HW;
        const T* zp = z + (p / o.C) * o.z_stride_n;
        double s1 = 0, s2 = 0;
        for (int64_t lo = 0; lo < HW; lo += kBlock) {
          double a, c;
          dy_sums<T, A, ACT>(x + base + lo, zp + lo, dy + base + lo, std::min(kBlock, HW - lo), k, slope, a, c);
          s1 += a;
          s2 += c;
        }
        sum_dy[p] = static_cast<A>(s1);
        sum_dyh[p] = static_cast<A>(s2);
        A mdy, mdyh;
        means(p, mdy, mdyh);
        double s3 = 0, s4 = 0;
        for (int64_t lo = 0; lo < HW; lo += kBlock) {
          double a, c;
          du_span<T, A, ACT>(x + base + lo, zp + lo, dy + base + lo, dx + base + lo, std::min(kBlock, HW - lo), k,
                             slope, mdy, mdyh, a, c, stream);
          s3 += a;
          s4 += c;
        }
        sum_duz[p] = static_cast<A>(s3);
        sum_du[p] = static_cast<A>(s4);
      }
    });
    return;
  }
  std::vector<double> part(2 * P * nblk);
  parallel_for(0, P * nblk, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = t / nblk, lo = (t % nblk) * kBlock;
      dy_sums<T, A, ACT>(x + p * HW + lo, z + (p / o.C) * o.z_stride_n + lo, dy + p * HW + lo,
                         std::min(kBlock, HW - lo), coef(p), slope, part[2 * t], part[2 * t + 1]);
    }
  });
  for (int64_t p = 0; p < P; ++p) {
    double s1 = 0, s2 = 0;
    for (int64_t blk = 0; blk < nblk; ++blk) {
      s1 += part[2 * (p * nblk + blk)];
      s2 += part[2 * (p * nblk + blk) + 1];
    }
    sum_dy[p] = static_cast<A>(s1);
    sum_dyh[p] = static_cast<A>(s2);
  }
  parallel_for(0, P * nblk, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t p = t / nblk, lo = (t % nblk) * kBlock, off = p * HW + lo;
      A mdy, mdyh;
      means(p, mdy, mdyh);
      du_span<T, A, ACT>(x + off, z + (p / o.C) * o.z_stride_n + lo, dy + off, dx + off, std::min(kBlock, HW - lo),
                         coef(p), slope, mdy, mdyh, part[2 * t], part[2 * t + 1], stream);
    }
  });
  for (int64_t p = 0; p < P; ++p) {
    double s3 = 0, s4 = 0;
    for (int64_t blk = 0; blk < nblk; ++blk) {
      s3 += part[2 * (p * nblk + blk)];
      s4 += part[2 * (p * nblk + blk) + 1];
    }
    sum_duz[p] = static_cast<A>(s3);
    sum_du[p] = static_cast<A>(s4);
  }
}

// ------------------------------------------------------------------ channels_last

// Per-(n, c) values as arrays, so the channel loop reads them contiguously.
template <typename A>
struct ChannelArrays {
  std::vector<A> nw, b, shift, mean, rstd, k, sb;
  explicit ChannelArrays(int64_t P) : nw(P), b(P), shift(P), mean(P), rstd(P), k(P), sb(P) {}
};

template <typename T, typename A, int ACT>
void forward_cl(const T* x, const T* z, const Operands& o, const A* nw, const A* b, const A* scale, const A* sbias,
                T* y, A* shift, A* mean, A* rstd, double eps, A slope) {
  const int64_t N = o.N, C = o.C, HW = o.HW, P = N * C;
  const PixelChunks ch(HW, C);
  ChannelArrays<A> a(P);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t p = n * C + c;
      a.nw[p] = nw ? nw[c] : A(0);
      a.b[p] = b ? b[c] : A(0);
    }
  }
  a.shift = cl_sample_means<T, A>(N, C, HW, [&](auto v, int64_t n, int64_t px, int64_t c) {
    using V = decltype(v);
    const int64_t p = n * C + c;
    return activated<ACT>(load<V>(x + (n * HW + px) * C + c), static_cast<A>(z[n * o.z_stride_n + px]),
                          load<V>(a.nw.data() + p), load<V>(a.b.data() + p), slope);
  });
  std::vector<double> sum, sumsq;
  cl_channel_sums<T, A>(
      N, HW, C,
      [&](int64_t n, int64_t px, int64_t off) {
        const A zv = static_cast<A>(z[n * o.z_stride_n + px]);
        const T* __restrict xr = x + off;
        const int64_t pc = n * C;
        const A *__restrict anw = &a.nw[pc], *__restrict ab = &a.b[pc], *__restrict ash = &a.shift[pc];
        return [=](auto v, int64_t c) {
          using V = decltype(v);
          const V d = activated<ACT>(load<V>(xr + c), zv, load<V>(anw + c), load<V>(ab + c), slope) -
                      load<V>(ash + c);
          return std::pair<V, V>(d, d * d);
        };
      },
      sum, sumsq);
  for (int64_t p = 0; p < P; ++p) {
    const double m = sum[p] / static_cast<double>(HW);
    const double var = std::max(sumsq[p] / static_cast<double>(HW) - m * m, 0.0);
    shift[p] = a.shift[p];
    mean[p] = a.mean[p] = static_cast<A>(m);
    rstd[p] = a.rstd[p] = static_cast<A>(1.0 / std::sqrt(var + eps));
    a.k[p] = a.rstd[p] * scale[p];
    a.sb[p] = sbias[p];
  }
  const bool stream = stream_outputs<T>(N * HW * C);
  parallel_for(0, N * ch.n, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / ch.n, kk = t % ch.n, pc = n * C;
      const A* __restrict anw = &a.nw[pc];
      const A* __restrict ab = &a.b[pc];
      const A* __restrict ash = &a.shift[pc];
      const A* __restrict am = &a.mean[pc];
      const A* __restrict ak = &a.k[pc];
      const A* __restrict asb = &a.sb[pc];
      for (int64_t px = ch.begin(kk); px < ch.end(kk, HW); ++px) {
        const int64_t off = (n * HW + px) * C;
        const A zv = static_cast<A>(z[n * o.z_stride_n + px]);
        for_each_lanes<T, A>(C, [&](auto v, int64_t c) {
          using V = decltype(v);
          const V h = activated<ACT>(load<V>(x + off + c), zv, load<V>(anw + c), load<V>(ab + c), slope);
          store_out(y + off + c, ((h - load<V>(ash + c)) - load<V>(am + c)) * load<V>(ak + c) + load<V>(asb + c),
                    stream);
        });
      }
    }
  });
}

template <typename T, typename A, int ACT>
void backward_cl(const T* dy, const T* x, const T* z, const Operands& o, const A* nw, const A* b, const A* scale,
                 const A* shift, const A* mean, const A* rstd, T* dx, A* sum_dy, A* sum_dyh, A* sum_duz, A* sum_du,
                 A slope) {
  const int64_t N = o.N, C = o.C, HW = o.HW, P = N * C;
  ChannelArrays<A> a(P);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const int64_t p = n * C + c;
      a.nw[p] = nw ? nw[c] : A(0);
      a.b[p] = b ? b[c] : A(0);
      a.shift[p] = shift[p];
      a.mean[p] = mean[p];
      a.rstd[p] = rstd[p];
      a.k[p] = rstd[p] * scale[p];
    }
  }
  std::vector<double> tot_dy, tot_dyh;
  cl_channel_sums<T, A>(
      N, HW, C,
      [&](int64_t n, int64_t px, int64_t off) {
        const A zv = static_cast<A>(z[n * o.z_stride_n + px]);
        const T *__restrict xr = x + off, *__restrict dyr = dy + off;
        const int64_t pc = n * C;
        const A *__restrict anw = &a.nw[pc], *__restrict ab = &a.b[pc], *__restrict ash = &a.shift[pc];
        const A *__restrict am = &a.mean[pc], *__restrict ar = &a.rstd[pc];
        return [=](auto v, int64_t c) {
          using V = decltype(v);
          const V h = activated<ACT>(load<V>(xr + c), zv, load<V>(anw + c), load<V>(ab + c), slope);
          const V g = load<V>(dyr + c);
          return std::pair<V, V>(g, g * (((h - load<V>(ash + c)) - load<V>(am + c)) * load<V>(ar + c)));
        };
      },
      tot_dy, tot_dyh);
  for (int64_t p = 0; p < P; ++p) {
    sum_dy[p] = static_cast<A>(tot_dy[p]);
    sum_dyh[p] = static_cast<A>(tot_dyh[p]);
  }
  std::vector<A> mdy(P), mdyh(P);
  for (int64_t p = 0; p < P; ++p) {
    mdy[p] = static_cast<A>(static_cast<double>(sum_dy[p]) / HW);
    mdyh[p] = static_cast<A>(static_cast<double>(sum_dyh[p]) / HW);
  }
  std::vector<double> tot_duz, tot_du;
  const bool stream = stream_outputs<T>(N * HW * C);
  cl_channel_sums<T, A>(
      N, HW, C,
      [&](int64_t n, int64_t px, int64_t off) {
        const A zv = static_cast<A>(z[n * o.z_stride_n + px]);
        const T *__restrict xr = x + off, *__restrict dyr = dy + off;
        T* __restrict dxr = dx + off;
        const int64_t pc = n * C;
        const A *__restrict anw = &a.nw[pc], *__restrict ab = &a.b[pc], *__restrict ash = &a.shift[pc];
        const A *__restrict am = &a.mean[pc], *__restrict ar = &a.rstd[pc], *__restrict ak = &a.k[pc];
        const A *__restrict md = &mdy[pc], *__restrict mdh = &mdyh[pc];
        return [=](auto v, int64_t c) {
          using V = decltype(v);
          const V du = input_grad<ACT>(pre_act(load<V>(xr + c), zv, load<V>(anw + c), load<V>(ab + c)),
                                       load<V>(dyr + c), load<V>(ash + c), load<V>(am + c), load<V>(ar + c),
                                       load<V>(ak + c), load<V>(md + c), load<V>(mdh + c), slope);
          store_out(dxr + c, du, stream);
          return std::pair<V, V>(du * zv, du);
        };
      },
      tot_duz, tot_du);
  for (int64_t p = 0; p < P; ++p) {
    sum_duz[p] = static_cast<A>(tot_duz[p]);
    sum_du[p] = static_cast<A>(tot_du[p]);
  }
}

// The noise operand: (N, HW) rows of x's dtype, contiguous along HW, row stride >= 0; absent noise
// becomes one row of zeros (stride 0).
struct NoiseRows {
  at::Tensor rows;
  int64_t stride_n;
};

NoiseRows noise_rows(const std::optional<at::Tensor>& noise, const at::Tensor& x, int64_t N, int64_t HW) {
  if (!noise.has_value() || !noise->defined()) return {at::zeros({HW}, x.options()), 0};
  check_cpu_float(*noise, "noise");
  TORCH_CHECK_VALUE(noise->dim() == 2 && noise->size(0) == N && noise->size(1) == HW,
                    "noise must be an (N, H*W) = (", N, ", ", HW, ") view, got ", noise->sizes());
  TORCH_CHECK_TYPE(noise->scalar_type() == x.scalar_type(), "noise must have dtype ", x.scalar_type(), ", got ",
                   noise->scalar_type());
  TORCH_CHECK_VALUE(noise->stride(1) == 1 || HW == 1, "noise rows must be contiguous, got strides ",
                    noise->strides());
  TORCH_CHECK_VALUE(noise->stride(0) >= 0, "noise must have a non-negative row stride");
  return {*noise, N == 1 ? 0 : noise->stride(0)};
}

void check_style(const at::Tensor& t, int64_t N, int64_t C, const char* name) {
  check_cpu_float(t, name);
  TORCH_CHECK_VALUE(t.dim() == 2 && t.size(0) == N && t.size(1) == C, name, " must have shape (", N, ", ", C,
                    "), got ", t.sizes());
}

// What the forward and backward entry points share: x's layout, the checked statistics, style
// scale, noise and per-channel parameters, the latter converted to the accumulation type.
struct Prepared {
  Layout layout;
  NoiseRows z;
  std::optional<at::Tensor> nw, b;
  at::Tensor scale;
  Operands o;
};

Prepared prepare(const at::Tensor& x, const at::Tensor& style_scale, const std::optional<at::Tensor>& noise,
                 const std::optional<at::Tensor>& noise_weight, const std::optional<at::Tensor>& bias,
                 std::initializer_list<const at::Tensor*> stats, const char* stats_name, int64_t act, double slope) {
  const Layout layout = input_layout(x, "x");
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  const at::ScalarType acc = acc_dtype(x.scalar_type());
  check_style(style_scale, N, C, "style_scale");
  for (const auto* t : stats) check_shape_dtype(*t, {N, C}, acc, stats_name);
  TORCH_CHECK_VALUE(std::isfinite(slope), "slope must be finite, got ", slope);
  check_act(act);
  const bool has_noise = noise.has_value() && noise->defined();
  const bool has_nw = noise_weight.has_value() && noise_weight->defined();
  TORCH_CHECK_VALUE(has_noise == has_nw, "noise and noise_weight must be given together");
  NoiseRows z = noise_rows(noise, x, N, HW);
  const int64_t z_stride = z.stride_n;
  return Prepared{layout, std::move(z), per_channel(noise_weight, C, acc, "noise_weight"),
                  per_channel(bias, C, acc, "bias"), style_scale.to(acc).contiguous(), Operands{N, C, HW, z_stride}};
}

}  // namespace

void adain_fwd(const at::Tensor& x, const at::Tensor& style_scale, const at::Tensor& style_bias,
               const std::optional<at::Tensor>& noise, const std::optional<at::Tensor>& noise_weight,
               const std::optional<at::Tensor>& bias, const at::Tensor& y, const at::Tensor& shift,
               const at::Tensor& mean, const at::Tensor& rstd, double eps, int64_t act, double slope) {
  const Prepared p = prepare(x, style_scale, noise, noise_weight, bias, {&shift, &mean, &rstd}, "statistics output",
                             act, slope);
  const Operands& o = p.o;
  check_like(y, x, "y");
  check_style(style_bias, o.N, o.C, "style_bias");
  TORCH_CHECK_VALUE(std::isfinite(eps) && eps > 0, "eps must be a finite number > 0, got ", eps);
  const at::Tensor sb = style_bias.to(acc_dtype(x.scalar_type())).contiguous();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "adain_fwd", [&] {
    using T = scalar_t;
    using A = acc_t<T>;
    dispatch_act(static_cast<int>(act), [&](auto tag) {
      constexpr int ACT = decltype(tag)::value;
      auto run = p.layout == Layout::kNCHW ? &forward_nchw<T, A, ACT> : &forward_cl<T, A, ACT>;
      run(x.const_data_ptr<T>(), p.z.rows.const_data_ptr<T>(), o, opt_ptr<A>(p.nw), opt_ptr<A>(p.b),
          p.scale.const_data_ptr<A>(), sb.const_data_ptr<A>(), y.mutable_data_ptr<T>(), shift.mutable_data_ptr<A>(),
          mean.mutable_data_ptr<A>(), rstd.mutable_data_ptr<A>(), eps, static_cast<A>(slope));
    });
  });
}

void adain_bwd(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& style_scale,
               const std::optional<at::Tensor>& noise, const std::optional<at::Tensor>& noise_weight,
               const std::optional<at::Tensor>& bias, const at::Tensor& shift, const at::Tensor& mean,
               const at::Tensor& rstd, const at::Tensor& dx, const at::Tensor& sum_dy, const at::Tensor& sum_dyh,
               const at::Tensor& sum_duz, const at::Tensor& sum_du, int64_t act, double slope) {
  const Prepared p = prepare(x, style_scale, noise, noise_weight, bias, {&shift, &mean, &rstd}, "saved statistics",
                             act, slope);
  const Operands& o = p.o;
  check_like(dy, x, "dy");
  check_like(dx, x, "dx");
  for (const auto* t : {&sum_dy, &sum_dyh, &sum_duz, &sum_du}) {
    check_shape_dtype(*t, {o.N, o.C}, acc_dtype(x.scalar_type()), "sum output");
  }

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "adain_bwd", [&] {
    using T = scalar_t;
    using A = acc_t<T>;
    dispatch_act(static_cast<int>(act), [&](auto tag) {
      constexpr int ACT = decltype(tag)::value;
      auto run = p.layout == Layout::kNCHW ? &backward_nchw<T, A, ACT> : &backward_cl<T, A, ACT>;
      run(dy.const_data_ptr<T>(), x.const_data_ptr<T>(), p.z.rows.const_data_ptr<T>(), o, opt_ptr<A>(p.nw),
          opt_ptr<A>(p.b), p.scale.const_data_ptr<A>(), shift.const_data_ptr<A>(), mean.const_data_ptr<A>(),
          rstd.const_data_ptr<A>(), dx.mutable_data_ptr<T>(), sum_dy.mutable_data_ptr<A>(),
          sum_dyh.mutable_data_ptr<A>(), sum_duz.mutable_data_ptr<A>(), sum_du.mutable_data_ptr<A>(),
          static_cast<A>(slope));
    });
  });
}

}  // namespace effgan
