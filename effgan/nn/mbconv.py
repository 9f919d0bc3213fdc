"""EfficientNet blocks with instance norm: MBConv, DepthwiseSeparableConv, and their depthwise stage.

Every module takes ``fused``: ``True`` runs effgan's fused ops (``impl`` picks their backend),
``False`` builds the same computation from plain torch modules (nn.Conv2d, InstanceNormAct,
torch.sigmoid): the eager baseline. Both builds have identical state_dicts, so weights move
freely between them.

MBConv (fused build), one block:
    expand 1x1 conv -> FusedInstanceNorm2d(act)                  [skipped when expand_ratio == 1]
    dwconv_norm_act: depthwise conv -> IN -> act, plus the SE squeeze, in one op
    SE MLP on the (N, C) squeeze -> se_scale
    project 1x1 conv -> FusedInstanceNorm2d with the residual add fused in
    stochastic depth (drop_path) on the branch, before the residual add, while training
"""
from __future__ import annotations

import numbers

import torch
from torch import nn

from effgan.nn.instance_norm import FusedInstanceNorm2d, InstanceNormAct
from effgan.nn.squeeze_excite import SqueezeExcite, check_channels, check_impl
from effgan.ops._activation import act_code
from effgan.ops.dwconv_norm_act import KERNEL_SIZES, PADDING_MODES, STRIDES, dwconv_norm_act


def _norm(channels: int, eps: float, act: str, fused: bool, impl: str) -> nn.Module:
    if fused:
        return FusedInstanceNorm2d(channels, eps=eps, affine=True, act=act, impl=impl)
    return InstanceNormAct(channels, eps=eps, affine=True, act=act)


def _check_choice(value: object, name: str, allowed: tuple) -> None:
    if isinstance(value, bool) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _check_int_choice(value: object, name: str, allowed: tuple) -> int:
    """value as a plain int: a float such as 3.0 passes `in (3, 5)` but then fails inside nn.Conv2d
    (kernel_size) or at the first forward (stride) with an error that does not name it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return int(value)


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: zero whole samples with probability p and rescale the rest by 1/(1-p)."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask.div_(keep)


class DepthwiseConvNormAct(nn.Module):
    """Depthwise k x k conv (no bias, padding k//2) -> instance norm (affine) -> act; returns (y, y.mean((2, 3))).

    State: ``conv.weight`` (C, 1, k, k), ``norm.weight``/``norm.bias`` (C,). The fused build runs
    the ``dwconv_norm_act`` op, which also produces the squeeze in the same pass.
    """

    def __init__(self, channels: int, kernel_size: int = 3, stride: int = 1, *, act: str = "silu",
                 padding_mode: str = "zeros", eps: float = 1e-5, fused: bool = True, impl: str = "auto") -> None:
        super().__init__()
        check_channels(channels, "channels")
        kernel_size = _check_int_choice(kernel_size, "kernel_size", KERNEL_SIZES)
        stride = _check_int_choice(stride, "stride", STRIDES)
        _check_choice(padding_mode, "padding_mode", PADDING_MODES)
        act_code(act)
        self.conv = nn.Conv2d(channels, channels, kernel_size, stride, padding=kernel_size // 2, groups=channels,
                              bias=False, padding_mode=padding_mode)
        self.norm = _norm(channels, eps, act, fused, impl)
        self.fused = bool(fused)
        self.impl = check_impl(impl)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        channels = self.conv.in_channels
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"input must be (N, {channels}, H, W), got {shape}")
        if not self.fused:
            y = self.norm(self.conv(x))
            return y, y.mean(dim=(2, 3))
        k, s = self.conv.kernel_size[0], self.conv.stride[0]
        if ((x.shape[2] + 2 * (k // 2) - k) // s + 1) * ((x.shape[3] + 2 * (k // 2) - k) // s + 1) == 1:
            # what the plain build's instance norm raises: a 1x1 plane normalises to zeros
            raise ValueError(f"Expected more than 1 spatial element when training, got input size "
                             f"{(x.shape[0], channels, 1, 1)} (the conv's output for input {tuple(x.shape)})")
        return dwconv_norm_act(x, self.conv.weight, self.conv.bias, self.norm.weight, self.norm.bias,
                               stride=self.conv.stride[0], padding_mode=self.conv.padding_mode, eps=self.norm.eps,
                               act=self.norm.act, negative_slope=self.norm.negative_slope, impl=self.impl)

    def extra_repr(self) -> str:
        return f"fused={self.fused}, impl={self.impl}"


def _se_channels(in_channels: int, se_ratio: float) -> int:
    # EfficientNet sizes the SE bottleneck from the block's input channels, not the expanded ones.
    return max(1, int(in_channels * se_ratio))


def _check_ratio(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


class DepthwiseSeparableConv(nn.Module):
    """dw conv -> IN + act -> optional SE -> pointwise 1x1 conv -> IN (residual when stride 1 and in == out).

    State: ``dw.conv.weight``, ``dw.norm.{weight,bias}``, ``se.{reduce,expand}.{weight,bias}`` (when
    se_ratio > 0), ``project.weight``, ``project_norm.{weight,bias}``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, *,
                 act: str = "silu", padding_mode: str = "zeros", se_ratio: float = 0.0, eps: float = 1e-5,
                 fused: bool = True, impl: str = "auto") -> None:
        super().__init__()
        check_channels(in_channels, "in_channels")
        check_channels(out_channels, "out_channels")
        se_ratio = _check_ratio(se_ratio, "se_ratio")
        self.dw = DepthwiseConvNormAct(in_channels, kernel_size, stride, act=act, padding_mode=padding_mode, eps=eps,
                                       fused=fused, impl=impl)
        self.se = (SqueezeExcite(in_channels, _se_channels(in_channels, se_ratio), act=act, impl=impl, fused=fused)
                   if se_ratio > 0 else None)
        self.project = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.project_norm = _norm(out_channels, eps, "identity", fused, impl)
        self.has_residual = stride == 1 and in_channels == out_channels
        self.fused = bool(fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, squeeze = self.dw(x)
        if self.se is not None:
            h = self.se(h, squeeze)
        h = self.project(h)
        return self.project_norm(h, x) if self.has_residual else self.project_norm(h)


class MBConv(nn.Module):
    """EfficientNet's inverted-residual block with instance norm (see the module docstring).

    State: ``expand.weight`` and ``expand_norm.{weight,bias}`` (when expand_ratio != 1),
    ``dw.conv.weight``, ``dw.norm.{weight,bias}``, ``se.{reduce,expand}.{weight,bias}`` (when
    se_ratio > 0; the bottleneck is max(1, int(in_channels * se_ratio)) wide), ``project.weight``,
    ``project_norm.{weight,bias}``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 expand_ratio: int = 6, se_ratio: float = 0.25, *, act: str = "silu", padding_mode: str = "zeros",
                 drop_path: float = 0.0, eps: float = 1e-5, fused: bool = True, impl: str = "auto") -> None:
        super().__init__()
        check_channels(in_channels, "in_channels")
        check_channels(out_channels, "out_channels")
        check_channels(expand_ratio, "expand_ratio")
        se_ratio = _check_ratio(se_ratio, "se_ratio")
        if isinstance(drop_path, bool) or not isinstance(drop_path, (int, float)) or not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must be a number in [0, 1), got {drop_path!r}")
        mid = in_channels * expand_ratio
        if expand_ratio != 1:
            self.expand = nn.Conv2d(in_channels, mid, 1, bias=False)
            self.expand_norm = _norm(mid, eps, act, fused, impl)
        else:
            self.expand = self.expand_norm = None
        self.dw = DepthwiseConvNormAct(mid, kernel_size, stride, act=act, padding_mode=padding_mode, eps=eps,
                                       fused=fused, impl=impl)
        self.se = (SqueezeExcite(mid, _se_channels(in_channels, se_ratio), act=act, impl=impl, fused=fused)
                   if se_ratio > 0 else None)
        self.project = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.project_norm = _norm(out_channels, eps, "identity", fused, impl)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.has_residual = stride == 1 and in_channels == out_channels
        self.drop_path = float(drop_path)
        self.fused = bool(fused)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"input must be (N, {self.in_channels}, H, W), got {shape}")
        h = x
        if self.expand is not None:
            h = self.expand_norm(self.expand(h))
        h, squeeze = self.dw(h)
        if self.se is not None:
            h = self.se(h, squeeze)
        h = self.project(h)
        if not self.has_residual:
            return self.project_norm(h)
        if self.drop_path > 0.0 and self.training:
            # Samples are dropped from the branch only, so the add cannot happen inside the norm.
            return x + drop_path(self.project_norm(h), self.drop_path, True)
        return self.project_norm(h, x)

    def extra_repr(self) -> str:
        return f"drop_path={self.drop_path}, fused={self.fused}"
