"""Host launchers of the C++ CPU kernels: one namespace per op, with the Triton launchers' signatures.

``effgan._backend.launcher_module("cpp", op)`` returns ``<op>`` from here; its ``forward`` and
``backward`` take and return exactly what ``effgan.kernels.<op>`` does. Outputs are allocated here
with ``effgan._alloc`` (called through the module, so tests can poison them) and passed to the
extension, which checks every argument and fills every element.
"""
from __future__ import annotations

from types import SimpleNamespace

import torch

from effgan import _alloc
from effgan._backend import cpp_extension
from effgan._signs import sign_bytes
from effgan.ops._checks import memory_format_of


def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


# ---------------------------------------------------------------- instance_norm_act


def _instance_norm_act_forward(x, weight, bias, residual, eps: float, act: int, slope: float):
    """y and the saved statistics (mean relative to the mean of each plane's first values, 1/std), each (N, C)."""
    N, C = x.shape[:2]
    y = _alloc.empty_like(x)
    mean = _alloc.empty((N, C), device=x.device, dtype=_acc_dtype(x.dtype))
    rstd = _alloc.empty_like(mean)
    cpp_extension().instance_norm_act_fwd(x, weight, bias, residual, y, mean, rstd, float(eps), int(act), float(slope))
    return y, mean, rstd


def _instance_norm_act_backward(dy, x, weight, bias, mean, rstd, act: int, slope: float):
    """dx and the per-plane sums (sum dz, sum dz*xhat) of shape (N, C) for the parameter grads."""
    dx = _alloc.empty_like(x)
    sum_dz = _alloc.empty(tuple(mean.shape), device=x.device, dtype=mean.dtype)
    sum_dzx = _alloc.empty_like(sum_dz)
    cpp_extension().instance_norm_act_bwd(dy, x, weight, bias, mean, rstd, dx, sum_dz, sum_dzx, int(act), float(slope))
    return dx, sum_dz, sum_dzx


instance_norm_act = SimpleNamespace(forward=_instance_norm_act_forward, backward=_instance_norm_act_backward)


# ---------------------------------------------------------------- adain


def _noise_rows(noise, x):
    """The (N, 1, H, W) noise as an (N, H*W) view with contiguous rows (copied only if it must be)."""
    if noise is None:
        return None
    N, _, H, W = noise.shape
    z = noise.reshape(N, H * W)
    if z.stride(1) != 1 and H * W > 1:
        z = z.contiguous()
    return z


def _adain_forward(x, style_scale, style_bias, noise, noise_weight, bias, eps: float, act: int, slope: float):
    """y and the statistics of h = act(u) per plane (shift, mean - shift, 1 / std), each (N, C)."""
    N, C = x.shape[:2]
    y = _alloc.empty_like(x)
    shift = _alloc.empty((N, C), device=x.device, dtype=_acc_dtype(x.dtype))
    mean = _alloc.empty_like(shift)
    rstd = _alloc.empty_like(shift)
    cpp_extension().adain_fwd(x, style_scale, style_bias, _noise_rows(noise, x), noise_weight, bias, y, shift, mean,
                              rstd, float(eps), int(act), float(slope))
    return y, shift, mean, rstd


def _adain_backward(dy, x, style_scale, noise, noise_weight, bias, shift, mean, rstd, act: int, slope: float):
    """dx (= du) and the (N, C) per-plane sums of dy, dy * hhat, du * noise (zeros without noise), du."""
    dx = _alloc.empty_like(x)
    sums = [_alloc.empty(tuple(mean.shape), device=x.device, dtype=mean.dtype) for _ in range(4)]
    cpp_extension().adain_bwd(dy, x, style_scale, _noise_rows(noise, x), noise_weight, bias, shift, mean, rstd, dx,
                              *sums, int(act), float(slope))
    return (dx, *sums)


adain = SimpleNamespace(forward=_adain_forward, backward=_adain_backward)


# ---------------------------------------------------------------- cyclegan_loss


def _cyclegan_loss_forward(preds, targets, pred_weights, xs, ys, l1_weights, gan_mode: int, save_signs: bool):
    """[losses (T + 1,): the T weighted term losses (GAN terms, then L1 pairs) and their total],
    followed, with save_signs, by each pair's signs of x - y (see ``sign_bytes``)."""
    tensors = list(preds) + list(xs)
    acc = torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32
    out = _alloc.empty((len(tensors) + 1,), device=tensors[0].device, dtype=acc)
    signs = [_alloc.empty((sign_bytes(x.numel()),), device=x.device, dtype=torch.uint8) for x in xs] if save_signs \
        else []
    cpp_extension().cyclegan_loss_fwd(list(preds), [float(t) for t in targets], [float(w) for w in pred_weights],
                                      list(xs), list(ys), [float(w) for w in l1_weights], int(gan_mode), out, signs)
    return [out, *signs]


def _cyclegan_loss_backward(dloss, preds, targets, pred_weights, xs, signs, l1_weights, gan_mode: int,
                            need_pred, need_x, need_y):
    """Gradients of the needed inputs, in order: preds (where needed), then per pair dx, dy (where needed).
    A pair's gradients come from its forward signs; ``xs`` give only their shape, strides and dtype."""
    dxs = [_alloc.empty_like(p) if n else None for p, n in zip(preds, need_pred)]
    dxs += [_alloc.empty_like(x) if n else None for x, n in zip(xs, need_x)]
    dys = [None] * len(preds) + [_alloc.empty_like(x) if n else None for x, n in zip(xs, need_y)]
    cpp_extension().cyclegan_loss_bwd(dloss, list(preds), [float(t) for t in targets],
                                      [float(w) for w in pred_weights], list(xs), list(signs),
                                      [float(w) for w in l1_weights], int(gan_mode), dxs, dys)
    grads = [d for d in dxs[: len(preds)] if d is not None]
    for dx, dy in zip(dxs[len(preds):], dys[len(preds):]):
        grads += [g for g in (dx, dy) if g is not None]
    return grads


cyclegan_loss = SimpleNamespace(forward=_cyclegan_loss_forward, backward=_cyclegan_loss_backward)


# ---------------------------------------------------------------- se_scale


def _se_scale_forward(x, gate):
    """y = x * sigmoid(gate) for contiguous or channels_last ``x`` and (N, C) ``gate``."""
    y = _alloc.empty_like(x)
    cpp_extension().se_scale_fwd(x, gate, y)
    return y


def _se_scale_backward(dy, x, gate):
    """(dx, dgate); ``dy`` has exactly x's strides."""
    acc = _acc_dtype(x.dtype)
    dx = _alloc.empty_like(x)
    sum_dyx = _alloc.empty(tuple(gate.shape), device=x.device, dtype=acc)
    cpp_extension().se_scale_bwd(dy, x, gate, dx, sum_dyx)
    sig = torch.sigmoid(gate.to(acc))
    return dx, (sum_dyx * sig * (1.0 - sig)).to(gate.dtype)


se_scale = SimpleNamespace(forward=_se_scale_forward, backward=_se_scale_backward)


# ---------------------------------------------------------------- dwconv_norm_act


def _dwconv_norm_act_forward(x, weight, norm_weight, norm_bias, stride: int, pad: int, eps: float, act: int,
                             slope: float):
    """(y, squeeze, stats): y in x's memory format, squeeze (N, C) in x's dtype, stats (3, N, C)
    (shift, mean - shift, 1/std of the conv output per plane; backend-internal)."""
    N, C, H, W = x.shape
    K = weight.shape[-1]
    Ho, Wo = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    y = _alloc.empty((N, C, Ho, Wo), device=x.device, dtype=x.dtype, memory_format=memory_format_of(x))
    squeeze = _alloc.empty((N, C), device=x.device, dtype=x.dtype)
    stats = _alloc.empty((3, N, C), device=x.device, dtype=_acc_dtype(x.dtype))
    cpp_extension().dwconv_norm_act_fwd(x, weight, norm_weight, norm_bias, int(stride), int(pad), float(eps),
                                        int(act), float(slope), y, squeeze, stats)
    return y, squeeze, stats


def _dwconv_norm_act_backward(dy, dsqueeze, x, weight, norm_weight, norm_bias, stats, stride: int, pad: int,
                              act: int, slope: float):
    """(dx, dweight, sum_g, sum_gz) as the Triton launcher returns them."""
    N, C = x.shape[:2]
    K = weight.shape[-1]
    acc = stats.dtype
    # The kernels read dy in y's layout (autograd may hand over other strides, e.g. expanded zeros).
    dy = dy.contiguous(memory_format=memory_format_of(x))
    dx = _alloc.empty_like(x)
    dweight = _alloc.empty((C, K * K), device=x.device, dtype=acc)
    sum_g = _alloc.empty((N, C), device=x.device, dtype=acc)
    sum_gz = _alloc.empty_like(sum_g)
    cpp_extension().dwconv_norm_act_bwd(dy, dsqueeze.contiguous(), x, weight, norm_weight, norm_bias, stats,
                                        int(stride), int(pad), int(act), float(slope), dx, dweight, sum_g, sum_gz)
    return dx, dweight.view(C, 1, K, K).to(weight.dtype), sum_g, sum_gz


dwconv_norm_act = SimpleNamespace(forward=_dwconv_norm_act_forward, backward=_dwconv_norm_act_backward)


# ---------------------------------------------------------------- diff_augment


def _diff_augment_forward(x, brightness, saturation, contrast, shift, cut, cut_h: int, cut_w: int,
                          color: bool, translation: bool, cutout: bool):
    """y for a 4-D NCHW or channels_last ``x``; each transform's parameters are used only when its flag is set."""
    y = _alloc.empty_like(x)
    cpp_extension().diff_augment_fwd(x, brightness if color else None, saturation if color else None,
                                     contrast if color else None, shift if translation else None,
                                     cut if cutout else None, int(cut_h), int(cut_w), bool(color),
                                     bool(translation), bool(cutout), y)
    return y


def _diff_augment_backward(dy, brightness, saturation, contrast, shift, cut, cut_h: int, cut_w: int,
                           color: bool, translation: bool, cutout: bool):
    """dx for ``dy`` (the strides of the forward's x); ``brightness`` is unused (it has no gradient)."""
    dx = _alloc.empty_like(dy)
    cpp_extension().diff_augment_bwd(dy, saturation if color else None, contrast if color else None,
                                     shift if translation else None, cut if cutout else None, int(cut_h),
                                     int(cut_w), bool(color), bool(translation), bool(cutout), dx)
    return dx


diff_augment = SimpleNamespace(forward=_diff_augment_forward, backward=_diff_augment_backward)
