"""The cans test split: each item carries the ground-truth translations of its images."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from .cans import CansDomain, other_domain, render_scene, to_tensor
from .datasets import EpochSeeded
from .seeding import derive_seed
from .transforms import Transform


class CansPairs(EpochSeeded, Dataset):
    """Items ``dict(A, B, A_true_B, B_true_A, A_index, B_index)``.

    ``A`` is scene ``i`` of the A stream with a red can and ``A_true_B`` the same scene with
    a blue can; ``B`` / ``B_true_A`` likewise from the B stream. A random ``transform`` is
    applied with the same draw to an image and its translation, so they stay aligned.
    """

    def __init__(self, *, split: str = "test", size: int = 128, length: int = 200, seed: int = 0,
                 transform: Transform | None = None) -> None:
        super().__init__(seed, transform)
        self.domain_a = CansDomain("A", split=split, size=size, length=length, seed=seed)
        self.domain_b = CansDomain("B", split=split, size=size, length=length, seed=seed)
        self.size = size

    def __len__(self) -> int:
        return len(self.domain_a)

    def masks(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The can coverage (H, W) in [0, 1] of item ``index``'s A scene and B scene."""
        _, alpha_a = render_scene(self.domain_a.scene(index), "A", self.size)
        _, alpha_b = render_scene(self.domain_b.scene(index), "B", self.size)
        return torch.from_numpy(alpha_a), torch.from_numpy(alpha_b)

    def _pair(self, domains: CansDomain, index: int, stream: str) -> tuple[torch.Tensor, torch.Tensor]:
        scene = domains.scene(index)
        own = to_tensor(render_scene(scene, domains.domain, self.size)[0])
        other = to_tensor(render_scene(scene, other_domain(domains.domain), self.size)[0])
        if self.transform is None:
            return own, other
        if not self.transform.is_random:
            return self.transform(own), self.transform(other)
        seed = derive_seed(self.seed, "augment", self.epoch, stream, index)
        # Two generators with one seed: both images get identical crop/flip/rotation.
        return (self.transform(own, torch.Generator().manual_seed(seed)),
                self.transform(other, torch.Generator().manual_seed(seed)))

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        a, a_true_b = self._pair(self.domain_a, index, "A")
        b, b_true_a = self._pair(self.domain_b, index, "B")
        return {"A": a, "B": b, "A_true_B": a_true_b, "B_true_A": b_true_a, "A_index": index, "B_index": index}
