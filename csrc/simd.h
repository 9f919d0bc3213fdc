// Fixed-width float vectors for the kernels' hot loops (GCC/clang vector extensions).
//
// vf8 is eight floats whatever the target ISA: one 256-bit register with -mavx2 (see
// effgan/_cpp_build.py), two 128-bit ones at the SSE2 baseline. Two vf8 accumulators hold the 16
// lanes of a reduction (params.h: lane_sums), the order the scalar lane arrays had. GCC's
// auto-vectoriser handles those 16-lane arrays badly at AVX2 (it shuffles between lanes and ends up
// slower than SSE2); written with these types the loops compile to straight vector code at every
// ISA.
//
// The build turns the compiler's FMA contraction off (effgan/_cpp_build.py): it would fuse a * b + c
// where it happens to see both, differently in a loop's vector body and its scalar tail. Fused
// multiply-adds are written out instead (fmadd below), with one rounding in every lane type where
// the ISA has FMA and two everywhere else, so a value is the same whichever path computes it.
//
// Code written over a lane type V (float, double, or vf8) serves both a vector loop and its scalar
// tail: splat, load and store below are overloaded on V, and the arithmetic operators and ?: act
// elementwise on vectors (a vector comparison yields a lane mask that ?: selects with).
#pragma once

#include <c10/util/BFloat16.h>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <cmath>
#include <cstdint>
#include <type_traits>

#define EFFGAN_INLINE inline __attribute__((always_inline))

// Without -mavx2 GCC notes that passing vf8 by value has a different ABI than with AVX. vf8 never
// crosses the extension's boundary and every source is built with the same flags, so the note is
// moot (it stays off for the rest of each source that includes this header).
#pragma GCC diagnostic ignored "-Wpsabi"

namespace effgan {

typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));
typedef uint32_t vu8 __attribute__((vector_size(32)));
typedef uint16_t vh8 __attribute__((vector_size(16)));
constexpr int kVecWidth = 8;

// Loops over values of T accumulating in A run on vf8 lanes for float and bfloat16 values with
// float arithmetic; others (Half, double) use scalar loops.
template <typename T, typename A>
constexpr bool kHasVec =
    (std::is_same_v<T, float> || std::is_same_v<T, c10::BFloat16>) && std::is_same_v<A, float>;

// Whether V is one of the 8-lane vector types above (else a scalar).
template <typename V>
constexpr bool kIsVec = !std::is_arithmetic_v<V>;

template <typename V, typename S>
EFFGAN_INLINE V splat(S s) {
  if constexpr (kIsVec<V>) {
    const auto e = static_cast<std::remove_cv_t<std::remove_reference_t<decltype(V{}[0])>>>(s);
    return V{e, e, e, e, e, e, e, e};
  } else {
    return static_cast<V>(s);
  }
}

// bfloat16 is the high half of a float: widening is a 16-bit shift of the bits.
EFFGAN_INLINE vf8 load8(const c10::BFloat16* p) {
  vh8 h;
  __builtin_memcpy(&h, p, sizeof(h));
  return reinterpret_cast<vf8>(__builtin_convertvector(h, vu8) << 16);
}

EFFGAN_INLINE vf8 load8(const float* p) {
  vf8 v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}

// Round to nearest even, NaN -> 0x7FC0: exactly c10::BFloat16(float) (round_to_nearest_even).
EFFGAN_INLINE vh8 bfloat16_bits(vf8 v) {
  const vu8 u = reinterpret_cast<vu8>(v);
  const vu8 rounded = (u + (((u >> 16) & 1u) + 0x7FFFu)) >> 16;
  const vu8 bits = v != v ? splat<vu8>(0x7FC0u) : rounded;
  return __builtin_convertvector(bits, vh8);
}

EFFGAN_INLINE void store8(c10::BFloat16* p, vf8 v) {
  const vh8 h = bfloat16_bits(v);
  __builtin_memcpy(p, &h, sizeof(h));
}

EFFGAN_INLINE void store8(float* p, vf8 v) { __builtin_memcpy(p, &v, sizeof(v)); }

// load<V>(p): one value converted to V, or eight values from p on.
template <typename V, typename T>
EFFGAN_INLINE V load(const T* p) {
  if constexpr (kIsVec<V>) {
    return load8(p);
  } else {
    return static_cast<V>(*p);
  }
}

template <typename T, typename V>
EFFGAN_INLINE void store(T* p, V v) {
  if constexpr (kIsVec<V>) {
    store8(p, v);
  } else {
    *p = static_cast<T>(v);
  }
}

// Non-temporal ("streaming") stores send whole cache lines to memory without reading them first. A
// plain store to a line that is not cached fetches the line before overwriting it, so for an output
// that does not stay in cache every byte written costs a byte read as well (2 cores here: a copy
// runs at ~17 GiB/s with plain stores, ~25 GiB/s with streaming ones). Only aligned vectors stream
// (32 bytes of float, 16 of bfloat16); others, and builds without AVX, take a plain store.
EFFGAN_INLINE void stream8(float* p, vf8 v) {
#if defined(__AVX__)
  if ((reinterpret_cast<uintptr_t>(p) & 31) == 0) {
    _mm256_stream_ps(p, reinterpret_cast<__m256>(v));
    return;
  }
#endif
  store8(p, v);
}

EFFGAN_INLINE void stream8(c10::BFloat16* p, vf8 v) {
#if defined(__AVX__)
  if ((reinterpret_cast<uintptr_t>(p) & 15) == 0) {
    _mm_stream_si128(reinterpret_cast<__m128i*>(p), reinterpret_cast<__m128i>(bfloat16_bits(v)));
    return;
  }
#endif
  store8(p, v);
}

// store(p, v), non-temporal where stream is set (and p aligned).
template <typename T, typename V>
EFFGAN_INLINE void store_out(T* p, V v, bool stream) {
  if constexpr (kIsVec<V>) {
    if (stream) {
      stream8(p, v);
      return;
    }
  }
  store(p, v);
}

// Orders this thread's streaming stores before whatever follows (they are weakly ordered).
EFFGAN_INLINE void stream_fence() {
#if defined(__AVX__)
  _mm_sfence();
#endif
}

// a * b + c: one rounding (FMA instructions) where the build targets FMA, else two, for vectors
// and scalars alike.
EFFGAN_INLINE vf8 fmadd(vf8 a, vf8 b, vf8 c) {
#if defined(__FMA__) && defined(__AVX__)
  return reinterpret_cast<vf8>(_mm256_fmadd_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b),
                                               reinterpret_cast<__m256>(c)));
#else
  return a * b + c;
#endif
}

template <typename S, typename = std::enable_if_t<std::is_floating_point_v<S>>>
EFFGAN_INLINE S fmadd(S a, S b, S c) {
#if defined(__FMA__)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// fmadd with a scalar b and/or c applied to every lane of a.
template <typename V, typename B, typename C>
EFFGAN_INLINE V fmadd(V a, B b, C c) {
  auto lanes = [](auto s) {
    if constexpr (std::is_same_v<decltype(s), V>) {
      return s;
    } else {
      return splat<V>(s);
    }
  };
  return fmadd(a, lanes(b), lanes(c));
}

// v limited to [lo, hi] lane by lane; NaN stays NaN. AVX's max/min return their second operand
// when either is NaN, so v goes second (one instruction each where the ternaries would be a compare
// and a blend).
template <typename V>
EFFGAN_INLINE V clamp_lanes(V v, float lo, float hi) {
#if defined(__AVX__)
  if constexpr (kIsVec<V>) {
    const __m256 m = _mm256_max_ps(reinterpret_cast<__m256>(splat<V>(lo)), reinterpret_cast<__m256>(v));
    return reinterpret_cast<V>(_mm256_min_ps(reinterpret_cast<__m256>(splat<V>(hi)), m));
  }
#endif
  v = v < splat<V>(lo) ? splat<V>(lo) : v;
  return v > splat<V>(hi) ? splat<V>(hi) : v;
}

// max(v, lo) lane by lane; NaN stays NaN (v goes second, as in clamp_lanes).
template <typename V>
EFFGAN_INLINE V floor_lanes(V v, float lo) {
#if defined(__AVX__)
  if constexpr (kIsVec<V>) {
    return reinterpret_cast<V>(_mm256_max_ps(reinterpret_cast<__m256>(splat<V>(lo)), reinterpret_cast<__m256>(v)));
  }
#endif
  return v < splat<V>(lo) ? splat<V>(lo) : v;
}

// |v| as std::abs: the sign bit cleared (also of -0 and NaN).
template <typename V>
EFFGAN_INLINE V abs_lanes(V v) {
  if constexpr (kIsVec<V>) {
    return reinterpret_cast<V>(reinterpret_cast<vu8>(v) & 0x7FFFFFFFu);
  } else {
    return std::abs(v);
  }
}

// 2^n for n holding an integer value in [-126, 127], built from the exponent bits.
EFFGAN_INLINE float exp2_int(float n) { return __builtin_bit_cast(float, (static_cast<int32_t>(n) + 127) << 23); }

EFFGAN_INLINE vf8 exp2_int(vf8 n) { return reinterpret_cast<vf8>((__builtin_convertvector(n, vi8) + 127) << 23); }

// Calls f(V{}, i) for i in [0, len): V = vf8 at every 8th i while 8 values remain (with VEC,
// default: kHasVec), else V = A for one value. f reads the lane type from its first argument.
template <typename T, typename A, bool VEC = kHasVec<T, A>, typename F>
EFFGAN_INLINE void for_each_lanes(int64_t len, const F& f) {
  int64_t i = 0;
  if constexpr (VEC) {
    for (; i + kVecWidth <= len; i += kVecWidth) f(vf8{}, i);
  }
  for (; i < len; ++i) f(A{}, i);
}

}  // namespace effgan
