// Entry points of dwconv_norm_act.cpp (outputs allocated by the Python launcher, see effgan/ops/_cpp_kernels.py).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace effgan {

// Depthwise conv (weight (C, 1, k, k), k in {3, 5}, zero padding pad, stride 1 or 2) -> instance
// norm (+affine) -> act. y: (N, C, Ho, Wo) in x's layout; squeeze: y.mean((2, 3)), (N, C) in x's
// dtype; stats: (3, N, C) shift (the mean of z's first values), mean - shift, 1/std.
void dwconv_norm_act_fwd(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& norm_weight,
                         const std::optional<at::Tensor>& norm_bias, int64_t stride, int64_t pad, double eps,
                         int64_t act, double slope, const at::Tensor& y, const at::Tensor& squeeze,
                         const at::Tensor& stats);

// dx (x's layout), dweight (C, k*k) in the accumulation dtype, and the per-plane sums of
// g = (dy + dsqueeze / HWo) * act' and g * zhat, (N, C), for the norm's bias and weight gradients.
void dwconv_norm_act_bwd(const at::Tensor& dy, const at::Tensor& dsqueeze, const at::Tensor& x,
                         const at::Tensor& weight, const std::optional<at::Tensor>& norm_weight,
                         const std::optional<at::Tensor>& norm_bias, const at::Tensor& stats, int64_t stride,
                         int64_t pad, int64_t act, double slope, const at::Tensor& dx, const at::Tensor& dweight,
                         const at::Tensor& sum_g, const at::Tensor& sum_gz);

}  // namespace effgan
