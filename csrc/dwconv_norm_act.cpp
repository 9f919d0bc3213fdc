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
// The conv loops are register-blocked over simd.h's vf8 (float; bfloat16 and Half inputs are
// converted into a float copy of the plane, double runs the same code on scalars): a strip of
// output columns keeps its sums in registers over all K*K taps, so each output is stored once
// instead of updated once per tap. The copy carries a zero frame for the padding, so border outputs
// take the same vector path as the rest (see PaddedPlane).
//
// Padding: zeros are skipped taps (reflect padding is applied by the caller, pad = 0 here).
// channels_last: the same per-plane kernels, each plane gathered into (and its results scattered
// out of) the plane buffers in groups of channels (see Units).
#include <ATen/Dispatch.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

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

// Lanes 0, 2, .., 14 and 1, 3, .., 15 of the sixteen values lo:hi (stride-2 taps).
EFFGAN_INLINE vf8 even_lanes(vf8 lo, vf8 hi) { return __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14); }
EFFGAN_INLINE vf8 odd_lanes(vf8 lo, vf8 hi) { return __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15); }

// xv[kw] = tap kw of one input row for one output (V = A) or for eight consecutive outputs (V =
// vf8, input columns S apart); p points at the input column wo * S - P of the (first) output, and
// every tap must lie inside the row.
template <int K, int S, typename V, typename T>
EFFGAN_INLINE void row_taps(const T* p, V (&xv)[K]) {
  if constexpr (!kIsVec<V> || S == 1) {
    for (int kw = 0; kw < K; ++kw) xv[kw] = load<V>(p + kw);
  } else {
    // Stride 2: taps kw and kw + 1 are the even and odd lanes of the sixteen values from p + kw, so
    // a pair costs two loads and two shuffles. No load reaches past p + K - 1 + 14, the last
    // output's last tap: the odd K-th tap takes its even lanes from the loads at p + kw and
    // p + kw + 7 rather than reading one value beyond the row (or the plane).
    int kw = 0;
    for (; kw + 1 < K; kw += 2) {
      const vf8 lo = load8(p + kw), hi = load8(p + kw + 8);
      xv[kw] = even_lanes(lo, hi);
      xv[kw + 1] = odd_lanes(lo, hi);
    }
    if (kw < K) {
      const vf8 lo = load8(p + kw), hi = load8(p + kw + 7);
      xv[kw] = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 9, 11, 13, 15);
    }
  }
}

// Units of work: NCHW planes one at a time; channels_last planes in groups of kGroup consecutive
// channels of one sample. A group is gathered into its plane buffers eight pixels by eight channels
// at a time (an in-register transpose), run through the same per-plane kernels, and its results
// are scattered back the same way, so channels_last crosses memory as often as NCHW does.
// Measured, 1x256x64x64 silu, 2 threads, forward / backward: NCHW 0.95 / 1.8 ms, channels_last
// 1.5 / 2.8 ms. Before, in runs where NCHW took 1.1 / 2.1 ms: transposing copies in and out (five
// extra passes) 7.7 / 14.2 ms; one plane gathered at a time, C values apart, 5.0 / 7.8 ms (every
// plane swept all of the tensor's cache lines); groups of 16 with scalar gathers 2.4 / 5.2 ms.
// Groups of 16 (a whole cache line of floats per pixel) measured the same as 8 with the
// transpose, and hold twice the buffers.
constexpr int kGroup = 8;
// The pixels are C values apart, too far for the hardware prefetcher to follow: the gather and the
// scatter ask for the line this many pixels ahead (past the end it is only a hint, never a fault).
constexpr int64_t kPrefetchPixels = 16;

struct Units {
  int64_t N, C;
  bool channels_last;
  int64_t groups_per_sample() const { return ceil_div(C, kGroup); }
  int64_t count() const { return channels_last ? N * groups_per_sample() : N * C; }
  // The first plane (n * C + c) of unit u and how many planes it holds.
  int64_t first(int64_t u) const {
    return channels_last ? (u / groups_per_sample()) * C + (u % groups_per_sample()) * kGroup : u;
  }
  int size(int64_t u) const {
    return channels_last ? static_cast<int>(std::min<int64_t>(kGroup, C - (u % groups_per_sample()) * kGroup)) : 1;
  }
  int max_size() const { return channels_last ? kGroup : 1; }
};

// r[i][j] <- r[j][i] for an 8x8 block of floats (three rounds of shuffles, 24 in all).
EFFGAN_INLINE void transpose8(vf8 (&r)[8]) {
  vf8 a[8], b[8];
  for (int i = 0; i < 8; i += 2) {
    a[i / 2] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    a[4 + i / 2] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  // a[0..3]: pairs of rows (0,1), (2,3), (4,5), (6,7) interleaved low; a[4..7]: high.
  for (int h = 0; h < 2; ++h) {
    const vf8* lo = a + 4 * h;
    b[4 * h + 0] = __builtin_shufflevector(lo[0], lo[1], 0, 1, 8, 9, 4, 5, 12, 13);
    b[4 * h + 1] = __builtin_shufflevector(lo[0], lo[1], 2, 3, 10, 11, 6, 7, 14, 15);
    b[4 * h + 2] = __builtin_shufflevector(lo[2], lo[3], 0, 1, 8, 9, 4, 5, 12, 13);
    b[4 * h + 3] = __builtin_shufflevector(lo[2], lo[3], 2, 3, 10, 11, 6, 7, 14, 15);
  }
  // b[0], b[1], b[4], b[5]: columns (0, 4), (1, 5), (2, 6), (3, 7) of rows 0-3; b[2], b[3], b[6],
  // b[7] the same of rows 4-7.
  const int col[4] = {0, 1, 4, 5};
  for (int i = 0; i < 4; ++i) {
    r[i] = __builtin_shufflevector(b[col[i]], b[col[i] + 2], 0, 1, 2, 3, 8, 9, 10, 11);
    r[i + 4] = __builtin_shufflevector(b[col[i]], b[col[i] + 2], 4, 5, 6, 7, 12, 13, 14, 15);
  }
}

// dst[k][h * dst_stride + w] = src[(h * cols + w) * C + k] for the G channels k of a
// channels_last sample from its channel c0 on (src points there). Whole blocks of eight channels
// go through transpose8 eight pixels at a time (float and bfloat16); the rest of the channels and
// of the pixels one value at a time.
template <typename A, typename T>
void gather_channels(const T* __restrict src, int64_t C, int64_t rows, int64_t cols, int G, A* const* dst,
                     int64_t dst_stride) {
  const int G8 = kHasVec<T, A> ? G / 8 * 8 : 0;
  for (int64_t h = 0; h < rows; ++h) {
    int64_t w = 0;
    if constexpr (kHasVec<T, A>) {
      for (; G8 > 0 && w + 8 <= cols; w += 8) {
        const T* __restrict s = src + (h * cols + w) * C;
        for (int j = 0; j < 8; ++j) __builtin_prefetch(s + (kPrefetchPixels + j) * C);
        for (int kb = 0; kb < G8; kb += 8) {
          vf8 r[8];
          for (int j = 0; j < 8; ++j) r[j] = load8(s + j * C + kb);
          transpose8(r);
          for (int i = 0; i < 8; ++i) store8(dst[kb + i] + h * dst_stride + w, r[i]);
        }
        for (int j = 0; j < 8; ++j) {
          for (int k = G8; k < G; ++k) dst[k][h * dst_stride + w + j] = static_cast<A>(s[j * C + k]);
        }
      }
    }
    for (; w < cols; ++w) {
      const T* __restrict s = src + (h * cols + w) * C;
      __builtin_prefetch(s + kPrefetchPixels * C);
      for (int k = 0; k < G; ++k) dst[k][h * dst_stride + w] = static_cast<A>(s[k]);
    }
  }
}

// The inverse for len values per plane; rounds as the NCHW path's stores do (simd.h: store8).
template <typename T, typename A>
void scatter_channels(const A* const* src, int64_t len, int G, T* __restrict dst, int64_t C) {
  const int G8 = kHasVec<T, A> ? G / 8 * 8 : 0;
  int64_t i = 0;
  if constexpr (kHasVec<T, A>) {
    for (; G8 > 0 && i + 8 <= len; i += 8) {
      T* __restrict d = dst + i * C;
      for (int j = 0; j < 8; ++j) __builtin_prefetch(d + (kPrefetchPixels + j) * C, 1);
      for (int kb = 0; kb < G8; kb += 8) {
        vf8 r[8];
        for (int k = 0; k < 8; ++k) r[k] = load8(src[kb + k] + i);
        transpose8(r);
        for (int j = 0; j < 8; ++j) store8(d + j * C + kb, r[j]);
      }
      for (int j = 0; j < 8; ++j) {
        for (int k = G8; k < G; ++k) d[j * C + k] = static_cast<T>(src[k][i + j]);
      }
    }
  }
  for (; i < len; ++i) {
    T* __restrict d = dst + i * C;
    __builtin_prefetch(d + kPrefetchPixels * C, 1);
    for (int k = 0; k < G; ++k) d[k] = static_cast<T>(src[k][i]);
  }
}

// G buffers of len values each, and their pointers (for gather_channels / scatter_channels).
template <typename A>
struct PlaneBufs {
  std::vector<A> data;
  std::vector<A*> ptr;
  PlaneBufs(int G, int64_t len) : data(G * len), ptr(G) {
    for (int k = 0; k < G; ++k) ptr[k] = data.data() + k * len;
  }
  A* operator[](int k) { return ptr[k]; }
};

// A plane converted to the accumulation type inside a zero frame: P zero rows and columns before
// it, zeros after it out to where the taps of a last (partial) strip of eight outputs reach. With
// it every output, borders included, is an interior one: the padding taps add exact zeros, so the
// conv and weight-gradient loops need no scalar border path (that path cost more than the vector
// loops). The frame is zeroed once per thread; later planes of the same shape overwrite only the
// inside.
template <typename A>
struct PaddedPlane {
  int64_t H, W, P, stride;
  std::vector<A> buf;
  // For a plane [H, W] read by a conv with K, S, P and output width Wo.
  PaddedPlane(int64_t H_, int64_t W_, int K, int S, int P_, int64_t Wo)
      : H(H_), W(W_), P(P_), stride(std::max<int64_t>(W_ + 2 * P_, S * ceil_div(Wo, kVecWidth) * kVecWidth + K)),
        buf((H_ + 2 * P_) * stride, A(0)) {}
  template <typename T>
  const A* fill(const T* __restrict x) {
    A* __restrict b = buf.data();
    for (int64_t h = 0; h < H; ++h) {
      const T* __restrict src = x + h * W;
      A* __restrict dst = b + (h + P) * stride + P;
      for (int64_t i = 0; i < W; ++i) dst[i] = static_cast<A>(src[i]);
    }
    return b;
  }
  // Where value (0, 0) goes, for filling row by row (rows `stride` apart) from elsewhere.
  A* interior() { return buf.data() + P * stride + P; }
};

// The conv at R rows of one output (V = A) or of eight consecutive ones (V = vf8) from a padded
// plane; p = tap (0, 0) of the first row. Every output sums its K*K taps in one fixed order, kh
// then kw, in a single chain from zero, whichever path computes it. Blocking R rows lets each
// loaded input row serve every output row that reads it, and gives R independent chains.
template <int K, int S, int R, typename V, typename A>
EFFGAN_INLINE void conv_rows(const A* p, int64_t stride, const A* __restrict w, V (&acc)[R]) {
  for (int r = 0; r < R; ++r) acc[r] = splat<V>(0.0f);
  for (int i = 0; i < (R - 1) * S + K; ++i) {
    V xv[K];
    row_taps<K, S>(p + i * stride, xv);
    for (int r = 0; r < R; ++r) {
      const int kh = i - r * S;
      if (kh < 0 || kh >= K) continue;
      for (int kw = 0; kw < K; ++kw) acc[r] = fmadd(xv[kw], w[kh * K + kw], acc[r]);
    }
  }
}

// z[Ho, Wo] = depthwise conv of a padded plane with the K*K weights w, register-blocked: each block
// of kRows rows by 8 outputs keeps its sums in registers over all K*K taps and is stored once.
// A last strip that would run past the row is moved back to end at its edge (overlapping the
// previous one: the outputs it recomputes get the same values); rows narrower than a strip are
// computed whole and stored in part. VEC: O has vf8 stores (float, bfloat16) and A is float.
template <int K, int S, int R, bool VEC, typename A, typename O>
EFFGAN_INLINE void conv_block(const A* __restrict xp, int64_t stride, const A* __restrict w, O* __restrict z,
                              int64_t ho, int64_t Wo) {
  const A* xr = xp + ho * S * stride;
  O* __restrict zr = z + ho * Wo;
  if constexpr (VEC) {
    auto strip = [&](int64_t wo) __attribute__((always_inline)) {
      vf8 acc[R];
      conv_rows<K, S, R>(xr + wo * S, stride, w, acc);
      for (int r = 0; r < R; ++r) store(zr + r * Wo + wo, acc[r]);
    };
    if (Wo >= kVecWidth) {
      int64_t wo = 0;
      for (; wo + kVecWidth <= Wo; wo += kVecWidth) strip(wo);
      if (wo < Wo) strip(Wo - kVecWidth);
    } else {
      vf8 acc[R];
      conv_rows<K, S, R>(xr, stride, w, acc);
      for (int r = 0; r < R; ++r) {
        float part[kVecWidth];
        store8(part, acc[r]);
        for (int64_t i = 0; i < Wo; ++i) zr[r * Wo + i] = static_cast<O>(part[i]);
      }
    }
  } else {
    for (int64_t wo = 0; wo < Wo; ++wo) {
      A acc[R];
      conv_rows<K, S, R>(xr + wo * S, stride, w, acc);
      for (int r = 0; r < R; ++r) zr[r * Wo + wo] = static_cast<O>(acc[r]);
    }
  }
}

constexpr int kRows = 4;

template <int K, int S, bool VEC, typename A, typename O>
void conv_plane_k(const A* __restrict xp, int64_t stride, const A* __restrict w, O* __restrict z, int64_t Ho,
                  int64_t Wo) {
  int64_t ho = 0;
  for (; ho + kRows <= Ho; ho += kRows) conv_block<K, S, kRows, VEC>(xp, stride, w, z, ho, Wo);
  for (; ho < Ho; ++ho) conv_block<K, S, 1, VEC>(xp, stride, w, z, ho, Wo);
}

template <int S, typename A, typename O>
void conv_plane(const A* xp, int64_t stride, const A* w, O* z, int K, int64_t Ho, int64_t Wo) {
  constexpr bool VEC = kHasVec<A, A> && kHasVec<O, A>;
  if (K == 3) {
    conv_plane_k<3, S, VEC>(xp, stride, w, z, Ho, Wo);
  } else {
    conv_plane_k<5, S, VEC>(xp, stride, w, z, Ho, Wo);
  }
}

// dx[H, W] = transposed depthwise conv of dz[Ho, Wo] for stride 2 (stride 1 is a plain conv with
// the flipped kernel, see backward_planes). Output (ho, wo) sends tap (kh, kw) to input column
// wo * 2 - P + kw: taps of one parity of kw - P reach every other column of one row. The sums are
// kept deinterleaved in buf (each row's even columns, then its odd ones), where the taps of one
// parity are shifted copies of the dz row: a vector of eight targets is loaded once, takes its
// (up to three) taps, and is stored once. The dz row is read through a zero-framed copy, so the
// columns a tap does not reach add exact zeros. Each dx value takes its terms in the order of
// (ho, kh, kw), whatever the layout; one pass at the end interleaves buf into dx.
template <typename A>
struct TransposeRows {
  static constexpr int kFrame = 4;  // zeros either side of the dz row: taps shift by at most 2
  std::vector<A> buf, row;
  TransposeRows(const Geometry& g)
      : buf(g.HW()), row(kFrame + std::max(g.Wo, (g.W + 1) / 2) + kFrame + kVecWidth, A(0)) {}
};

template <typename A, typename T>
void conv_transpose_plane_s2(const A* __restrict dz, const A* __restrict w, TransposeRows<A>& tr, T* __restrict dx,
                             const Geometry& g) {
  constexpr bool VEC = kHasVec<A, A>;
  const int64_t W_of[2] = {(g.W + 1) / 2, g.W / 2};  // even, odd columns per row
  A* __restrict buf = tr.buf.data();
  A* const cols[2] = {buf, buf + g.H * W_of[0]};
  std::fill(buf, buf + g.HW(), A(0));
  // The taps of each parity of kw - P, and where they read the dz row: column j of a parity's row
  // takes dz column j - off.
  int n_taps[2] = {0, 0}, tap_kw[2][3];
  int64_t tap_off[2][3];
  for (int kw = 0; kw < g.K; ++kw) {
    const int d = kw - g.P, q = d & 1;
    tap_kw[q][n_taps[q]] = kw;
    tap_off[q][n_taps[q]++] = (d - q) / 2;
  }
  A* const zr = tr.row.data() + TransposeRows<A>::kFrame;
  for (int64_t ho = 0; ho < g.Ho; ++ho) {
    std::copy(dz + ho * g.Wo, dz + (ho + 1) * g.Wo, zr);
    for (int kh = 0; kh < g.K; ++kh) {
      const int64_t hi = ho * 2 - g.P + kh;
      if (hi < 0 || hi >= g.H) continue;
      for (int q = 0; q < 2; ++q) {
        A* __restrict out = cols[q] + hi * W_of[q];
        const int n = n_taps[q];
        A wt[3];
        const A* src[3];
        for (int t = 0; t < n; ++t) {
          wt[t] = w[kh * g.K + tap_kw[q][t]];
          src[t] = zr - tap_off[q][t];
        }
        for_each_lanes<A, A, VEC>(W_of[q], [&](auto v, int64_t j) {
          using V = decltype(v);
          V acc = load<V>(out + j);
          for (int t = 0; t < n; ++t) acc = fmadd(load<V>(src[t] + j), wt[t], acc);
          store(out + j, acc);
        });
      }
    }
  }
  for (int64_t h = 0; h < g.H; ++h) {
    const A* __restrict e = cols[0] + h * W_of[0];
    const A* __restrict o = cols[1] + h * W_of[1];
    T* __restrict out = dx + h * g.W;
    for (int64_t j = 0; j < W_of[1]; ++j) {
      out[2 * j] = static_cast<T>(e[j]);
      out[2 * j + 1] = static_cast<T>(o[j]);
    }
    if (W_of[0] > W_of[1]) out[g.W - 1] = static_cast<T>(e[W_of[0] - 1]);
  }
}

// The eight lanes of v summed pairwise in a fixed order, in double.
EFFGAN_INLINE double lanes_total(vf8 v) {
  float l[kVecWidth];
  store8(l, v);
  return ((static_cast<double>(l[0]) + l[4]) + (static_cast<double>(l[2]) + l[6])) +
         ((static_cast<double>(l[1]) + l[5]) + (static_cast<double>(l[3]) + l[7]));
}

// Per-tap sums of dz * x[tap-shifted] for one plane (x padded), in double. One kernel row at a
// time: for each output row, dz is loaded once per strip and multiplied into the K taps' vector
// accumulators (two vf8 per tap for sixteen columns: 2 K independent FMA chains); a row's last
// partial strip reads dz through a zero-filled copy, so its extra lanes add zeros. The partials go
// to double every kBlock outputs and at the end of the plane, in a fixed order: the result depends
// only on the shape.
template <int K, int S, bool VEC, typename A>
void weight_grad_plane_k(const A* __restrict xp, int64_t stride, const A* __restrict dz, double* __restrict taps,
                         int64_t Ho, int64_t Wo) {
  for (int kh = 0; kh < K; ++kh) {
    double tot[K] = {};
    vf8 lo[K] = {}, hi[K] = {};
    A sc[K] = {};
    auto flush = [&] {
      for (int kw = 0; kw < K; ++kw) {
        if constexpr (VEC) tot[kw] += lanes_total(lo[kw] + hi[kw]);
        tot[kw] += static_cast<double>(sc[kw]);
        lo[kw] = hi[kw] = splat<vf8>(0.0f);
        sc[kw] = 0;
      }
    };
    int64_t pending = 0;
    for (int64_t ho = 0; ho < Ho; ++ho) {
      const A* __restrict dr = dz + ho * Wo;
      const A* xr = xp + (ho * S + kh) * stride;
      int64_t wo = 0;
      if constexpr (VEC) {
        for (; wo + 2 * kVecWidth <= Wo; wo += 2 * kVecWidth) {
          const vf8 d0 = load8(dr + wo), d1 = load8(dr + wo + kVecWidth);
          vf8 x0[K], x1[K];
          row_taps<K, S>(xr + wo * S, x0);
          row_taps<K, S>(xr + (wo + kVecWidth) * S, x1);
          for (int kw = 0; kw < K; ++kw) {
            lo[kw] = fmadd(d0, x0[kw], lo[kw]);
            hi[kw] = fmadd(d1, x1[kw], hi[kw]);
          }
        }
        for (; wo < Wo; wo += kVecWidth) {
          vf8 d0;
          if (wo + kVecWidth <= Wo) {
            d0 = load8(dr + wo);
          } else {
            float part[kVecWidth] = {};
            for (int64_t i = wo; i < Wo; ++i) part[i - wo] = dr[i];
            d0 = load8(part);
          }
          vf8 x0[K];
          row_taps<K, S>(xr + wo * S, x0);
          for (int kw = 0; kw < K; ++kw) lo[kw] = fmadd(d0, x0[kw], lo[kw]);
        }
      } else {
        for (; wo < Wo; ++wo) {
          A xv[K];
          row_taps<K, S>(xr + wo * S, xv);
          for (int kw = 0; kw < K; ++kw) sc[kw] = fmadd(dr[wo], xv[kw], sc[kw]);
        }
      }
      pending += Wo;
      if (pending >= kBlock) {
        flush();
        pending = 0;
      }
    }
    flush();
    for (int kw = 0; kw < K; ++kw) taps[kh * K + kw] = tot[kw];
  }
}

template <int S, typename A>
void weight_grad_plane(const A* xp, int64_t stride, const A* dz, double* taps, int K, int64_t Ho, int64_t Wo) {
  constexpr bool VEC = kHasVec<A, A>;
  if (K == 3) {
    weight_grad_plane_k<3, S, VEC>(xp, stride, dz, taps, Ho, Wo);
  } else {
    weight_grad_plane_k<5, S, VEC>(xp, stride, dz, taps, Ho, Wo);
  }
}
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
          if constexpr (ACT != kIdentity) g *= act_grad<ACT>(zhat * w + b, slope);
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
