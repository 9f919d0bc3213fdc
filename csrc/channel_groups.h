// channels_last planes for the depthwise kernel: groups of consecutive channels gathered into
// contiguous plane buffers and scattered back (see Units).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "params.h"

namespace effgan::depthwise {

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

}  // namespace effgan::depthwise
