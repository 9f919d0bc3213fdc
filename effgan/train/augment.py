"""DiffAugment (Zhao et al., 2020) of every image a discriminator sees, shared by all families.

With ``--diffaugment POLICY`` each family passes real and fake images through the same policy
before D, in the D update and in G's adversarial term alike: D then never sees an un-augmented
image (so it cannot tell real from fake by the augmentation) and, the transform being
differentiable, G still gets its gradients through it. Every call draws fresh per-sample
parameters from torch's global RNG, which checkpoints save, so a resumed run draws the same
augmentations as the uninterrupted one.
"""
from __future__ import annotations

import torch

from effgan.ops import diff_augment
from effgan.train.config import TrainConfig


class DiscriminatorAugment:
    """``augment(images)``: the config's DiffAugment policy, or the images unchanged when it is ''."""

    def __init__(self, policy: str, impl: str) -> None:
        self.policy = policy
        self.impl = impl
        self._op = diff_augment if policy else None

    @property
    def enabled(self) -> bool:
        return bool(self.policy)

    def __call__(self, images: torch.Tensor, *, double_backward: bool = False) -> torch.Tensor:
        """double_backward: the caller differentiates a gradient through this call (R1 on real
        images), which only the reference implementation supports; the fused kernels refuse it."""
        if self._op is None:
            return images
        return self._op(images, self.policy, None, impl="ref" if double_backward else self.impl)


def make_d_augment(config: TrainConfig) -> DiscriminatorAugment:
    # --no-fused promises plain torch everywhere, the augmentation included
    return DiscriminatorAugment(config.diffaugment, config.impl if config.fused else "ref")
