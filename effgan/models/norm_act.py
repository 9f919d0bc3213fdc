"""Norm + activation layer factories, the building block every effgan generator is made of.

A model receives one *norm layer factory* (``norm_layer=``) and calls it as
``norm_layer(num_features, act=..., negative_slope=...)``. Every module it returns computes
``act(norm(x)) + residual`` in ``forward(x, residual=None)``, so the activation (and a
ResNet block's residual add) lives inside the norm module. That is what lets
``effgan.nn.FusedInstanceNorm2d`` do norm, activation and residual in one kernel, while the
plain build (``effgan.nn.InstanceNormAct``) has exactly the same modules and state_dict.

Factories are small frozen dataclasses rather than bare callables because a network also needs
to know whether the convolution before the norm should carry a bias (the reference networks
drop it before batch norm, whose shift makes it redundant, and keep it before instance norm).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = ("identity", "relu", "leaky_relu", "silu", "tanh")
IMPLS = ("auto", "triton", "cpp", "ref")


def check_act(act: str, arg_name: str = "act") -> str:
    if not isinstance(act, str) or act not in ACTIVATIONS:
        raise ValueError(f"{arg_name} must be one of {ACTIVATIONS}, got {act!r}")
    return act


def check_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    return impl


def apply_act(x: torch.Tensor, act: str, negative_slope: float = 0.01) -> torch.Tensor:
    """The activation named ``act`` in plain torch (names as in docs/DESIGN.md)."""
    if act == "identity":
        return x
    if act == "relu":
        return F.relu(x)
    if act == "leaky_relu":
        return F.leaky_relu(x, negative_slope)
    if act == "silu":
        return F.silu(x)
    if act == "tanh":
        return torch.tanh(x)
    raise ValueError(f"act must be one of {ACTIVATIONS}, got {act!r}")


class Act(nn.Module):
    """A parameter-free activation with the norm modules' ``forward(x, residual=None)``."""

    def __init__(self, act: str = "identity", negative_slope: float = 0.01):
        super().__init__()
        self.act = check_act(act)
        self.negative_slope = float(negative_slope)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        y = apply_act(x, self.act, self.negative_slope)
        return y if residual is None else y + residual

    def extra_repr(self) -> str:
        slope = f", negative_slope={self.negative_slope}" if self.act == "leaky_relu" else ""
        return f"act={self.act!r}{slope}"


class BatchNormAct2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same state_dict) followed by an activation and an optional residual."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, *,
                 act: str = "identity", negative_slope: float = 0.01):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.act = check_act(act)
        self.negative_slope = float(negative_slope)

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        y = apply_act(super().forward(x), self.act, self.negative_slope)
        return y if residual is None else y + residual

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, act={self.act!r}"


@dataclass(frozen=True)
class InstanceNormLayer:
    """Instance norm (the CycleGAN / pix2pix choice); conv layers before it keep their bias.

    ``fused=True`` builds ``effgan.nn.FusedInstanceNorm2d`` (with ``impl``), ``fused=False``
    the plain-torch ``effgan.nn.InstanceNormAct``; both have the same state_dict.
    """

    fused: bool = True
    impl: str = "auto"
    affine: bool = False
    eps: float = 1e-5

    def __post_init__(self):
        check_impl(self.impl)

    @property
    def conv_bias(self) -> bool:
        return True

    def __call__(self, num_features: int, *, act: str = "identity",
                 negative_slope: float = 0.01) -> nn.Module:
        check_act(act)
        # Imported here so that importing effgan.models never depends on the nn backends.
        from effgan import nn as effnn

        if self.fused:
            return effnn.FusedInstanceNorm2d(num_features, eps=self.eps, affine=self.affine,
                                             act=act, negative_slope=negative_slope,
                                             impl=self.impl)
        return effnn.InstanceNormAct(num_features, eps=self.eps, affine=self.affine, act=act,
                                     negative_slope=negative_slope)


@dataclass(frozen=True)
class BatchNormLayer:
    """Batch norm (DCGAN); the conv before it has no bias since the norm's shift replaces it."""

    eps: float = 1e-5
    momentum: float = 0.1

    @property
    def conv_bias(self) -> bool:
        return False

    def __call__(self, num_features: int, *, act: str = "identity",
                 negative_slope: float = 0.01) -> nn.Module:
        return BatchNormAct2d(num_features, eps=self.eps, momentum=self.momentum, act=act,
                              negative_slope=negative_slope)


@dataclass(frozen=True)
class NoNormLayer:
    """No normalisation, only the activation."""

    @property
    def conv_bias(self) -> bool:
        return True

    def __call__(self, num_features: int, *, act: str = "identity",
                 negative_slope: float = 0.01) -> nn.Module:
        return Act(act, negative_slope)


NormLayer = InstanceNormLayer | BatchNormLayer | NoNormLayer


def resolve_norm_layer(norm_layer, *, fused: bool, impl: str, default=None):
    """``norm_layer`` if given, else ``default`` (instance norm built as ``fused``/``impl`` say)."""
    check_impl(impl)
    if not isinstance(fused, bool):
        raise TypeError(f"fused must be a bool, got {type(fused).__name__}")
    if norm_layer is None:
        return default if default is not None else InstanceNormLayer(fused=fused, impl=impl)
    if not callable(norm_layer) or not hasattr(norm_layer, "conv_bias"):
        raise TypeError("norm_layer must be a norm layer factory such as "
                        "effgan.models.InstanceNormLayer(), BatchNormLayer() or NoNormLayer(); "
                        f"got {norm_layer!r}")
    if isinstance(norm_layer, InstanceNormLayer) and (norm_layer.fused, norm_layer.impl) != (fused, impl):
        # One build setting for the whole model: an instance norm factory left at its defaults takes
        # the model's; one that says otherwise would build its norms one way and the model's other
        # fused layers (MBConv, the stem) another.
        if (norm_layer.fused, norm_layer.impl) == (True, "auto"):
            return replace(norm_layer, fused=fused, impl=impl)
        raise ValueError(f"norm_layer={norm_layer!r} disagrees with the model's fused={fused}, impl={impl!r}: "
                         f"pass fused={norm_layer.fused}, impl={norm_layer.impl!r} to the model instead (it "
                         "builds every layer that way)")
    return norm_layer


def check_positive_int(value, arg_name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{arg_name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{arg_name} must be >= {minimum}, got {value}")
    return value


def check_image_sides(x: torch.Tensor, multiple: int, minimum: int = 1, channels: int | None = None) -> None:
    """x must be (N, C, H, W) with C = ``channels`` (the network's in_channels) and H and W multiples
    of ``multiple`` and at least ``minimum``: a generator whose strided convs round other sides
    returns an image of another size."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if channels is not None and x.dim() == 4 and x.shape[1] != channels:
        raise ValueError(f"x has {x.shape[1]} channels but the network was built with in_channels={channels}, "
                         f"got shape {tuple(x.shape)}")
    if x.dim() != 4 or x.shape[-1] % multiple or x.shape[-2] % multiple or min(x.shape[-2:]) < minimum:
        at_least = f" and at least {minimum}" if minimum > multiple else ""
        raise ValueError(f"x must be (N, C, H, W) with H and W multiples of {multiple}{at_least}, "
                         f"got shape {tuple(x.shape)}")


def check_probability(value, arg_name: str, *, allow_one: bool = False) -> float:
    """A dropout-style rate in [0, 1), or a probability in [0, 1] when ``allow_one``."""
    ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
    in_range = ok_type and (0.0 <= value <= 1.0 if allow_one else 0.0 <= value < 1.0)
    if not in_range:
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise ValueError(f"{arg_name} must be a float in {interval}, got {value!r}")
    return float(value)
