"""se_scale: the squeeze-excitation rescale y = x * sigmoid(gate)[:, :, None, None].

``gate`` holds the (N, C) pre-sigmoid logits, so the sigmoid and the broadcast multiply run in one
pass forward, and the backward produces dx and dgate in one pass (per-plane sums of dy * x reduced
in a fixed order). Layers: ``kernels/se_scale.py`` (Triton), this file, ``effgan/nn/squeeze_excite.py``.

``se_project`` folds the rescale into the following 1x1 projection instead (a batched matmul with
per-sample weights; plain torch ops), so the scaled tensor never exists.
"""
from __future__ import annotations

import torch

from effgan._backend import launcher_module, resolve_impl
from effgan.ops._checks import as_kernel_layout, check_tensor, like_layout
from effgan.ops._double_backward import forbid_double_backward
from effgan.ops._eager import FusedOp, call_backward, save_for_backward

OP = "se_scale"


def se_scale_ref(x: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
    """The eager composite: x * torch.sigmoid(gate)[:, :, None, None]."""
    return x * torch.sigmoid(gate)[:, :, None, None]


def _kernels(impl: str):
    return launcher_module(impl, OP)


def _fwd_impl(x: torch.Tensor, gate: torch.Tensor, impl: str) -> torch.Tensor:
    return _kernels(impl).forward(x, gate)


_fwd = torch.library.custom_op("effgan::se_scale_fwd", _fwd_impl, mutates_args=())


@_fwd.register_fake
def _fwd_fake(x, gate, impl):
    return torch.empty_like(x)


def _bwd_impl(dy: torch.Tensor, x: torch.Tensor, gate: torch.Tensor, impl: str) -> tuple[torch.Tensor, torch.Tensor]:
    return _kernels(impl).backward(dy, x, gate)


_bwd = torch.library.custom_op("effgan::se_scale_bwd", _bwd_impl, mutates_args=())


@_bwd.register_fake
def _bwd_fake(dy, x, gate, impl):
    return torch.empty_like(x), torch.empty_like(gate)


def _setup_context(ctx, inputs, output):
    x, gate, impl = inputs
    save_for_backward(ctx, x, gate)
    ctx.impl = impl


def _backward(ctx, dy):
    x, gate = ctx.saved_tensors
    dx, dgate = call_backward(_bwd, _bwd_impl, like_layout(dy, x), x, gate, ctx.impl)
    return dx, dgate, None


torch.library.register_autograd("effgan::se_scale_fwd", _backward, setup_context=_setup_context)
_se_scale = FusedOp(OP, _fwd, _fwd_impl, _setup_context, _backward)
forbid_double_backward(_bwd, OP)


def se_scale(x: torch.Tensor, gate: torch.Tensor, *, impl: str = "auto") -> torch.Tensor:
    """``x * sigmoid(gate)[:, :, None, None]`` for x (N, C, H, W) and logits gate (N, C).

    The output keeps x's memory format (NCHW or channels_last) and dtype. Inside ``torch.autocast``
    a gate of another dtype is cast to x's (the gate usually comes from a linear layer in the
    region's dtype, x from wherever the block's activations are).
    """
    x = check_tensor(x, "x", ndim=4)
    if (isinstance(gate, torch.Tensor) and gate.dtype != x.dtype and torch.is_autocast_enabled(x.device.type)
            and gate.is_floating_point()):
        gate = gate.to(x.dtype)
    gate = check_tensor(gate, "gate", ndim=2, device=x.device, dtype=x.dtype)
    if tuple(gate.shape) != tuple(x.shape[:2]):
        raise ValueError(f"gate must have shape (N, C) = {tuple(x.shape[:2])}, got {tuple(gate.shape)}")
    backend = resolve_impl(impl, x.device, OP)
    if backend == "ref":
        return se_scale_ref(x, gate)
    return _se_scale(as_kernel_layout(x), gate.contiguous(), backend)


def se_project_ref(x: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The eager composite: the 1x1 convolution (no bias) of se_scale_ref(x, gate)."""
    return torch.nn.functional.conv2d(se_scale_ref(x, gate), weight)


def se_project(x: torch.Tensor, gate: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``conv1x1(x * sigmoid(gate)[:, :, None, None], weight)`` without materialising the scaled x.

    A 1x1 conv of x * s[n] equals a 1x1 conv of x with the per-sample weight W * s[n], so this is
    one batched matmul of (N, Cout, C) per-sample weights with x viewed as (N, C, H*W) (or, for a
    channels_last x, (N, H*W, C) times the transposed weights; the output is then channels_last).
    Plain torch ops, differentiable by autograd. ``weight`` is (Cout, C, 1, 1).
    """
    x = check_tensor(x, "x", ndim=4)
    N, C, H, W = x.shape
    gate = check_tensor(gate, "gate", ndim=2, device=x.device, dtype=x.dtype)
    if tuple(gate.shape) != (N, C):
        raise ValueError(f"gate must have shape (N, C) = {(N, C)}, got {tuple(gate.shape)}")
    weight = check_tensor(weight, "weight", ndim=4, device=x.device, dtype=x.dtype)
    if weight.shape[1:] != (C, 1, 1):
        raise ValueError(f"weight must have shape (Cout, {C}, 1, 1), got {tuple(weight.shape)}")
    w = weight.flatten(1)[None] * torch.sigmoid(gate)[:, None, :]  # (N, Cout, C)
    if x.shape[1] > 1 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        y = torch.matmul(x.permute(0, 2, 3, 1).reshape(N, H * W, C), w.transpose(1, 2))  # (N, HW, Cout)
        return y.view(N, H, W, -1).permute(0, 3, 1, 2)
    return torch.matmul(w, x.reshape(N, C, H * W)).view(N, -1, H, W)
