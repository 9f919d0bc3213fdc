// Entry points of adain.cpp (outputs allocated by the Python launcher, see effgan/ops/_cpp_kernels.py).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace effgan {

// AdaIN: y = instance_norm(act(x + noise * noise_weight + bias)) * style_scale + style_bias.
// noise is an (N, H*W) view with contiguous rows (or None); shift/mean/rstd: (N, C) statistics of
// h = act(u) (the mean of h's first values, mean - shift, 1/std).
void adain_fwd(const at::Tensor& x, const at::Tensor& style_scale, const at::Tensor& style_bias,
               const std::optional<at::Tensor>& noise, const std::optional<at::Tensor>& noise_weight,
               const std::optional<at::Tensor>& bias, const at::Tensor& y, const at::Tensor& shift,
               const at::Tensor& mean, const at::Tensor& rstd, double eps, int64_t act, double slope);

// dx (= du) and four (N, C) per-plane sums: dy, dy * hhat, du * noise (zeros without noise), du.
void adain_bwd(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& style_scale,
               const std::optional<at::Tensor>& noise, const std::optional<at::Tensor>& noise_weight,
               const std::optional<at::Tensor>& bias, const at::Tensor& shift, const at::Tensor& mean,
               const at::Tensor& rstd, const at::Tensor& dx, const at::Tensor& sum_dy, const at::Tensor& sum_dyh,
               const at::Tensor& sum_duz, const at::Tensor& sum_du, int64_t act, double slope);

}  // namespace effgan
