"""Instance norm with a fused activation and residual add, as drop-in nn.InstanceNorm2d subclasses.

``FusedInstanceNorm2d`` runs the fused op; ``InstanceNormAct`` runs the same computation with
plain torch (F.instance_norm + activation + add) and is the eager baseline. Both take
nn.InstanceNorm2d's constructor arguments plus ``act``/``negative_slope``, and both have exactly
nn.InstanceNorm2d's state_dict, so weights move freely between the three.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from effgan._backend import IMPLS
from effgan.ops._activation import act_code, apply_act_ref
from effgan.ops._checks import check_finite, check_positive
from effgan.ops._instance_norm_grad_layout import guard_single_sample_grad
from effgan.ops.instance_norm_act import instance_norm_act


class _InstanceNormActBase(nn.InstanceNorm2d):
    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device=None,
        dtype=None,
        *,
        bias: bool = True,
        act: str = "identity",
        negative_slope: float = 0.01,
    ) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        eps = check_positive(eps, "eps")
        negative_slope = check_finite(negative_slope, "negative_slope")
        act_code(act)
        # bias=False (affine weight only) is handled here rather than passed on: torch's own
        # InstanceNorm2d takes it only since recent releases.
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype)
        self.has_bias = bool(bias)
        if affine and not bias:
            self.register_parameter("bias", None)
        self.act = act
        self.negative_slope = negative_slope

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() not in (3, 4):
            raise ValueError(f"input must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[-3] != self.num_features:
            raise ValueError(
                f"input has {x.shape[-3]} channels but {type(self).__name__} expects num_features={self.num_features}"
            )

    def _eager(self, x: torch.Tensor, residual: Optional[torch.Tensor]) -> torch.Tensor:
        y = apply_act_ref(guard_single_sample_grad(super().forward(x)), self.act, self.negative_slope)
        return y if residual is None else y + residual

    def extra_repr(self) -> str:
        s = super().extra_repr()
        if self.affine and not getattr(self, "has_bias", True) and "bias=" not in s:
            s = s.replace(f"affine={self.affine}", f"affine={self.affine}, bias=False")
        s += f", act={self.act}"
        if self.act == "leaky_relu":
            s += f", negative_slope={self.negative_slope}"
        return s


class InstanceNormAct(_InstanceNormActBase):
    """``act(InstanceNorm2d(x)) + residual`` in plain torch: the eager baseline."""

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        self._check_input(x)
        return self._eager(x, residual)


class FusedInstanceNorm2d(_InstanceNormActBase):
    """nn.InstanceNorm2d with the activation and an optional residual add fused into one kernel.

    ``impl`` picks the backend per call ("auto", "triton", "cpp", "ref"). With
    ``track_running_stats=True`` the layer needs running statistics (and their update), which the
    fused op does not compute, so it runs the eager composite instead.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = False, track_running_stats: bool = False, device=None, dtype=None,
                 *, bias: bool = True, act: str = "identity", negative_slope: float = 0.01,
                 impl: str = "auto") -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device, dtype,
                         bias=bias, act=act, negative_slope=negative_slope)
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.impl = impl

    def forward(self, x: torch.Tensor, residual: Optional[torch.Tensor] = None) -> torch.Tensor:
        self._check_input(x)
        if self.track_running_stats:
            return self._eager(x, residual)
        if x.shape[-1] * x.shape[-2] == 1:
            # what nn.InstanceNorm2d raises: a 1x1 plane normalises to zeros, which is never intended
            raise ValueError(f"Expected more than 1 spatial element when training, got input size {tuple(x.shape)}")
        if residual is not None and isinstance(residual, torch.Tensor) and residual.dtype != x.dtype \
                and residual.is_floating_point() and x.is_floating_point():
            # as `y + residual` promotes in InstanceNormAct (e.g. a bf16 conv output under autocast
            # beside a float32 block input): both go to the wider dtype, which the op requires
            common = torch.promote_types(x.dtype, residual.dtype)
            x, residual = x.to(common), residual.to(common)
        unbatched = x.dim() == 3
        if unbatched:
            if isinstance(residual, torch.Tensor):
                if residual.shape != x.shape:  # checked here: the op would name the batched shapes
                    raise ValueError(f"residual must have x's shape {tuple(x.shape)}, got {tuple(residual.shape)}")
                residual = residual.unsqueeze(0)
            x = x.unsqueeze(0)
        y = instance_norm_act(x, self.weight, self.bias, residual, eps=self.eps, act=self.act,
                              negative_slope=self.negative_slope, impl=self.impl)
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return super().extra_repr() + f", impl={self.impl}"
