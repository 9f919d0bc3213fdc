// Shared pieces of the CPU kernels: accumulation types, argument checks, layouts, block sizes.
#pragma once

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "activation.h"

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

namespace effgan {

// Every reduced quantity accumulates in float (double for double inputs); the per-block partial
// sums are then combined in double, in block order.
template <typename T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};
template <typename T>
using acc_t = typename AccOf<T>::type;

inline at::ScalarType acc_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// Elements per reduction block. Reductions are split at fixed block boundaries whatever the
// thread count, and blocks are combined in order, so results do not depend on threading.
constexpr int64_t kBlock = 4096;
// Independent accumulators per block: enough for the compiler to keep a few vector registers busy,
// and a fixed summation order.
constexpr int kLanes = 16;

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <typename A>
EFFGAN_INLINE A lane_total(const A* lanes) {
  // Pairwise, in a fixed order.
  A t[kLanes / 2];
  for (int l = 0; l < kLanes / 2; ++l) t[l] = lanes[l] + lanes[l + kLanes / 2];
  for (int l = 0; l < kLanes / 4; ++l) t[l] = t[l] + t[l + kLanes / 4];
  for (int l = 0; l < kLanes / 8; ++l) t[l] = t[l] + t[l + kLanes / 8];
  return t[0] + t[1];
}

// K sums over [0, len) in the reductions' fixed order: value i goes to lane i % kLanes, and the
// lanes are added by lane_total. f(V{}, i, t) sets t[0..K) to the K terms of value i (V = A) or of
// the eight values from i on (V = vf8); with VEC (default: kHasVec) the kLanes lanes run as two vf8.
template <int K, typename T, typename A, bool VEC = kHasVec<T, A>, typename F>
EFFGAN_INLINE void lane_sums(int64_t len, const F& f, double (&sums)[K]) {
  static_assert(kLanes == 2 * kVecWidth);
  A lanes[K][kLanes] = {};
  int64_t i = 0;
  if constexpr (VEC) {
    vf8 lo[K] = {}, hi[K] = {};
    for (; i + kLanes <= len; i += kLanes) {
      vf8 t[K];
      f(vf8{}, i, t);
      for (int k = 0; k < K; ++k) lo[k] += t[k];
      f(vf8{}, i + kVecWidth, t);
      for (int k = 0; k < K; ++k) hi[k] += t[k];
    }
    for (int k = 0; k < K; ++k) {
      store8(lanes[k], lo[k]);
      store8(lanes[k] + kVecWidth, hi[k]);
    }
  } else {
    for (; i + kLanes <= len; i += kLanes) {
      for (int l = 0; l < kLanes; ++l) {
        A t[K];
        f(A{}, i + l, t);
        for (int k = 0; k < K; ++k) lanes[k][l] += t[k];
      }
    }
  }
  for (int l = 0; i + l < len; ++l) {
    A t[K];
    f(A{}, i + l, t);
    for (int k = 0; k < K; ++k) lanes[k][l] += t[k];
  }
  for (int k = 0; k < K; ++k) sums[k] = static_cast<double>(lane_total(lanes[k]));
}

// Outputs of at least this many bytes are written with streaming stores (simd.h: store_out) by
// instance_norm_act, adain and se_scale (its forward from more: se_scale.h), where the op benchmark
// measured them faster (forward + backward 2-23 % less time; the CycleGAN loss's gradients and
// dwconv_norm_act's outputs measured no gain and keep plain stores). A smaller output may still be
// in cache when the next layer reads it, and there a plain store wins: in a loop that keeps its
// inputs and a 4 MiB output cached, instance_norm_act's forward took 0.28 ms with plain stores and
// 0.43 ms streaming. benchmarks/NOTES.md has the figures.
constexpr int64_t kStreamMinBytes = int64_t(4) << 20;

// Whether a kernel writing `count` values of T in all streams them (min_bytes: a kernel's own
// threshold where it measured differently).
template <typename T>
inline bool stream_outputs(int64_t count, int64_t min_bytes = kStreamMinBytes) {
  return count * static_cast<int64_t>(sizeof(T)) >= min_bytes;
}

// Flush denormals to zero (FTZ + DAZ) while a kernel runs on this thread, restoring the caller's
// mode afterwards. Where the compiler turns the exp clamp into a blend it evaluates the clamped
// branch too (e.g. z * sigmoid(-87) in silu), and those products are denormal: without this, silu
// and tanh loops run several times slower. Only values below 1.2e-38 change (to zero).
class FlushDenormals {
 public:
  FlushDenormals() {
#if defined(__SSE__)
    saved_ = _mm_getcsr();
    _mm_setcsr(saved_ | 0x8040);
#endif
  }
  ~FlushDenormals() {
#if defined(__SSE__)
    _mm_setcsr(saved_);
#endif
  }
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  unsigned saved_ = 0;
};

// A parallel loop over at::get_num_threads() threads, with denormals flushed in every chunk (each
// thread has its own FP mode). f(b, e) is called on disjoint subranges covering [begin, end).
//
// The threads are torch's own OpenMP workers. Around effgan's kernels torch runs its own parallel
// regions (convolutions, copies), after which those workers spin for a while before they sleep; a
// separate pool's threads would have to wake up and then share the cores with the spinners.
// Measured in one interleaved benchmark run each way (2 cores, fwd+bwd against torch.compile):
// cyclegan_loss 0.60-1.02x with a sleeping-worker pool, 1.25-1.28x here; se_scale 0.77-0.87x vs
// 0.99-1.09x. The range is cut into a few chunks per thread that the threads claim from a shared
// counter, so a thread that starts late finds the others' share already done. Chunk boundaries
// depend only on the range, the grain and the thread count, and the reductions are cut at fixed
// blocks anyway: results do not depend on which thread runs which chunk.
template <typename F>
inline void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& f) {
  if (begin >= end) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t range = end - begin;
  const int64_t max_chunks = ceil_div(range, grain);
  const int threads = static_cast<int>(std::min<int64_t>(std::max(at::get_num_threads(), 1), max_chunks));
  if (threads <= 1 || at::in_parallel_region()) {
    FlushDenormals guard;
    f(begin, end);
    stream_fence();
    return;
  }
  const int64_t chunk = ceil_div(range, std::min<int64_t>(max_chunks, 4 * static_cast<int64_t>(threads)));
  const int64_t n = ceil_div(range, chunk);
  std::atomic<int64_t> next{0};
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    FlushDenormals guard;
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t b = begin + i * chunk;
      f(b, std::min(end, b + chunk));
    }
    stream_fence();  // this worker's streaming stores (simd.h) land before the caller reads the outputs
  });
}

enum class Layout { kNCHW, kChannelsLast };

// The shift of a plane's shifted sums (sum(v - shift), sum((v - shift)^2)): the mean of its first
// kShiftSample values. The variance is sumsq / n - mean^2 about the shift, which cancels when the
// shift lies far from the plane's mean compared with its spread: about log10((mean - shift)^2 / var)
// digits go. A plane's first value can be any number of standard deviations away (an outlier, or
// the corner of a zero-padded conv's output on a flat image: errors of 0.4 were seen); the mean of
// its first m values is at most sqrt(n / m) standard deviations away (m (mean_m - mean)^2 <= n var),
// so at most log10(n / m) digits go: 1.2 for a 64x64 plane, 2.4 for 256x256.
constexpr int64_t kShiftSample = 256;

// The mean of a plane's first min(HW, kShiftSample) values: value(V{}, i) gives the values from
// i on as lane_sums' f does (eight for V = vf8, one for V = A). Summed in lanes of A (the shift only
// has to lie near the mean, and the same code gives the same value in the forward and the
// backward): with the values in flight at once, a plane's first cache lines load in parallel (a
// chain of double adds kept a few in flight and cost adain's forward up to 1.5x at 64x64 planes).
template <typename T, typename A, typename F>
EFFGAN_INLINE A sample_mean(int64_t HW, const F& value) {
  const int64_t m = std::min(HW, kShiftSample);
  double sums[1];
  lane_sums<1, T, A>(
      m, [&](auto v, int64_t i, auto* t) { t[0] = value(v, i); }, sums);
  return static_cast<A>(sums[0] / static_cast<double>(m));
}

// sample_mean of the contiguous plane at xp.
template <typename T, typename A>
EFFGAN_INLINE A plane_shift(const T* xp, int64_t HW) {
  return sample_mean<T, A>(HW, [&](auto v, int64_t i) { return load<decltype(v)>(xp + i); });
}

// plane_shift of each of P contiguous planes of x.
template <typename T, typename A>
std::vector<A> plane_shifts(const T* x, int64_t P, int64_t HW) {
  std::vector<A> shift(P);
  parallel_for(0, P, 64, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) shift[p] = plane_shift<T, A>(x + p * HW, HW);
  });
  return shift;
}

// channels_last: the sample means of every (n, c), shift[n * C + c], of the first
// min(HW, kShiftSample) pixels, read pixel by pixel (contiguous channels) and summed in order in A.
// value(V{}, n, px, c) gives the values of channels c.. of pixel px (eight for V = vf8, one for A).
template <typename T, typename A, typename F>
std::vector<A> cl_sample_means(int64_t N, int64_t C, int64_t HW, const F& value) {
  const int64_t m = std::min(HW, kShiftSample);
  std::vector<A> shift(N * C);
  parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) {
    std::vector<A> s(C);
    for (int64_t n = n0; n < n1; ++n) {
      std::fill(s.begin(), s.end(), A(0));
      for (int64_t px = 0; px < m; ++px) {
        for_each_lanes<T, A>(C, [&](auto v, int64_t c) {
          using V = decltype(v);
          store(s.data() + c, load<V>(s.data() + c) + value(v, n, px, c));
        });
      }
      for (int64_t c = 0; c < C; ++c) shift[n * C + c] = s[c] / static_cast<A>(m);
    }
  });
  return shift;
}

// NCHW planes are split among threads (at block boundaries) only when there are too few planes
// to go round; otherwise a thread owns whole planes and rereads each from cache.
inline bool split_planes(int64_t planes, int64_t blocks_per_plane) {
  return blocks_per_plane > 1 && planes < 2 * static_cast<int64_t>(at::get_num_threads());
}

// channels_last: chunks of whole pixels of about kBlock values, the unit of work and of
// reduction order (per-channel partial sums per chunk, combined in chunk order). At least
// kChunkMinPixels pixels: each chunk also costs O(C) (its partial sums: zeroed, written out as
// doubles, added up on one thread), which at kBlock / C pixels a chunk would, for C of 512 and
// more, rival the chunk's own work and make the partials as large as the tensor.
constexpr int64_t kChunkMinPixels = 32;
struct PixelChunks {
  int64_t pix;  // pixels per chunk
  int64_t n;    // chunks per sample
  PixelChunks(int64_t HW, int64_t C) : pix(std::max<int64_t>(kChunkMinPixels, kBlock / C)), n(ceil_div(HW, pix)) {}
  int64_t begin(int64_t k) const { return k * pix; }
  int64_t end(int64_t k, int64_t HW) const { return std::min(HW, (k + 1) * pix); }
};

// Two per-channel sums over a channels_last (N, HW, C) tensor, per (n, c) in double. Every
// (sample, pixel chunk) sums into partials of its own, combined in chunk order afterwards, so the
// result does not depend on threading. pixel_terms(n, px, off) is called once per pixel (px of
// sample n, element offset off = (n HW + px) C) and returns f with f(V{}, c) = the two terms (lanes
// V: vf8 or A) of the channels from c on; what depends only on the pixel is computed once there.
template <typename T, typename A, typename F>
void cl_channel_sums(int64_t N, int64_t HW, int64_t C, const F& pixel_terms, std::vector<double>& tot0,
                     std::vector<double>& tot1) {
  const PixelChunks ch(HW, C);
  std::vector<double> part(2 * N * ch.n * C);
  parallel_for(0, N * ch.n, 1, [&](int64_t t0, int64_t t1) {
    std::vector<A> s_buf(C), q_buf(C);
    A* __restrict s = s_buf.data();
    A* __restrict q = q_buf.data();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / ch.n, k = t % ch.n;
      std::fill(s, s + C, A(0));
      std::fill(q, q + C, A(0));
      for (int64_t px = ch.begin(k); px < ch.end(k, HW); ++px) {
        const auto terms = pixel_terms(n, px, (n * HW + px) * C);
        for_each_lanes<T, A>(C, [&](auto v, int64_t c) {
          using V = decltype(v);
          const auto [a, b] = terms(v, c);
          store(s + c, load<V>(s + c) + a);
          store(q + c, load<V>(q + c) + b);
        });
      }
      double* out = part.data() + 2 * t * C;
      for (int64_t c = 0; c < C; ++c) {
        out[c] = s[c];
        out[C + c] = q[c];
      }
    }
  });
  tot0.assign(N * C, 0.0);
  tot1.assign(N * C, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < ch.n; ++k) {
      const double* src = part.data() + 2 * (n * ch.n + k) * C;
      for (int64_t c = 0; c < C; ++c) {
        tot0[n * C + c] += src[c];
        tot1[n * C + c] += src[C + c];
      }
    }
  }
}

// ---- argument checks: every violation raises a Python exception, nothing reaches a kernel ----

inline bool is_float_dtype(at::ScalarType t) {
  return t == at::kFloat || t == at::kDouble || t == at::kHalf || t == at::kBFloat16;
}

inline void check_cpu_float(const at::Tensor& t, const char* name) {
  TORCH_CHECK_VALUE(t.defined(), name, " is undefined");
  TORCH_CHECK_VALUE(t.device().is_cpu(), name, " must be a CPU tensor, got ", t.device());
  TORCH_CHECK_VALUE(t.layout() == at::kStrided, name, " must be a dense (strided) tensor");
  TORCH_CHECK_TYPE(is_float_dtype(t.scalar_type()), name,
                   " must be float16, bfloat16, float32 or float64, got ", t.scalar_type());
}

// A 4-D input the kernels can index: NCHW-contiguous or channels_last-contiguous.
inline Layout input_layout(const at::Tensor& x, const char* name) {
  check_cpu_float(x, name);
  TORCH_CHECK_VALUE(x.dim() == 4, name, " must be 4-D (N, C, H, W), got ", x.dim(), "-D");
  TORCH_CHECK_VALUE(x.numel() > 0, name, " must not be empty");
  if (x.is_contiguous()) return Layout::kNCHW;
  TORCH_CHECK_VALUE(x.is_contiguous(at::MemoryFormat::ChannelsLast), name,
                    " must be contiguous or channels_last contiguous");
  return Layout::kChannelsLast;
}

// Same shape, dtype and strides as `ref` (the kernels index both with one set of offsets).
inline void check_like(const at::Tensor& t, const at::Tensor& ref, const char* name) {
  check_cpu_float(t, name);
  TORCH_CHECK_VALUE(t.sizes() == ref.sizes(), name, " must have shape ", ref.sizes(), ", got ", t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), name, " must have dtype ", ref.scalar_type(),
                   ", got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.strides() == ref.strides(), name, " must have the strides of the input ", ref.strides(),
                    ", got ", t.strides());
}

inline void check_shape_dtype(const at::Tensor& t, at::IntArrayRef shape, at::ScalarType dtype, const char* name) {
  check_cpu_float(t, name);
  TORCH_CHECK_VALUE(t.sizes() == shape, name, " must have shape ", shape, ", got ", t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == dtype, name, " must have dtype ", dtype, ", got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.is_contiguous(), name, " must be contiguous");
}

// A per-channel (C,) parameter of any float dtype, as a contiguous accumulation-type copy
// (C values: negligible next to the planes).
inline std::optional<at::Tensor> per_channel(const std::optional<at::Tensor>& t, int64_t C, at::ScalarType acc,
                                             const char* name) {
  if (!t.has_value() || !t->defined()) return std::nullopt;
  check_cpu_float(*t, name);
  TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == C, name, " must have shape (", C, "), got ", t->sizes());
  return t->to(acc).contiguous();
}

template <typename T>
inline const T* opt_ptr(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->const_data_ptr<T>() : nullptr;
}

inline void check_act(int64_t act) {
  TORCH_CHECK_VALUE(act >= 0 && act < kNumActs, "act must be an activation code in [0, ", kNumActs, "), got ",
                    act);
}

}  // namespace effgan
