"""Argument checks shared by the fused ops: a bad call raises a Python error naming the argument.

The kernels trust their inputs (no bounds checks at run time), so every public entry point runs
these first.
"""
from __future__ import annotations

import math

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_tensor(
    t: object,
    name: str,
    *,
    ndim: int | None = None,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.layout != torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {t.layout}")
    if t.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating tensor (float16, bfloat16, float32 or float64), got {t.dtype}")
    if ndim is not None and t.dim() != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    if device is not None and t.device != device:
        raise ValueError(f"{name} is on {t.device} but the input is on {device}; all tensors must share a device")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f"{name} has dtype {t.dtype} but the input has {dtype}; pass tensors of one dtype")
    return t


def autocast_to(x: torch.Tensor, *tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """(x, *tensors) as an autocast region would pass them to a conv: float16/bfloat16/float32 tensors
    in the region's dtype, everything else (float64, None, any tensor outside a region) unchanged.

    Inside ``torch.autocast`` a bf16 activation next to a float32 parameter is the normal case; the
    fused ops that hold a conv (or take its output) follow nn.Conv2d there instead of refusing the
    mix of dtypes. Gradients flow back through the casts in each tensor's own dtype.
    """
    device_type = x.device.type
    try:
        enabled = torch.is_autocast_enabled(device_type)
    except RuntimeError:  # a device type autocast does not know (meta): never inside a region
        enabled = False
    if not enabled:
        return (x, *tensors)
    dtype = torch.get_autocast_dtype(device_type)
    castable = (torch.float16, torch.bfloat16, torch.float32)
    return tuple(t.to(dtype) if isinstance(t, torch.Tensor) and t.dtype in castable else t for t in (x, *tensors))


def check_optional(
    t: object,
    name: str,
    shape: tuple[int, ...],
    *,
    device: torch.device,
    dtype: torch.dtype | None = None,
) -> torch.Tensor | None:
    if t is None:
        return None
    t = check_tensor(t, name, device=device, dtype=dtype)
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(t.shape)}")
    return t


def check_positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def check_finite(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """channels_last when the 4-D tensor is laid out that way (and not also plain contiguous)."""
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def dense_or_none(t: torch.Tensor | None) -> torch.Tensor | None:
    """``t`` contiguous (a copy only if it is a strided view), or None: the kernels index the small
    per-channel and per-sample operands densely."""
    return t.contiguous() if t is not None else None


def _dense_strides(shape: torch.Size, memory_format: torch.memory_format) -> tuple[int, ...]:
    N, C, H, W = shape
    if memory_format == torch.channels_last:
        return (H * W * C, 1, W * C, C)
    return (C * H * W, H * W, W, 1)


def as_kernel_layout(x: torch.Tensor) -> torch.Tensor:
    """A 4-D tensor the kernels can index: NCHW-contiguous or channels_last, preserving which,
    with exactly that layout's strides.

    torch calls a tensor contiguous whatever the strides of its size-1 dimensions are (a transposed
    (N, C, 1, W) tensor has stride W on its last, size-1 dimension), but the Triton kernels step
    through a plane with the last dimension's stride: such a tensor is re-viewed (no copy) with the
    canonical strides.
    """
    if x.is_contiguous():
        if x.stride() != _dense_strides(x.shape, torch.contiguous_format):
            x = x.view(-1).view(x.shape)
        return x
    if x.is_contiguous(memory_format=torch.channels_last):
        if x.stride() != _dense_strides(x.shape, torch.channels_last):
            N, C, H, W = x.shape
            x = x.permute(0, 2, 3, 1).reshape(-1).view(N, H, W, C).permute(0, 3, 1, 2)
        return x
    return x.contiguous()


def like_layout(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``t`` with exactly the strides of ``ref`` (same shape), copying only when they differ.

    The kernels index every same-shaped operand with one set of strides, so they must agree even
    on size-1 dimensions, where "contiguous" and "channels_last" can disagree.
    """
    if t.stride() == ref.stride():
        return t
    return torch.empty_like(ref, dtype=t.dtype).copy_(t)
