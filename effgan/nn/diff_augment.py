"""DiffAugment as a module: the same random augmentation for real and fake images before the discriminator."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from effgan._backend import IMPLS
from effgan.ops.diff_augment import DiffAugmentParams, diff_augment, parse_policy


class DiffAugment(nn.Module):
    """``forward(x, generator=None, params=None)``: see :func:`effgan.ops.diff_augment`.

    Stateless (empty state_dict). Augmentation is applied in train and eval mode alike, since
    DiffAugment is part of the discriminator's objective rather than a train-time-only layer.
    """

    def __init__(self, policy: str = "color,translation,cutout", *, impl: str = "auto") -> None:
        super().__init__()
        parse_policy(policy)
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        self.policy = policy
        self.impl = impl

    def forward(self, x: torch.Tensor, generator: Optional[torch.Generator] = None, *,
                params: Optional[DiffAugmentParams] = None) -> torch.Tensor:
        return diff_augment(x, self.policy, generator, params=params, impl=self.impl)

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}, impl={self.impl}"
