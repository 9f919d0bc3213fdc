"""Map-style datasets over sources: labelled (image, label) and unpaired (A, B) items.

Each item's augmentation uses a generator seeded by (seed, epoch, stream, index),
and the unpaired B index comes from a permutation seeded by (seed, epoch): items
are reproducible given seed and epoch, whichever worker builds them.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from .epoch import SharedEpoch
from .seeding import check_seed, derive_seed, torch_generator
from .sources import ImageSource, LabelledSource
from .transforms import Transform


class EpochSeeded:
    """Seed + shared epoch, and the per-item augmentation generator built from them."""

    def __init__(self, seed: int, transform: Transform | None) -> None:
        if transform is not None and not isinstance(transform, Transform):
            raise TypeError(f"transform must be a Transform or None, got {type(transform).__name__}")
        self.seed = check_seed(seed)
        self.transform = transform
        self._epoch = SharedEpoch()

    @property
    def epoch(self) -> int:
        return self._epoch.get()

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation (and pairing) the items use; call before iterating."""
        self._epoch.set(epoch)

    def _augment(self, image: torch.Tensor, stream: str, index: int) -> torch.Tensor:
        if self.transform is None:
            return image
        if not self.transform.is_random:
            return self.transform(image)
        return self.transform(image, torch_generator(self.seed, "augment", self.epoch, stream, index))


class LabelledDataset(EpochSeeded, Dataset):
    """Items ``(image, label)`` from a labelled source, augmented by ``transform``."""

    def __init__(self, source: LabelledSource, *, transform: Transform | None = None, seed: int = 0) -> None:
        if not isinstance(source, LabelledSource):
            raise TypeError(f"source must provide item() and classes, got {type(source).__name__}")
        super().__init__(seed, transform)
        self.source = source
        self.classes = tuple(source.classes)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.source.item(index)
        return self._augment(image, "image", index), label


class UnpairedDataset(EpochSeeded, Dataset):
    """Items ``dict(A, B, A_index, B_index)`` from two unaligned domains.

    Item ``i`` holds A image ``i % len(A)`` and B image ``perm[i % len(B)]``, where ``perm``
    is a random permutation of the B indices drawn afresh for each epoch (so pairings
    change every epoch, as in the reference's ``serial_batches=False``, but every B image
    still appears once per ``len(B)`` items). Length is ``max(len(A), len(B))``.
    """

    def __init__(self, source_a: ImageSource, source_b: ImageSource, *, transform: Transform | None = None,
                 seed: int = 0) -> None:
        for name, source in (("source_a", source_a), ("source_b", source_b)):
            if not isinstance(source, ImageSource):
                raise TypeError(f"{name} must provide image() and __len__, got {type(source).__name__}")
            if len(source) == 0:
                raise ValueError(f"{name} is empty")
        super().__init__(seed, transform)
        self.source_a, self.source_b = source_a, source_b
        self._perm_epoch: int | None = None
        self._perm: torch.Tensor | None = None

    def __len__(self) -> int:
        return max(len(self.source_a), len(self.source_b))

    def b_index(self, index: int) -> int:
        """The B image paired with item ``index`` in the current epoch."""
        epoch = self.epoch
        if self._perm_epoch != epoch:  # cached per process; rebuilt when the epoch changes
            generator = torch.Generator().manual_seed(derive_seed(self.seed, "pairing", epoch))
            self._perm = torch.randperm(len(self.source_b), generator=generator)
            self._perm_epoch = epoch
        return int(self._perm[index % len(self.source_b)])

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        a_index, b_index = index % len(self.source_a), self.b_index(index)
        return {
            "A": self._augment(self.source_a.image(a_index), "A", index),
            "B": self._augment(self.source_b.image(b_index), "B", index),
            "A_index": a_index,
            "B_index": b_index,
        }
