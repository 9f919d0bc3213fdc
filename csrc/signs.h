// Two-bit signs of a difference d = x - y, kept by a forward for its backward (the L1 gradient is
// sign(d) times a scale, so the backward needs these bits, not the tensors).
//
// Layout, shared with the Triton kernels (kernels/cyclegan_loss.py): values in storage order, in
// groups of 8; group g owns bytes 2g and 2g + 1; bit l of byte 2g is set where d > 0 for value
// 8g + l, bit l of byte 2g + 1 where d < 0. Neither is set for d = 0 (or NaN): gradient 0.
#pragma once

#include <cstdint>

#include "simd.h"

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace effgan {

constexpr int64_t kSignGroup = 8;

inline int64_t sign_bytes(int64_t numel) { return 2 * ((numel + kSignGroup - 1) / kSignGroup); }

// Bit l set where lane l of the comparison mask m (all ones or zero per lane) is set.
EFFGAN_INLINE uint8_t lane_bits(vi8 m) {
#if defined(__AVX__)
  return static_cast<uint8_t>(_mm256_movemask_ps(reinterpret_cast<__m256>(m)));
#else
  unsigned bits = 0;
  for (int l = 0; l < kVecWidth; ++l) bits |= static_cast<unsigned>(m[l] & 1) << l;
  return static_cast<uint8_t>(bits);
#endif
}

// Record the signs of d for value i on (8 values when V is vf8, then i is a multiple of 8; one
// value otherwise). Single values must come in increasing order within a group: the first clears it.
template <typename V>
EFFGAN_INLINE void put_signs(uint8_t* signs, int64_t i, V d) {
  uint8_t* g = signs + 2 * (i / kSignGroup);
  if constexpr (kIsVec<V>) {
    g[0] = lane_bits(d > splat<V>(0));
    g[1] = lane_bits(d < splat<V>(0));
  } else {
    const int l = static_cast<int>(i % kSignGroup);
    if (l == 0) g[0] = g[1] = 0;
    g[0] |= static_cast<uint8_t>((d > V(0)) << l);
    g[1] |= static_cast<uint8_t>((d < V(0)) << l);
  }
}

// sign(d) * scale for value i on (8 values when V is vf8, i a multiple of 8).
template <typename V>
EFFGAN_INLINE V signed_scale(const uint8_t* signs, int64_t i, V scale) {
  const uint8_t* g = signs + 2 * (i / kSignGroup);
  if constexpr (kIsVec<V>) {
    const vi8 bit = {1, 2, 4, 8, 16, 32, 64, 128};
    const vi8 pos = (splat<vi8>(g[0]) & bit) != 0;
    const vi8 neg = (splat<vi8>(g[1]) & bit) != 0;
    return pos ? scale : (neg ? -scale : splat<V>(0));
  } else {
    const int l = static_cast<int>(i % kSignGroup);
    return ((g[0] >> l) & 1) ? scale : (((g[1] >> l) & 1) ? -scale : V(0));
  }
}

}  // namespace effgan
