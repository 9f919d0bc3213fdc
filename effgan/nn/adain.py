"""AdaIN: the StyleGAN synthesis-layer epilogue as a module (noise, bias, activation, norm, style).

The style affine maps a latent ``w`` (N, w_dim) to per-sample (scale, bias) pairs. Its output is
used as the scale directly (not ``1 + s``): the scale half of the affine's bias starts at 1 and the
bias half at 0, so a fresh layer is close to a plain instance norm, as in StyleGAN's style
modulation. Parameters and state_dict keys: ``style.weight`` (2C, w_dim), ``style.bias`` (2C,),
``noise_weight`` (C,) (absent with ``noise=False``), ``bias`` (C,); the latter two start at zero.

``equalized_lr=True`` makes the style affine an equalized-learning-rate layer, as StyleGAN's affine
A is: its weights are stored N(0, 1) and multiplied by 1 / sqrt(w_dim) at every call, so Adam moves
it at the same relative speed as the generator's other equalized layers (a plain nn.Linear moves
about sqrt(w_dim) times faster), and ``init_weights`` leaves it alone. The state_dict is the same.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from effgan._backend import IMPLS
from effgan.ops._activation import act_code
from effgan.ops._checks import check_finite, check_positive
from effgan.ops.adain import adain


def _check_positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


class StyleAffine(nn.Linear):
    """AdaIN's style layer: a linear map from w to (scale, shift). With ``equalized_lr`` its
    N(0, 1) weight is scaled by 1 / sqrt(in_features) at every call (init_weights then leaves it
    alone). A module of its own, so that forward hooks (effgan.models.count_flops) see the call."""

    def __init__(self, in_features: int, out_features: int, *, equalized_lr: bool, device=None, dtype=None):
        super().__init__(in_features, out_features, device=device, dtype=dtype)
        self.equalized_lr = equalized_lr

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.equalized_lr:
            return F.linear(w, self.weight * (1.0 / math.sqrt(self.in_features)), self.bias)
        return super().forward(w)


class AdaIN(nn.Module):
    """``instance_norm(act(x + noise * noise_weight + bias)) * scale(w) + shift(w)`` in one fused op.

    ``forward(x, w, noise=None, generator=None)``: x (N, C, H, W), w (N, w_dim). With ``noise=True``
    and no ``noise`` given, a fresh (N, 1, H, W) standard-normal image per sample is drawn on x's
    device (from ``generator`` when one is passed); a given floating-point ``noise`` is taken in x's
    dtype. ``impl`` picks the backend per call.
    """

    def __init__(
        self,
        num_features: int,
        w_dim: int,
        *,
        eps: float = 1e-5,
        noise: bool = True,
        act: str = "leaky_relu",
        negative_slope: float = 0.2,
        impl: str = "auto",
        equalized_lr: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.num_features = _check_positive_int(num_features, "num_features")
        self.w_dim = _check_positive_int(w_dim, "w_dim")
        self.eps = check_positive(eps, "eps")
        act_code(act)
        if not isinstance(impl, str) or impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.act = act
        self.negative_slope = check_finite(negative_slope, "negative_slope")
        self.impl = impl
        if not isinstance(equalized_lr, bool):
            raise TypeError(f"equalized_lr must be a bool, got {type(equalized_lr).__name__}")
        self.equalized_lr = equalized_lr
        if not isinstance(noise, bool):
            raise TypeError(f"noise must be a bool (a noise image goes to forward), got {type(noise).__name__}")
        factory = dict(device=device, dtype=dtype)
        self.style = StyleAffine(w_dim, 2 * num_features, equalized_lr=equalized_lr, **factory)
        if noise:
            self.noise_weight = nn.Parameter(torch.empty(num_features, **factory))
        else:
            self.register_parameter("noise_weight", None)
        self.bias = nn.Parameter(torch.empty(num_features, **factory))
        self.reset_parameters()

    @property
    def has_noise(self) -> bool:
        return self.noise_weight is not None

    def reset_parameters(self) -> None:
        if self.equalized_lr:
            with torch.no_grad():
                self.style.weight.normal_(0.0, 1.0)
        else:
            self.style.reset_parameters()
        self.reset_style_bias()
        with torch.no_grad():
            if self.noise_weight is not None:
                self.noise_weight.zero_()
            self.bias.zero_()

    def reset_style_bias(self) -> None:
        """Style scale 1 and shift 0 for a zero latent: a fresh layer is close to a plain instance norm.
        (effgan.models.init_weights calls it after initialising the style layer as a linear one.)"""
        with torch.no_grad():
            self.style.bias[: self.num_features].fill_(1.0)
            self.style.bias[self.num_features :].zero_()

    def styles(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(style_scale, style_bias), each (N, C), for latents ``w`` (N, w_dim)."""
        if not isinstance(w, torch.Tensor):
            raise TypeError(f"w must be a torch.Tensor, got {type(w).__name__}")
        if w.dim() != 2 or w.shape[1] != self.w_dim:
            raise ValueError(f"w must have shape (N, {self.w_dim}), got {tuple(w.shape)}")
        scale, shift = self.style(w).chunk(2, dim=1)
        return scale, shift

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise: Optional[torch.Tensor] = None,
        generator: Optional[torch.Generator] = None,
    ) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"x must have shape (N, {self.num_features}, H, W) (num_features={self.num_features}), "
                f"got {tuple(x.shape)}"
            )
        if not x.is_floating_point():  # checked before any noise is drawn in x's dtype
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
        if isinstance(w, torch.Tensor) and w.dim() == 2 and w.shape[0] != x.shape[0]:
            raise ValueError(f"w must have shape ({x.shape[0]}, {self.w_dim}): one style per sample of x, "
                             f"got {tuple(w.shape)}")
        if noise is not None and not self.has_noise:
            raise ValueError("noise was given but this AdaIN was built with noise=False")
        scale, shift = self.styles(w)
        if isinstance(noise, torch.Tensor) and noise.is_floating_point() and noise.dtype != x.dtype:
            # e.g. a fixed float32 noise image beside a bf16 conv output under autocast: the noise
            # is an input image of the layer, taken in x's dtype as the noise it draws itself is
            noise = noise.to(x.dtype)
        if self.has_noise and noise is None:
            N, _, H, W = x.shape
            noise = torch.randn((N, 1, H, W), generator=generator, device=x.device, dtype=x.dtype)
        return adain(x, scale, shift, noise, self.noise_weight if noise is not None else None, self.bias,
                     eps=self.eps, act=self.act, negative_slope=self.negative_slope, impl=self.impl)

    def extra_repr(self) -> str:
        s = f"{self.num_features}, w_dim={self.w_dim}, eps={self.eps}, noise={self.has_noise}, act={self.act}"
        if self.act == "leaky_relu":
            s += f", negative_slope={self.negative_slope}"
        if self.equalized_lr:
            s += ", equalized_lr=True"
        return s + f", impl={self.impl}"
