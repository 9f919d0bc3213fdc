"""The step losses summed over a window of steps (between two log lines, or two checkpoints)."""
from __future__ import annotations

import torch


class LossWindow:
    """Sums kept on the device (no host sync per step) and their means when the window closes.

    A loss reported on some steps only (StyleGAN's lazy r1) is averaged over the steps that
    reported it, not over the whole window.
    """

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.seen: dict[str, int] = {}
        self.steps = 0

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums[k] + v.float() if k in self.sums else v.float().clone()
            self.seen[k] = self.seen.get(k, 0) + 1
        self.steps += 1

    def means(self) -> dict[str, float]:
        return {k: float(v.item()) / self.seen[k] for k, v in self.sums.items()}

    def close(self) -> dict[str, float]:
        """The window's means; the window starts again empty."""
        means = self.means()
        self.sums, self.seen, self.steps = {}, {}, 0
        return means
