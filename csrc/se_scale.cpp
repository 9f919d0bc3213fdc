// Squeeze-excite scaling on the CPU: y = x * sigmoid(gate)[n, c], and its backward
// (dx = dy * sigmoid(gate), and the per-plane sums of dy * x for the gate gradient).
//
// NCHW: whole planes per thread (blocked sums, combined in block order); channels_last: pixel
// chunks with per-channel partial sums combined in chunk order. Deterministic for any threading.
#include <ATen/Dispatch.h>

#include <cmath>

#include "se_scale.h"
#include "params.h"

namespace effgan {
namespace {

template <typename A>
std::vector<A> sigmoids(const at::Tensor& gate) {
  const at::Tensor g = gate.to(at::kDouble).contiguous();
  const double* gp = g.const_data_ptr<double>();
  std::vector<A> s(g.numel());
  for (int64_t i = 0; i < g.numel(); ++i) s[i] = static_cast<A>(1.0 / (1.0 + std::exp(-gp[i])));
  return s;
}

template <typename T, typename A>
void forward_impl(const T* x, T* y, const A* sig, int64_t N, int64_t C, int64_t HW, Layout layout) {
  const bool stream = stream_outputs<T>(N * C * HW, kSeScaleForwardStreamMinBytes);
  if (layout == Layout::kNCHW) {
    parallel_for(0, N * C * ceil_div(HW, kBlock), 1, [&](int64_t t0, int64_t t1) {
      const int64_t nblk = ceil_div(HW, kBlock);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t p = t / nblk, lo = (t % nblk) * kBlock, len = std::min(kBlock, HW - lo);
        const T* __restrict xp = x + p * HW + lo;
        T* __restrict yp = y + p * HW + lo;
        const A s = sig[p];
        for_each_lanes<T, A>(len, [&](auto v, int64_t i) {
          store_out(yp + i, load<decltype(v)>(xp + i) * s, stream);
        });
      }
    });
    return;
  }
  const PixelChunks ch(HW, C);
  parallel_for(0, N * ch.n, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / ch.n, k = t % ch.n;
      const A* __restrict s = sig + n * C;
      for (int64_t px = ch.begin(k); px < ch.end(k, HW); ++px) {
        const T* __restrict xp = x + (n * HW + px) * C;
        T* __restrict yp = y + (n * HW + px) * C;
        for_each_lanes<T, A>(C, [&](auto v, int64_t c) {
          using V = decltype(v);
          store_out(yp + c, load<V>(xp + c) * load<V>(s + c), stream);
        });
      }
    }
  });
}

template <typename T, typename A>
EFFGAN_INLINE double dot_block(const T* __restrict dy, const T* __restrict x, T* __restrict dx, int64_t len, A s,
                               bool stream) {
  double sum[1];
  lane_sums<1, T, A>(
      len,
      [&](auto v, int64_t i, auto* t) {
        using V = decltype(v);
        const V g = load<V>(dy + i);
        store_out(dx + i, g * s, stream);
        t[0] = g * load<V>(x + i);
      },
      sum);
  return sum[0];
}

template <typename T, typename A>
void backward_impl(const T* dy, const T* x, T* dx, const A* sig, A* sum_dyx, int64_t N, int64_t C, int64_t HW,
                   Layout layout) {
  if (layout == Layout::kNCHW) {
    const int64_t P = N * C, nblk = ceil_div(HW, kBlock);
    const bool stream = stream_outputs<T>(P * HW);
    std::vector<double> part(P * nblk);
    parallel_for(0, P * nblk, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t p = t / nblk, off = p * HW + (t % nblk) * kBlock;
        part[t] = dot_block(dy + off, x + off, dx + off, std::min(kBlock, HW - (t % nblk) * kBlock), sig[p],
                             stream);
      }
    });
    for (int64_t p = 0; p < P; ++p) {
      double s = 0;
      for (int64_t b = 0; b < nblk; ++b) s += part[p * nblk + b];
      sum_dyx[p] = static_cast<A>(s);
    }
    return;
  }
  const PixelChunks ch(HW, C);
  const bool stream = stream_outputs<T>(N * HW * C);
  std::vector<double> part(N * ch.n * C);
  parallel_for(0, N * ch.n, 1, [&](int64_t t0, int64_t t1) {
    std::vector<A> acc_buf(C);
    A* __restrict acc = acc_buf.data();
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / ch.n, k = t % ch.n;
      const A* __restrict s = sig + n * C;
      std::fill(acc, acc + C, A(0));
      for (int64_t px = ch.begin(k); px < ch.end(k, HW); ++px) {
        const int64_t o = (n * HW + px) * C;
        for_each_lanes<T, A>(C, [&](auto v, int64_t c) {
          using V = decltype(v);
          const V g = load<V>(dy + o + c);
          store_out(dx + o + c, g * load<V>(s + c), stream);
          store(acc + c, load<V>(acc + c) + g * load<V>(x + o + c));
        });
      }
      for (int64_t c = 0; c < C; ++c) part[t * C + c] = acc[c];
    }
  });
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      double s = 0;
      for (int64_t k = 0; k < ch.n; ++k) s += part[(n * ch.n + k) * C + c];
      sum_dyx[n * C + c] = static_cast<A>(s);
    }
  }
}

void check_gate(const at::Tensor& gate, int64_t N, int64_t C) {
  check_cpu_float(gate, "gate");
  TORCH_CHECK_VALUE(gate.dim() == 2 && gate.size(0) == N && gate.size(1) == C, "gate must have shape (", N, ", ",
                    C, "), got ", gate.sizes());
}

}  // namespace

void se_scale_fwd(const at::Tensor& x, const at::Tensor& gate, const at::Tensor& y) {
  const Layout layout = input_layout(x, "x");
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  check_gate(gate, N, C);
  check_like(y, x, "y");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "se_scale_fwd", [&] {
    using A = acc_t<scalar_t>;
    const std::vector<A> sig = sigmoids<A>(gate);
    forward_impl<scalar_t, A>(x.const_data_ptr<scalar_t>(), y.mutable_data_ptr<scalar_t>(), sig.data(), N, C, HW,
                              layout);
  });
}

void se_scale_bwd(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& gate, const at::Tensor& dx,
                  const at::Tensor& sum_dyx) {
  const Layout layout = input_layout(x, "x");
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  check_gate(gate, N, C);
  check_like(dy, x, "dy");
  check_like(dx, x, "dx");
  check_shape_dtype(sum_dyx, {N, C}, acc_dtype(x.scalar_type()), "sum_dyx");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "se_scale_bwd", [&] {
    using A = acc_t<scalar_t>;
    const std::vector<A> sig = sigmoids<A>(gate);
    backward_impl<scalar_t, A>(dy.const_data_ptr<scalar_t>(), x.const_data_ptr<scalar_t>(),
                               dx.mutable_data_ptr<scalar_t>(), sig.data(), sum_dyx.mutable_data_ptr<A>(), N, C, HW,
                               layout);
  });
}

}  // namespace effgan
