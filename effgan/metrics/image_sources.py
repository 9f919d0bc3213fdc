"""Turn the ways effgan hands over images into one (N, C, H, W) tensor.

The metrics accept a tensor, an effgan.data image source (an object with
`image(i)` and `__len__`, optionally `label(i)`), a map-style dataset whose items are
tensors, (image, label) pairs or dicts, or any iterable of such batches (a DataLoader).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

IMAGE_KEYS = ("image", "images", "img", "x")
LABEL_KEYS = ("label", "labels", "target", "y")


def _split_item(item, image_key: str | None):
    """(images, labels or None) from one dataset item or loader batch."""
    if isinstance(item, torch.Tensor):
        return item, None
    if isinstance(item, Mapping):
        keys = (image_key,) if image_key is not None else IMAGE_KEYS
        image = next((item[k] for k in keys if k in item), None)
        if image is None:
            raise ValueError(f"dict item has none of the image keys {keys}: {sorted(item)}")
        label = next((item[k] for k in LABEL_KEYS if k in item), None)
        return image, label
    if isinstance(item, (tuple, list)) and len(item) >= 1 and isinstance(item[0], torch.Tensor):
        return item[0], (item[1] if len(item) > 1 else None)
    raise TypeError(f"cannot read images from an item of type {type(item).__name__}")


def collect_images(source, *, max_items: int | None = None, image_key: str | None = None,
                   with_labels: bool = False):
    """The first `max_items` images of `source` as a float (N, C, H, W) tensor (and (N,) labels).

    `image_key` picks the dict entry to read (e.g. "A" or "B" for an unpaired batch).
    With with_labels=True returns (images, labels) and raises ValueError when the
    source carries no labels.
    """
    if max_items is not None and (not isinstance(max_items, int) or max_items < 1):
        raise ValueError(f"max_items must be a positive int or None, got {max_items!r}")
    images: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    count = 0

    def add(image, label, batched: bool) -> None:
        nonlocal count
        image = torch.as_tensor(image)
        if not batched:
            image = image.unsqueeze(0)
            label = None if label is None else torch.as_tensor(label).reshape(1)
        take = image.shape[0] if max_items is None else min(image.shape[0], max_items - count)
        images.append(image[:take].float().cpu())
        if label is not None:
            labels.append(torch.as_tensor(label)[:take].long().cpu())
        count += take

    if isinstance(source, torch.Tensor):
        add(source, None, batched=True)
    elif hasattr(source, "image") and hasattr(source, "__len__"):
        n = len(source) if max_items is None else min(len(source), max_items)
        has_label = hasattr(source, "label")
        for i in range(n):
            add(source.image(i), source.label(i) if has_label else None, batched=False)
    elif hasattr(source, "__getitem__") and hasattr(source, "__len__"):
        n = len(source) if max_items is None else min(len(source), max_items)
        for i in range(n):
            add(*_split_item(source[i], image_key), batched=False)
    elif isinstance(source, Iterable):
        for batch in source:
            if max_items is not None and count >= max_items:
                break
            add(*_split_item(batch, image_key), batched=True)
    else:
        raise TypeError(f"source of type {type(source).__name__} holds no images")

    if not images or sum(image.shape[0] for image in images) == 0:
        raise ValueError("source holds no images")
    stacked = torch.cat(images)
    if stacked.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W) once stacked, got shape {tuple(stacked.shape)}")
    if not with_labels:
        return stacked
    if len(labels) != len(images):
        raise ValueError("source carries no labels (or only some items have them)")
    return stacked, torch.cat(labels)
