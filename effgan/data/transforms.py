"""Augmentation on CHW float tensors with torch ops: resize, random crop, flips, rotation.

All randomness comes from the ``torch.Generator`` passed to ``Transform.__call__``;
datasets build that generator from (seed, epoch, index), so an augmented item is
reproducible no matter which worker produces it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# The reference CycleGAN resizes to 286 and crops 256; other sizes keep that ratio.
_JITTER_RATIO = 286 / 256


def jitter_load_size(crop_size: int) -> int:
    """The resize target before a random crop of ``crop_size`` (286 for 256)."""
    return round(crop_size * _JITTER_RATIO)


@dataclass(frozen=True)
class Transform:
    """Resize to ``load_size`` (square), rotate, crop ``crop_size``, flip.

    ``load_size=None`` means "resize straight to ``crop_size``" (no crop jitter).
    With ``random_crop=False`` and a larger ``load_size`` the crop is centred.
    """

    crop_size: int
    load_size: int | None = None
    random_crop: bool = False
    hflip: bool = False
    vflip: bool = False
    max_rotation_deg: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.crop_size, bool) or not isinstance(self.crop_size, int):
            raise TypeError(f"crop_size must be an int, got {type(self.crop_size).__name__}")
        if self.crop_size < 1:
            raise ValueError(f"crop_size must be >= 1, got {self.crop_size}")
        if self.load_size is not None:
            if isinstance(self.load_size, bool) or not isinstance(self.load_size, int):
                raise TypeError(f"load_size must be an int or None, got {type(self.load_size).__name__}")
            if self.load_size < self.crop_size:
                raise ValueError(f"load_size ({self.load_size}) must be >= crop_size ({self.crop_size})")
        if not 0.0 <= self.max_rotation_deg <= 180.0:
            raise ValueError(f"max_rotation_deg must be in [0, 180], got {self.max_rotation_deg}")

    @classmethod
    def resize(cls, size: int) -> Transform:
        """Deterministic: resize to ``size`` x ``size``, nothing random."""
        return cls(crop_size=size)

    @classmethod
    def jitter(cls, crop_size: int, *, hflip: bool = True, vflip: bool = False,
               max_rotation_deg: float = 0.0) -> Transform:
        """The reference training augmentation: resize to 286/256 of the crop, random crop, flip."""
        return cls(crop_size=crop_size, load_size=jitter_load_size(crop_size), random_crop=True,
                   hflip=hflip, vflip=vflip, max_rotation_deg=max_rotation_deg)

    @property
    def resolved_load_size(self) -> int:
        return self.crop_size if self.load_size is None else self.load_size

    @property
    def is_random(self) -> bool:
        cropping = self.random_crop and self.resolved_load_size > self.crop_size
        return cropping or self.hflip or self.vflip or self.max_rotation_deg > 0

    def __call__(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if not isinstance(image, torch.Tensor) or image.dim() != 3:
            raise ValueError(f"image must be a CHW tensor, got {getattr(image, 'shape', type(image))}")
        if not image.is_floating_point():
            raise TypeError(f"image must be a floating-point tensor, got {image.dtype}")
        if self.is_random and generator is None:
            raise ValueError("generator is required for a random Transform (pass a seeded torch.Generator)")

        load = self.resolved_load_size
        out = _resize_square(image, load)
        if self.max_rotation_deg > 0:
            angle = (torch.rand((), generator=generator).item() * 2 - 1) * self.max_rotation_deg
            out = _rotate(out, angle)
        if load > self.crop_size:
            slack = load - self.crop_size
            if self.random_crop:
                top = int(torch.randint(0, slack + 1, (), generator=generator))
                left = int(torch.randint(0, slack + 1, (), generator=generator))
            else:
                top = left = slack // 2
            out = out[:, top:top + self.crop_size, left:left + self.crop_size]
        if self.hflip and torch.rand((), generator=generator).item() < 0.5:
            out = out.flip(-1)
        if self.vflip and torch.rand((), generator=generator).item() < 0.5:
            out = out.flip(-2)
        return out.contiguous()


def _resize_square(image: torch.Tensor, size: int) -> torch.Tensor:
    if image.shape[-2:] == (size, size):
        return image
    # antialias matters when shrinking large photos; bilinear matches the reference's PIL BICUBIC closely enough
    # while keeping values inside the input range (bicubic overshoots). Its weights' rounding still lands an
    # ulp or two outside [-1, 1] at saturated pixels: clamped, so images stay in the range they promise.
    return F.interpolate(image[None], size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)[0].clamp_(-1.0, 1.0)


def _rotate(image: torch.Tensor, angle_deg: float) -> torch.Tensor:
    """Rotate about the centre; corners are filled by reflection so no black wedges appear."""
    theta = math.radians(angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    affine = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=image.dtype)[None]
    grid = F.affine_grid(affine, [1, *image.shape], align_corners=False)
    return F.grid_sample(image[None], grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)[0].clamp_(-1.0, 1.0)  # as _resize_square: no ulp outside
