// Entry points of se_scale.cpp (outputs allocated by the Python launcher, see effgan/ops/_cpp_kernels.py).
#pragma once

#include <ATen/core/Tensor.h>

namespace effgan {

// Squeeze-excite scaling: y = x * sigmoid(gate)[n, c]; backward: dx = dy * sigmoid(gate) and the
// per-plane sums of dy * x, (N, C) (the gate gradient before the sigmoid's derivative).
void se_scale_fwd(const at::Tensor& x, const at::Tensor& gate, const at::Tensor& y);
void se_scale_bwd(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& gate, const at::Tensor& dx,
                  const at::Tensor& sum_dyx);

}  // namespace effgan
