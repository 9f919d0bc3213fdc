// Entry points of diff_augment.cpp (outputs allocated by the Python launcher, see effgan/ops/_cpp_kernels.py).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace effgan {

// DiffAugment with fixed per-sample parameters (color: brightness, saturation, contrast (N,);
// translation: shift (N, 2) int (dh, dw); cutout: cut (N, 2) int top-left corner of a cut_h x cut_w
// square). Each transform runs only when its flag is set; its tensors must then be given.
void diff_augment_fwd(const at::Tensor& x, const std::optional<at::Tensor>& brightness,
                      const std::optional<at::Tensor>& saturation, const std::optional<at::Tensor>& contrast,
                      const std::optional<at::Tensor>& shift, const std::optional<at::Tensor>& cut, int64_t cut_h,
                      int64_t cut_w, bool color, bool translation, bool cutout, const at::Tensor& y);

// dx for dy (the strides of the forward's x); the transpose of the forward's linear map.
void diff_augment_bwd(const at::Tensor& dy, const std::optional<at::Tensor>& saturation,
                      const std::optional<at::Tensor>& contrast, const std::optional<at::Tensor>& shift,
                      const std::optional<at::Tensor>& cut, int64_t cut_h, int64_t cut_w, bool color,
                      bool translation, bool cutout, const at::Tensor& dx);

}  // namespace effgan
