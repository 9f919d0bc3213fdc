// Entry points of se_scale.cpp (outputs allocated by the Python launcher, see effgan/ops/_cpp_kernels.py).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace effgan {

// The forward streams its output (params.h: kStreamMinBytes) only from 8 MiB. It reads x once, and
// below that x, y and the next layer's reads fit in the cache together: plain stores there took
// 0.60-0.75x the time of streaming ones at 4 MiB (the output in cache, as the next layer wants it),
// with forward+backward unchanged. From 8 MiB streaming wins forward+backward: plain forward
// stores evict the x the backward reads (1.05-1.19x the time). benchmarks/NOTES.md has the runs.
constexpr int64_t kSeScaleForwardStreamMinBytes = int64_t(8) << 20;

// Squeeze-excite scaling: y = x * sigmoid(gate)[n, c]; backward: dx = dy * sigmoid(gate) and the
// per-plane sums of dy * x, (N, C) (the gate gradient before the sigmoid's derivative).
void se_scale_fwd(const at::Tensor& x, const at::Tensor& gate, const at::Tensor& y);
void se_scale_bwd(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& gate, const at::Tensor& dx,
                  const at::Tensor& sum_dyx);

}  // namespace effgan
