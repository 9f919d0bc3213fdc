"""Squeeze-and-excitation: x * sigmoid(expand(act(reduce(mean_hw(x))))), as in EfficientNet.

``fused=True`` runs the two 1x1 convolutions as matmuls on the (N, C) squeeze and the rescale as
the ``se_scale`` op; it also accepts a squeeze computed upstream (``dwconv_norm_act`` returns one),
which saves a full read of x. ``fused=False`` is plain torch (mean, Conv2d, activation module,
torch.sigmoid, multiply). Both builds have the same state_dict: ``reduce.{weight,bias}`` and
``expand.{weight,bias}``, the 1x1 convolutions' parameters.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from effgan._backend import IMPLS
from effgan.ops._activation import act_module
from effgan.ops.se_scale import se_scale


def check_channels(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def check_impl(impl: object) -> str:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    return impl


class SqueezeExcite(nn.Module):
    """Channel gating from the spatial mean: reduce 1x1 conv (bias) -> act -> expand 1x1 conv (bias) -> sigmoid."""

    def __init__(self, channels: int, reduced_channels: int, *, act: str = "silu", impl: str = "auto",
                 fused: bool = True) -> None:
        super().__init__()
        self.channels = check_channels(channels, "channels")
        self.reduced_channels = check_channels(reduced_channels, "reduced_channels")
        self.reduce = nn.Conv2d(channels, reduced_channels, 1, bias=True)
        self.act = act_module(act)
        self.expand = nn.Conv2d(reduced_channels, channels, 1, bias=True)
        self.act_name = act
        self.impl = check_impl(impl)
        self.fused = bool(fused)

    def gate(self, squeeze: torch.Tensor) -> torch.Tensor:
        """The (N, C) pre-sigmoid logits for a squeeze (N, C): the MLP as two matmuls."""
        h = self.act(F.linear(squeeze, self.reduce.weight.flatten(1), self.reduce.bias))
        return F.linear(h, self.expand.weight.flatten(1), self.expand.bias)

    def forward(self, x: torch.Tensor, squeeze: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Rescale x (N, C, H, W); ``squeeze`` may pass x.mean((2, 3)) when it is already known."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.channels:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"input must be (N, {self.channels}, H, W), got {shape}")
        if not self.fused:
            s = x.mean(dim=(2, 3), keepdim=True)
            return x * torch.sigmoid(self.expand(self.act(self.reduce(s))))
        if squeeze is None:
            squeeze = x.mean(dim=(2, 3))
        elif not isinstance(squeeze, torch.Tensor) or tuple(squeeze.shape) != tuple(x.shape[:2]):
            shape = tuple(squeeze.shape) if isinstance(squeeze, torch.Tensor) else type(squeeze).__name__
            raise ValueError(f"squeeze must be x.mean((2, 3)) of shape {tuple(x.shape[:2])}, got {shape}")
        return se_scale(x, self.gate(squeeze), impl=self.impl)

    def extra_repr(self) -> str:
        return f"{self.channels}, {self.reduced_channels}, act={self.act_name}, fused={self.fused}, impl={self.impl}"
