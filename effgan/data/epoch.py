"""An epoch counter shared with DataLoader worker processes.

Datasets whose items depend on the epoch (the unpaired B permutation, per-epoch
augmentation) keep the epoch here. The value lives in a shared-memory tensor,
so ``set_epoch`` on the dataset in the main process is seen by workers that
were started earlier (``persistent_workers=True`` keeps them alive across
epochs, and they hold their own copy of the dataset object).
"""

from __future__ import annotations

import torch


class SharedEpoch:
    """An integer epoch readable from worker processes after it changes."""

    def __init__(self, epoch: int = 0) -> None:
        self._value = torch.zeros((), dtype=torch.int64).share_memory_()
        self.set(epoch)

    def get(self) -> int:
        return int(self._value.item())

    def set(self, epoch: int) -> None:
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise TypeError(f"epoch must be an int, got {type(epoch).__name__}")
        if epoch < 0:
            raise ValueError(f"epoch must be non-negative, got {epoch}")
        self._value.fill_(epoch)
