// Entry points of instance_norm_act.cpp (outputs allocated by the Python launcher, see effgan/ops/_cpp_kernels.py).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace effgan {

// y = act(instance_norm(x) * weight + bias) + residual; mean/rstd: (N, C) saved statistics
// (mean relative to the mean of each plane's first values, 1/std), float32 (float64 for float64 x).
void instance_norm_act_fwd(const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const std::optional<at::Tensor>& residual,
                           const at::Tensor& y, const at::Tensor& mean, const at::Tensor& rstd, double eps,
                           int64_t act, double slope);

// dx and the per-plane sums of dz and dz * xhat, (N, C), for the parameter gradients.
void instance_norm_act_bwd(const at::Tensor& dy, const at::Tensor& x, const std::optional<at::Tensor>& weight,
                           const std::optional<at::Tensor>& bias, const at::Tensor& mean, const at::Tensor& rstd,
                           const at::Tensor& dx, const at::Tensor& sum_dz, const at::Tensor& sum_dzx, int64_t act,
                           double slope);

}  // namespace effgan
