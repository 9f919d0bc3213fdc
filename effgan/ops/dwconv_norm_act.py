"""dwconv_norm_act: depthwise conv -> instance norm (+affine) -> activation, plus the SE squeeze.

The middle of an EfficientNet MBConv block with instance norm. Returns ``(y, squeeze)`` where
``squeeze = y.mean((2, 3))`` is produced by the same pass that writes ``y``. Layers:
``kernels/dwconv_norm_act.py`` (Triton), this file (reference, torch.library ops, autograd,
functional form), ``effgan/nn/mbconv.py`` (modules).

Reflect padding is applied here, before the custom op (``F.pad``; one extra read/write of the
input, and autograd maps the padded-input gradient back); the kernels then run a "valid"
convolution. Zero padding is done inside the kernels with masked loads.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from effgan._backend import launcher_module, resolve_impl
from effgan.ops._activation import act_code
from effgan.ops._checks import (
    as_kernel_layout,
    autocast_to,
    check_finite,
    check_optional,
    check_positive,
    check_tensor,
    dense_or_none,
    memory_format_of,
)
from effgan.ops._double_backward import forbid_double_backward
from effgan.ops._eager import FusedOp, call_backward, save_for_backward
from effgan.ops._param_grads import batch_sum
from effgan.ops.instance_norm_act import instance_norm_act_ref

OP = "dwconv_norm_act"
KERNEL_SIZES = (3, 5)
STRIDES = (1, 2)
PADDING_MODES = ("zeros", "reflect")


def dwconv_norm_act_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    norm_weight: Optional[torch.Tensor] = None,
    norm_bias: Optional[torch.Tensor] = None,
    *,
    stride: int = 1,
    padding_mode: str = "zeros",
    eps: float = 1e-5,
    act: str = "silu",
    negative_slope: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The eager composite: F.conv2d(groups=C) as nn.Conv2d pads it, instance_norm_act_ref, mean.

    The conv weight and bias have x's dtype (as in every backend); the norm's parameters may differ,
    cast as instance_norm_act_ref casts them.
    """
    pad = weight.shape[-1] // 2
    if padding_mode == "zeros":
        z = F.conv2d(x, weight, bias, stride, pad, groups=x.shape[1])
    else:
        z = F.conv2d(F.pad(x, (pad, pad, pad, pad), mode=padding_mode), weight, bias, stride, 0, groups=x.shape[1])
    y = instance_norm_act_ref(z, norm_weight, norm_bias, eps=eps, act=act, negative_slope=negative_slope)
    return y, y.mean(dim=(2, 3))


def output_size(size: int, kernel_size: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel_size) // stride + 1


def _kernels(impl: str):
    return launcher_module(impl, OP)


def _fwd_impl(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    norm_weight: Optional[torch.Tensor],
    norm_bias: Optional[torch.Tensor],
    stride: int,
    pad: int,
    eps: float,
    act: int,
    negative_slope: float,
    impl: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    # The conv bias shifts each plane by a constant that the instance norm subtracts again: the
    # kernels ignore it (it is an input only so that autograd returns its zero gradient).
    return _kernels(impl).forward(x, weight, norm_weight, norm_bias, stride, pad, eps, act, negative_slope)


_fwd = torch.library.custom_op("effgan::dwconv_norm_act_fwd", _fwd_impl, mutates_args=())


@_fwd.register_fake
def _fwd_fake(x, weight, bias, norm_weight, norm_bias, stride, pad, eps, act, negative_slope, impl):
    N, C, H, W = x.shape
    k = weight.shape[-1]
    Ho, Wo = output_size(H, k, stride, pad), output_size(W, k, stride, pad)
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = torch.empty((N, C, Ho, Wo), device=x.device, dtype=x.dtype, memory_format=memory_format_of(x))
    return y, x.new_empty((N, C)), x.new_empty((3, N, C), dtype=acc)


def _bwd_impl(
    dy: torch.Tensor,
    dsqueeze: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    norm_weight: Optional[torch.Tensor],
    norm_bias: Optional[torch.Tensor],
    stats: torch.Tensor,
    stride: int,
    pad: int,
    act: int,
    negative_slope: float,
    impl: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return _kernels(impl).backward(dy, dsqueeze, x, weight, norm_weight, norm_bias, stats, stride, pad, act,
                                   negative_slope)


_bwd = torch.library.custom_op("effgan::dwconv_norm_act_bwd", _bwd_impl, mutates_args=())


@_bwd.register_fake
def _bwd_fake(dy, dsqueeze, x, weight, norm_weight, norm_bias, stats, stride, pad, act, negative_slope, impl):
    acc = stats.dtype
    N, C = x.shape[:2]
    return (torch.empty_like(x), torch.empty_like(weight), x.new_empty((N, C), dtype=acc),
            x.new_empty((N, C), dtype=acc))


def _setup_context(ctx, inputs, output):
    x, weight, bias, norm_weight, norm_bias, stride, pad, eps, act, negative_slope, impl = inputs
    y, _, stats = output
    save_for_backward(ctx, x, weight, bias, norm_weight, norm_bias, stats)
    ctx.stride, ctx.pad, ctx.act, ctx.negative_slope, ctx.impl = stride, pad, act, negative_slope, impl
    ctx.y_shape, ctx.y_dtype = tuple(y.shape), y.dtype


def _backward(ctx, dy, dsqueeze, _dstats):
    x, weight, bias, norm_weight, norm_bias, stats = ctx.saved_tensors
    if dy is None:
        dy = x.new_zeros(ctx.y_shape)
    if dsqueeze is None:
        dsqueeze = x.new_zeros(ctx.y_shape[:2])
    dx, dweight, sum_dz, sum_dzx = call_backward(_bwd, _bwd_impl, dy, dsqueeze.contiguous(), x, weight, norm_weight,
                                                 norm_bias, stats, ctx.stride, ctx.pad, ctx.act, ctx.negative_slope,
                                                 ctx.impl)
    dbias = dnorm_weight = dnorm_bias = None
    if bias is not None and ctx.needs_input_grad[2]:
        dbias = torch.zeros_like(bias)  # exact: the instance norm removes any per-plane constant
    if norm_weight is not None and ctx.needs_input_grad[3]:
        dnorm_weight = batch_sum(sum_dzx, norm_weight.dtype)
    if norm_bias is not None and ctx.needs_input_grad[4]:
        dnorm_bias = batch_sum(sum_dz, norm_bias.dtype)
    return dx, dweight, dbias, dnorm_weight, dnorm_bias, None, None, None, None, None, None


torch.library.register_autograd("effgan::dwconv_norm_act_fwd", _backward, setup_context=_setup_context)
_dwconv_norm_act = FusedOp(OP, _fwd, _fwd_impl, _setup_context, _backward, nondiff_outputs=(2,))
forbid_double_backward(_bwd, OP)


def _check_int(value: object, name: str, allowed: tuple) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value}")
    return value


def dwconv_norm_act(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor] = None,
    norm_weight: Optional[torch.Tensor] = None,
    norm_bias: Optional[torch.Tensor] = None,
    *,
    stride: int = 1,
    padding_mode: str = "zeros",
    eps: float = 1e-5,
    act: str = "silu",
    negative_slope: float = 0.01,
    impl: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused depthwise conv (padding k//2) -> instance norm (+affine) -> act; returns (y, y.mean((2, 3))).

    ``weight`` is (C, 1, k, k) with k in {3, 5}; ``bias`` the conv bias (C,) (it cancels in the
    instance norm, so its gradient is zero); ``norm_weight``/``norm_bias`` the (C,) affine
    parameters or None. ``stride`` is 1 or 2; ``padding_mode`` "zeros" or "reflect" as in
    nn.Conv2d. Both outputs are differentiable. ``y`` keeps x's memory format. Inside
    ``torch.autocast`` x, weight and bias are cast to the region's dtype, as nn.Conv2d's are.
    """
    x = check_tensor(x, "x", ndim=4)
    x, weight, bias = autocast_to(x, weight, bias)  # leaves non-tensors for the checks below to name
    N, C, H, W = x.shape
    weight = check_tensor(weight, "weight", ndim=4, device=x.device, dtype=x.dtype)
    k = weight.shape[-1]
    if k not in KERNEL_SIZES or tuple(weight.shape) != (C, 1, k, k):
        raise ValueError(f"weight must have shape (C, 1, k, k) = ({C}, 1, k, k) with k in {KERNEL_SIZES}, "
                         f"got {tuple(weight.shape)}")
    bias = check_optional(bias, "bias", (C,), device=x.device, dtype=x.dtype)
    norm_weight = check_optional(norm_weight, "norm_weight", (C,), device=x.device)
    norm_bias = check_optional(norm_bias, "norm_bias", (C,), device=x.device)
    stride = _check_int(stride, "stride", STRIDES)
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    pad = k // 2
    if padding_mode == "reflect" and (H <= pad or W <= pad):
        raise ValueError(f"x of spatial size {H}x{W} is too small for reflect padding of {pad}")
    eps = check_positive(eps, "eps")
    negative_slope = check_finite(negative_slope, "negative_slope")
    code = act_code(act)
    backend = resolve_impl(impl, x.device, OP)
    if backend == "ref":
        return dwconv_norm_act_ref(x, weight, bias, norm_weight, norm_bias, stride=stride, padding_mode=padding_mode,
                                   eps=eps, act=act, negative_slope=negative_slope)
    if padding_mode == "reflect":
        # F.pad keeps a channels_last input channels_last on the CPU but returns NCHW on CUDA; the
        # outputs and dx follow the padded tensor's layout, so it must keep the caller's.
        layout = memory_format_of(x)
        x = F.pad(x, (pad, pad, pad, pad), mode="reflect").contiguous(memory_format=layout)
        pad = 0
    x = as_kernel_layout(x)
    norm_weight, norm_bias = dense_or_none(norm_weight), dense_or_none(norm_bias)
    y, squeeze, _ = _dwconv_norm_act(x, weight.contiguous(), bias, norm_weight, norm_bias, stride, pad, eps, code,
                                     negative_slope, backend)
    return y, squeeze
