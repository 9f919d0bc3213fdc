"""The "digits" dataset: labelled, MNIST-like 28x28 grayscale digits drawn from stroke skeletons.

Each digit 0-9 is a few polylines (lines, arcs, Bezier curves) in a unit box.
An item perturbs the skeleton (size, rotation, slant, shift, small per-point
wobble), then rasterises it as an anti-aliased stroke from the distance of
each pixel to the nearest segment. Transforming the skeleton rather than the
image keeps the stroke width independent of the glyph's scale.

Label of item ``i`` is ``i % 10`` (balanced); its style comes from a generator
seeded by (seed, split, i), so items are independent and reproducible.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .seeding import check_seed, numpy_rng

NUM_CLASSES = 10
# Bump when a change to the glyphs or rasteriser changes pixels, so on-disk caches are rebuilt.
RENDER_VERSION = 1


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, stop: float, n: int = 24) -> np.ndarray:
    """Points on an elliptic arc; angles in turns (0 = right, 0.25 = down, since y points down)."""
    t = np.linspace(start, stop, n) * 2 * math.pi
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


def _bezier(p0, p1, p2, n: int = 16) -> np.ndarray:
    t = np.linspace(0.0, 1.0, n)[:, None]
    p0, p1, p2 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _line(*points) -> np.ndarray:
    return np.asarray(points, dtype=np.float64)


def _glyph_strokes() -> tuple[tuple[np.ndarray, ...], ...]:
    """The skeleton of each digit: polylines in a unit box (x right, y down), glyph body in ~[0.2, 0.8]."""
    return (
        # 0: a tall oval
        (_arc(0.5, 0.5, 0.27, 0.4, 0.0, 1.0, 40),),
        # 1: a stem with a flag
        (_line((0.53, 0.1), (0.53, 0.9)), _line((0.33, 0.28), (0.53, 0.1))),
        # 2: a hook over a diagonal and a flat base
        (np.concatenate([_arc(0.5, 0.33, 0.24, 0.23, 0.55, 1.08, 20),
                         _line((0.26, 0.9), (0.8, 0.9))]),),
        # 3: two bowls opening left
        (_arc(0.48, 0.3, 0.22, 0.2, -0.4, 0.25, 20), _arc(0.48, 0.69, 0.26, 0.21, -0.25, 0.4, 20)),
        # 4: open four
        (_line((0.66, 0.9), (0.66, 0.1), (0.2, 0.66), (0.82, 0.66)),),
        # 5: flag, spine and a bowl
        (_line((0.76, 0.1), (0.32, 0.1), (0.28, 0.46)), _arc(0.48, 0.66, 0.26, 0.24, -0.4, 0.37, 24)),
        # 6: a sweeping stem into a closed loop
        (_bezier((0.72, 0.12), (0.3, 0.22), (0.25, 0.66)), _arc(0.5, 0.67, 0.25, 0.23, 0.0, 1.0, 32)),
        # 7: top bar and a diagonal
        (_line((0.2, 0.1), (0.8, 0.1), (0.42, 0.9)),),
        # 8: two stacked loops
        (_arc(0.5, 0.3, 0.19, 0.19, 0.0, 1.0, 28), _arc(0.5, 0.7, 0.24, 0.21, 0.0, 1.0, 32)),
        # 9: a loop with a descending tail
        (_arc(0.5, 0.33, 0.23, 0.22, 0.0, 1.0, 32), _bezier((0.73, 0.33), (0.72, 0.72), (0.42, 0.9))),
    )


_GLYPHS = _glyph_strokes()


def render_digit(label: int, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """Render ``label`` with a random style from ``rng``; HxW float32 in [0, 1], white on black."""
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"label must be in [0, 9], got {label}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")

    # Style: the draw order is fixed so a seed always gives the same digit.
    scale = rng.uniform(0.62, 0.8) * size
    aspect = rng.uniform(0.8, 1.15)
    angle = math.radians(rng.uniform(-14.0, 14.0))
    slant = rng.uniform(-0.3, 0.3)
    shift = rng.uniform(-0.07, 0.07, 2) * size
    stroke_width = rng.uniform(0.07, 0.12) * size
    brightness = rng.uniform(0.85, 1.0)
    wobble = 0.018

    cos, sin = math.cos(angle), math.sin(angle)
    linear = np.array([[cos, -sin], [sin, cos]]) @ np.array([[aspect, -slant], [0.0, 1.0]]) * scale
    centre = np.array([size / 2, size / 2]) + shift

    segments = []
    for stroke in _GLYPHS[label]:
        points = stroke + rng.normal(0.0, wobble, stroke.shape)
        points = (points - 0.5) @ linear.T + centre
        segments.append(np.stack([points[:-1], points[1:]], axis=1))
    seg = np.concatenate(segments)  # (M, 2 endpoints, xy)

    coords = np.arange(size, dtype=np.float64) + 0.5
    py, px = np.meshgrid(coords, coords, indexing="ij")
    pix = np.stack([px.ravel(), py.ravel()], axis=1)  # (P, xy)

    # Distance from every pixel centre to every segment, then to the nearest one.
    a, d = seg[:, 0], seg[:, 1] - seg[:, 0]  # (M, 2)
    rel = pix[:, None, :] - a[None]  # (P, M, 2)
    t = np.clip((rel * d).sum(-1) / np.maximum((d * d).sum(-1), 1e-9), 0.0, 1.0)
    dist = np.sqrt(((rel - t[..., None] * d) ** 2).sum(-1)).min(axis=1)

    ink = np.clip(stroke_width / 2 - dist + 0.5, 0.0, 1.0) * brightness  # one-pixel anti-aliased edge
    return ink.reshape(size, size).astype(np.float32)


class Digits:
    """An image source of labelled digits; ``image(i)`` is CHW (1, size, size) in [-1, 1]."""

    def __init__(self, *, split: str = "train", size: int = 28, length: int = 10000, seed: int = 0) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"length must be a positive int, got {length!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 8:
            raise ValueError(f"size must be an int >= 8, got {size!r}")
        check_seed(seed)
        self.split, self.size, self.length, self.seed = split, size, length, seed
        self.classes = tuple(str(k) for k in range(NUM_CLASSES))

    def __len__(self) -> int:
        return self.length

    def label(self, index: int) -> int:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        return index % NUM_CLASSES

    def cache_key(self) -> str:
        return f"digits-v{RENDER_VERSION}-{self.split}-{self.size}px-{self.length}-seed{self.seed}"

    def image(self, index: int) -> torch.Tensor:
        ink = render_digit(self.label(index), numpy_rng(self.seed, "digits", self.split, index), self.size)
        return torch.from_numpy(ink)[None] * 2 - 1
