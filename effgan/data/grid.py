"""Save batches of images in [-1, 1] as one PNG grid (real | fake | reconstruction sample sheets)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _as_batch(images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        parts = [images]
    elif isinstance(images, Sequence) and len(images) > 0 and all(isinstance(t, torch.Tensor) for t in images):
        parts = list(images)
    else:
        raise TypeError("images must be a tensor or a non-empty sequence of tensors")
    batches = []
    for part in parts:
        if part.dim() == 3:
            part = part[None]
        if part.dim() != 4:
            raise ValueError(f"images must be CHW or NCHW tensors, got shape {tuple(part.shape)}")
        batches.append(part.detach().float().cpu())
    shapes = {tuple(b.shape[1:]) for b in batches}
    channels = {s[0] for s in shapes}
    if len({s[1:] for s in shapes}) != 1:
        raise ValueError(f"all images must share one height and width, got {sorted(shapes)}")
    if not channels <= {1, 3}:
        raise ValueError(f"images must have 1 or 3 channels, got {sorted(channels)}")
    if channels == {1, 3}:  # mixed grayscale and colour: show grayscale as gray RGB
        batches = [b.expand(-1, 3, -1, -1) if b.shape[1] == 1 else b for b in batches]
    return torch.cat(batches)


def make_image_grid(images: torch.Tensor | Sequence[torch.Tensor], nrow: int = 8, padding: int = 2,
                    pad_value: float = 1.0) -> np.ndarray:
    """Tile images (values in [-1, 1]) row by row, ``nrow`` per row; returns HxWxC uint8.

    A sequence of batches is concatenated first, so ``[real, fake, rec]`` with
    ``nrow=len(real)`` gives one row per kind.
    """
    if isinstance(nrow, bool) or not isinstance(nrow, int) or nrow < 1:
        raise ValueError(f"nrow must be a positive int, got {nrow!r}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    batch = _as_batch(images)
    count, channels, height, width = batch.shape
    rows = -(-count // nrow)
    cols = min(nrow, count)
    pixels = ((batch.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    fill = round((min(max(pad_value, -1.0), 1.0) + 1) * 127.5)
    grid = np.full((rows * (height + padding) + padding, cols * (width + padding) + padding, channels), fill, np.uint8)
    for k in range(count):
        top = padding + (k // nrow) * (height + padding)
        left = padding + (k % nrow) * (width + padding)
        grid[top:top + height, left:left + width] = pixels[k]
    return grid


def save_image_grid(images: torch.Tensor | Sequence[torch.Tensor], path: str | Path, nrow: int = 8,
                    padding: int = 2, pad_value: float = 1.0) -> Path:
    """Write ``make_image_grid(images, nrow, padding, pad_value)`` to ``path`` as PNG; returns the path."""
    grid = make_image_grid(images, nrow, padding, pad_value)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path, format="PNG")
    return path
