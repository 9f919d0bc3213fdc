"""adain: the StyleGAN layer epilogue (noise, bias, activation, instance norm, style) in one op.

    u = x + noise * noise_weight[c] + bias[c];  h = act(u);  y = instance_norm(h) * style_scale[n, c] + style_bias[n, c]

Layers: ``kernels/adain.py`` (Triton), this file (reference, torch.library ops, autograd,
functional form), ``effgan/nn/adain.py`` (module).
"""
from __future__ import annotations

from typing import Optional

import torch

from effgan._backend import launcher_module, resolve_impl
from effgan.ops._activation import act_code, apply_act_ref
from effgan.ops._checks import (
    as_kernel_layout,
    check_finite,
    check_optional,
    check_positive,
    check_tensor,
    dense_or_none,
    like_layout,
)
from effgan.ops._double_backward import forbid_double_backward
from effgan.ops._eager import FusedOp, call_backward, save_for_backward
from effgan.ops._param_grads import batch_sum
from effgan.ops.instance_norm_act import instance_norm_act_ref

OP = "adain"


def _per_channel(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return t.to(dtype)[None, :, None, None]


def adain_ref(
    x: torch.Tensor,
    style_scale: torch.Tensor,
    style_bias: torch.Tensor,
    noise: Optional[torch.Tensor] = None,
    noise_weight: Optional[torch.Tensor] = None,
    bias: Optional[torch.Tensor] = None,
    *,
    eps: float = 1e-5,
    act: str = "leaky_relu",
    negative_slope: float = 0.2,
) -> torch.Tensor:
    """The eager PyTorch composite, in x's dtype (parameters of another float dtype are cast)."""
    if (noise is None) != (noise_weight is None):
        raise ValueError("noise and noise_weight must be given together (both or neither)")
    u = x
    if noise is not None:
        u = u + noise * _per_channel(noise_weight, x.dtype)
    if bias is not None:
        u = u + _per_channel(bias, x.dtype)
    h = apply_act_ref(u, act, negative_slope)
    h = instance_norm_act_ref(h, eps=eps)  # plain instance norm; also defined for 1x1 planes
    return h * style_scale.to(x.dtype)[:, :, None, None] + style_bias.to(x.dtype)[:, :, None, None]


def _kernels(impl: str):
    return launcher_module(impl, OP)


def _fwd_impl(
    x: torch.Tensor,
    style_scale: torch.Tensor,
    style_bias: torch.Tensor,
    noise: Optional[torch.Tensor],
    noise_weight: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    eps: float,
    act: int,
    negative_slope: float,
    impl: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return _kernels(impl).forward(x, style_scale, style_bias, noise, noise_weight, bias, eps, act, negative_slope)


_fwd = torch.library.custom_op("effgan::adain_fwd", _fwd_impl, mutates_args=())


@_fwd.register_fake
def _fwd_fake(x, style_scale, style_bias, noise, noise_weight, bias, eps, act, negative_slope, impl):
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    stats = x.new_empty((x.shape[0], x.shape[1]), dtype=acc)
    return torch.empty_like(x), stats, torch.empty_like(stats), torch.empty_like(stats)


def _bwd_impl(
    dy: torch.Tensor,
    x: torch.Tensor,
    style_scale: torch.Tensor,
    noise: Optional[torch.Tensor],
    noise_weight: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    shift: torch.Tensor,
    mean: torch.Tensor,
    rstd: torch.Tensor,
    act: int,
    negative_slope: float,
    impl: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return _kernels(impl).backward(dy, x, style_scale, noise, noise_weight, bias, shift, mean, rstd, act,
                                   negative_slope)


_bwd = torch.library.custom_op("effgan::adain_bwd", _bwd_impl, mutates_args=())


@_bwd.register_fake
def _bwd_fake(dy, x, style_scale, noise, noise_weight, bias, shift, mean, rstd, act, negative_slope, impl):
    return (torch.empty_like(x), torch.empty_like(mean), torch.empty_like(mean), torch.empty_like(mean),
            torch.empty_like(mean))


def _setup_context(ctx, inputs, output):
    x, style_scale, style_bias, noise, noise_weight, bias, eps, act, negative_slope, impl = inputs
    _, shift, mean, rstd = output
    save_for_backward(ctx, x, style_scale, noise, noise_weight, bias, shift, mean, rstd)
    ctx.act, ctx.negative_slope, ctx.impl = act, negative_slope, impl
    ctx.style_bias_dtype = style_bias.dtype


def _backward(ctx, dy, _dshift, _dmean, _drstd):
    x, style_scale, noise, noise_weight, bias, shift, mean, rstd = ctx.saved_tensors
    dy = like_layout(dy, x)
    dx, sum_dy, sum_dyh, sum_duz, sum_du = call_backward(
        _bwd, _bwd_impl,
        dy, x, style_scale, noise, noise_weight, bias, shift, mean, rstd, ctx.act, ctx.negative_slope, ctx.impl
    )
    need = ctx.needs_input_grad
    dscale = sum_dyh.to(style_scale.dtype) if need[1] else None
    dsbias = sum_dy.to(ctx.style_bias_dtype) if need[2] else None
    dnoise = dnw = dbias = None
    if noise is not None and need[3]:
        # dnoise[n, hw] = sum_c du[n, c, hw] * noise_weight[c]; a torch reduction (deterministic).
        acc = mean.dtype
        dnoise = (dx.to(acc) * noise_weight.to(acc)[None, :, None, None]).sum(1, keepdim=True).to(noise.dtype)
    if noise_weight is not None and need[4]:
        dnw = batch_sum(sum_duz, noise_weight.dtype)
    if bias is not None and need[5]:
        dbias = batch_sum(sum_du, bias.dtype)
    return dx, dscale, dsbias, dnoise, dnw, dbias, None, None, None, None


torch.library.register_autograd("effgan::adain_fwd", _backward, setup_context=_setup_context)
_adain = FusedOp(OP, _fwd, _fwd_impl, _setup_context, _backward, nondiff_outputs=(1, 2, 3))
forbid_double_backward(_bwd, OP)


def adain(
    x: torch.Tensor,
    style_scale: torch.Tensor,
    style_bias: torch.Tensor,
    noise: Optional[torch.Tensor] = None,
    noise_weight: Optional[torch.Tensor] = None,
    bias: Optional[torch.Tensor] = None,
    *,
    eps: float = 1e-5,
    act: str = "leaky_relu",
    negative_slope: float = 0.2,
    impl: str = "auto",
) -> torch.Tensor:
    """Fused ``instance_norm(act(x + noise * noise_weight + bias)) * style_scale + style_bias``.

    Shapes: x (N, C, H, W); style_scale, style_bias (N, C); noise (N, 1, H, W), one image per sample
    shared by all channels, given together with noise_weight (C,); bias (C,). Optional operands may
    be None. The output has x's dtype and memory format (NCHW or channels_last); the per-channel
    and style operands may be of another float dtype. Every operand that requires grad gets one.
    """
    x = check_tensor(x, "x", ndim=4)
    N, C, H, W = x.shape
    # check_tensor first: the style operands are required, so None is a TypeError like any non-tensor.
    style_scale = check_optional(check_tensor(style_scale, "style_scale"), "style_scale", (N, C), device=x.device)
    style_bias = check_optional(check_tensor(style_bias, "style_bias"), "style_bias", (N, C), device=x.device)
    noise = check_optional(noise, "noise", (N, 1, H, W), device=x.device, dtype=x.dtype)
    noise_weight = check_optional(noise_weight, "noise_weight", (C,), device=x.device)
    if (noise is None) != (noise_weight is None):
        given, missing = ("noise", "noise_weight") if noise is not None else ("noise_weight", "noise")
        raise ValueError(f"{given} was given without {missing}; pass noise and noise_weight together")
    bias = check_optional(bias, "bias", (C,), device=x.device)
    eps = check_positive(eps, "eps")
    negative_slope = check_finite(negative_slope, "negative_slope")
    code = act_code(act)
    backend = resolve_impl(impl, x.device, OP)
    if backend == "ref":
        return adain_ref(x, style_scale, style_bias, noise, noise_weight, bias, eps=eps, act=act,
                         negative_slope=negative_slope)
    x = as_kernel_layout(x)
    # The kernels index the (N, C) and (C,) operands densely; style tensors are often column
    # slices of one linear layer's output.
    style_scale, style_bias = style_scale.contiguous(), style_bias.contiguous()
    noise_weight, bias = dense_or_none(noise_weight), dense_or_none(bias)
    y, _, _, _ = _adain(x, style_scale, style_bias, noise, noise_weight, bias, eps, code, negative_slope, backend)
    return y
