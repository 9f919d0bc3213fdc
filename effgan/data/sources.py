"""The two small protocols the datasets are built from.

An *image source* produces un-augmented images by index; a *labelled source*
produces (image, label). Sources know nothing about epochs or augmentation;
the datasets in ``datasets.py`` add those.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class ImageSource(Protocol):
    def __len__(self) -> int: ...

    def image(self, index: int) -> torch.Tensor:
        """CHW float32 in [-1, 1]."""
        ...


@runtime_checkable
class LabelledSource(Protocol):
    classes: tuple[str, ...]

    def __len__(self) -> int: ...

    def item(self, index: int) -> tuple[torch.Tensor, int]:
        """(CHW float32 in [-1, 1], class label)."""
        ...


class LabelledDigits:
    """Adapts ``Digits`` (image + label by index) to the labelled-source protocol."""

    def __init__(self, digits) -> None:
        self.digits = digits
        self.classes = digits.classes

    def __len__(self) -> int:
        return len(self.digits)

    def item(self, index: int) -> tuple[torch.Tensor, int]:
        return self.digits.image(index), self.digits.label(index)
