// Depthwise conv of one (n, c) plane on the CPU: the shape of a conv (Geometry), the zero-framed
// input plane (PaddedPlane), the forward conv, the stride-2 transposed conv and the per-tap weight
// gradient. dwconv_norm_act.cpp runs them plane by plane.
//
// The conv loops are register-blocked over simd.h's vf8 (float; bfloat16 and Half inputs are
// converted into a float copy of the plane, double runs the same code on scalars): a strip of
// output columns keeps its sums in registers over all K*K taps, so each output is stored once
// instead of updated once per tap. The copy carries a zero frame for the padding, so border outputs
// take the same vector path as the rest (see PaddedPlane).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "params.h"

namespace effgan::depthwise {

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

}  // namespace effgan::depthwise
