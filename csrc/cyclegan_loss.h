// Entry points of cyclegan_loss.cpp (outputs allocated by the Python launcher, see effgan/ops/_cpp_kernels.py).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

namespace effgan {

// CycleGAN loss terms: GAN terms on logit maps (gan_mode 0 lsgan, 1 vanilla) then L1 pairs;
// out (T + 1,): each term's weight * mean(value), then their total (float32, float64 if any input is).
// signs: empty, or one uint8 tensor of sign_bytes(numel) per pair (signs.h) for the backward.
void cyclegan_loss_fwd(const std::vector<at::Tensor>& preds, const std::vector<double>& targets,
                       const std::vector<double>& pred_weights, const std::vector<at::Tensor>& xs,
                       const std::vector<at::Tensor>& ys, const std::vector<double>& l1_weights, int64_t gan_mode,
                       const at::Tensor& out, const std::vector<at::Tensor>& signs);

// Gradients per term (dxs: one per term, dys: one per term, None where not needed; GAN terms have
// no dy) for the upstream gradient dloss of out. A pair's gradients come from its forward signs;
// xs only give their layout.
void cyclegan_loss_bwd(const at::Tensor& dloss, const std::vector<at::Tensor>& preds,
                       const std::vector<double>& targets, const std::vector<double>& pred_weights,
                       const std::vector<at::Tensor>& xs, const std::vector<at::Tensor>& signs,
                       const std::vector<double>& l1_weights, int64_t gan_mode,
                       const std::vector<std::optional<at::Tensor>>& dxs,
                       const std::vector<std::optional<at::Tensor>>& dys);

}  // namespace effgan
