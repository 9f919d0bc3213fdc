"""instance_norm_act: y = act(instance_norm(x) * weight + bias) + residual, in one pass each way.

The hot path of the CycleGAN ResNet/UNet generators and the PatchGAN discriminator. Layers:
``kernels/instance_norm_act.py`` (Triton), ``csrc/`` (C++), this file (reference, torch.library
ops, autograd, functional form), ``effgan/nn/instance_norm.py`` (module).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

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
from effgan.ops._instance_norm_grad_layout import guard_single_sample_grad
from effgan.ops._param_grads import batch_sum

OP = "instance_norm_act"


def instance_norm_act_ref(
    x: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    bias: Optional[torch.Tensor] = None,
    residual: Optional[torch.Tensor] = None,
    *,
    eps: float = 1e-5,
    act: str = "identity",
    negative_slope: float = 0.01,
) -> torch.Tensor:
    """The eager PyTorch composite: F.instance_norm, the activation, then the residual add.

    Parameters of another float dtype than x are cast to x's, as the fused backends accept them;
    float32 parameters of a float16/bfloat16 x stay float32 (torch's own mixed-precision rule).
    """
    if x.shape[-1] * x.shape[-2] > 1:
        weight, bias = _norm_params(weight, bias, x)
        y = guard_single_sample_grad(F.instance_norm(x, weight=weight, bias=bias, eps=eps))
    else:
        # F.instance_norm refuses single-element planes; the definition still holds (x - mean = 0).
        cast = (lambda p: p.to(x.dtype) if p is not None else None)
        y = _instance_norm_explicit(x, cast(weight), cast(bias), eps)
    y = apply_act_ref(y, act, negative_slope)
    if residual is not None:
        y = y + residual
    return y


def _norm_params(weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
                 x: torch.Tensor) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
    """weight and bias in the one dtype F.instance_norm takes with x: float32 beside a 16-bit x when
    either is float32 (the other cast to match), else x's own."""
    given = [p for p in (weight, bias) if p is not None]
    wide = x.dtype in (torch.float16, torch.bfloat16) and any(p.dtype == torch.float32 for p in given)
    dtype = torch.float32 if wide else x.dtype
    cast = (lambda p: p if p is None or p.dtype == dtype else p.to(dtype))
    return cast(weight), cast(bias)


def _instance_norm_explicit(x, weight, bias, eps):
    mean = x.mean(dim=(-2, -1), keepdim=True)
    var = x.var(dim=(-2, -1), keepdim=True, unbiased=False)
    y = (x - mean) * torch.rsqrt(var + eps)
    if weight is not None:
        y = y * weight[:, None, None]
    if bias is not None:
        y = y + bias[:, None, None]
    return y


def _kernels(impl: str):
    return launcher_module(impl, OP)


def _fwd_impl(
    x: torch.Tensor,
    weight: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    residual: Optional[torch.Tensor],
    eps: float,
    act: int,
    negative_slope: float,
    impl: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _kernels(impl).forward(x, weight, bias, residual, eps, act, negative_slope)


_fwd = torch.library.custom_op("effgan::instance_norm_act_fwd", _fwd_impl, mutates_args=())


@_fwd.register_fake
def _fwd_fake(x, weight, bias, residual, eps, act, negative_slope, impl):
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    stats = x.new_empty((x.shape[0], x.shape[1]), dtype=acc)
    return torch.empty_like(x), stats, torch.empty_like(stats)


def _bwd_impl(
    dy: torch.Tensor,
    x: torch.Tensor,
    weight: Optional[torch.Tensor],
    bias: Optional[torch.Tensor],
    mean: torch.Tensor,
    rstd: torch.Tensor,
    act: int,
    negative_slope: float,
    impl: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _kernels(impl).backward(dy, x, weight, bias, mean, rstd, act, negative_slope)


_bwd = torch.library.custom_op("effgan::instance_norm_act_bwd", _bwd_impl, mutates_args=())


@_bwd.register_fake
def _bwd_fake(dy, x, weight, bias, mean, rstd, act, negative_slope, impl):
    return torch.empty_like(x), torch.empty_like(mean), torch.empty_like(mean)


def _setup_context(ctx, inputs, output):
    x, weight, bias, residual, eps, act, negative_slope, impl = inputs
    _, mean, rstd = output
    save_for_backward(ctx, x, weight, bias, mean, rstd)
    ctx.act, ctx.negative_slope, ctx.impl = act, negative_slope, impl
    ctx.has_residual = residual is not None


def _backward(ctx, dy, _dmean, _drstd):
    x, weight, bias, mean, rstd = ctx.saved_tensors
    dy = like_layout(dy, x)
    dresidual = dy if ctx.has_residual else None
    if not any(ctx.needs_input_grad[:3]):
        # Only the residual wants a gradient (x and the affine parameters are frozen or constants):
        # it is dy itself, and the kernel's two passes over x and dy would be thrown away.
        return None, None, None, dresidual, None, None, None, None
    dx, sum_dz, sum_dzx = call_backward(_bwd, _bwd_impl, dy, x, weight, bias, mean, rstd, ctx.act, ctx.negative_slope,
                                        ctx.impl)
    dweight = dbias = None
    if weight is not None and ctx.needs_input_grad[1]:
        dweight = batch_sum(sum_dzx, weight.dtype)
    if bias is not None and ctx.needs_input_grad[2]:
        dbias = batch_sum(sum_dz, bias.dtype)
    return dx, dweight, dbias, dresidual, None, None, None, None


torch.library.register_autograd("effgan::instance_norm_act_fwd", _backward, setup_context=_setup_context)
_instance_norm_act = FusedOp(OP, _fwd, _fwd_impl, _setup_context, _backward, nondiff_outputs=(1, 2))
forbid_double_backward(_bwd, OP)


def instance_norm_act(
    x: torch.Tensor,
    weight: Optional[torch.Tensor] = None,
    bias: Optional[torch.Tensor] = None,
    residual: Optional[torch.Tensor] = None,
    *,
    eps: float = 1e-5,
    act: str = "identity",
    negative_slope: float = 0.01,
    impl: str = "auto",
) -> torch.Tensor:
    """Fused ``act(instance_norm(x) * weight + bias) + residual`` for a 4-D ``x``.

    ``weight``/``bias`` are per-channel (C,) affine parameters or None; ``residual`` has x's shape.
    The output keeps x's memory format (NCHW or channels_last).
    """
    x = check_tensor(x, "x", ndim=4)
    C = x.shape[1]
    weight = check_optional(weight, "weight", (C,), device=x.device)
    bias = check_optional(bias, "bias", (C,), device=x.device)
    residual = check_optional(residual, "residual", tuple(x.shape), device=x.device, dtype=x.dtype)
    eps = check_positive(eps, "eps")
    negative_slope = check_finite(negative_slope, "negative_slope")
    code = act_code(act)
    backend = resolve_impl(impl, x.device, OP)
    if backend == "ref":
        return instance_norm_act_ref(x, weight, bias, residual, eps=eps, act=act, negative_slope=negative_slope)
    x = as_kernel_layout(x)
    if residual is not None:
        residual = like_layout(residual, x)
    # The kernels index the per-channel parameters densely; a strided view (a slice) is copied.
    weight, bias = dense_or_none(weight), dense_or_none(bias)
    y, _, _ = _instance_norm_act(x, weight, bias, residual, eps, code, negative_slope, backend)
    return y
