"""Learning-rate schedules: constant for ``epochs`` epochs, then a decay over ``epochs_decay``.

The multiplier is a small callable dataclass rather than a closure so that ``LambdaLR`` stores its
fields (primitives) in the scheduler's state_dict, which keeps checkpoints loadable with
``weights_only=True``. Schedulers step once per epoch, as in the reference CycleGAN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

POLICIES = ("linear", "step", "cosine", "constant")


@dataclass(frozen=True)
class LRMultiplier:
    policy: str
    epochs: int
    epochs_decay: int
    step_epochs: int = 1

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {list(POLICIES)}, got {self.policy!r}")
        if self.epochs < 0 or self.epochs_decay < 0:
            raise ValueError("epochs and epochs_decay must be >= 0")
        if self.step_epochs < 1:
            raise ValueError(f"step_epochs must be >= 1, got {self.step_epochs}")

    def __call__(self, epoch: int) -> float:
        """Multiplier of the base lr for the epoch that follows ``epoch`` completed epochs."""
        # same offset as the reference: the first decayed epoch already has a lower lr
        into_decay = max(0, epoch + 1 - self.epochs)
        if self.policy == "constant" or self.epochs_decay == 0:
            return 1.0
        if self.policy == "linear":
            return max(0.0, 1.0 - into_decay / float(self.epochs_decay + 1))
        if self.policy == "cosine":
            t = min(1.0, into_decay / float(self.epochs_decay + 1))
            return 0.5 * (1.0 + math.cos(math.pi * t))
        # step: the same offset, then groups of step_epochs decay epochs at 0.1, 0.01, ...
        return 0.1 ** -(-into_decay // self.step_epochs)


def make_scheduler(optimizer: torch.optim.Optimizer, multiplier: LRMultiplier) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=multiplier)
