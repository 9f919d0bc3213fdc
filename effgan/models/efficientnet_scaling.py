"""EfficientNet compound scaling and the B0 stage table the effnet generators are built from.

Compound coefficient phi scales depth by 1.2**phi (stage repeats = ceil(repeats * 1.2**phi)),
width by 1.1**phi (channels rounded to the nearest multiple of 8, never below 90% of the
unrounded value) and the recommended training resolution by 1.15**phi. The resolution is
rounded to the nearest multiple of 32, because the full effnet generator downsamples by 32
(stem + four stride-2 stages), so every preset's resolution is a valid input size for it.
Generators train at 256x256, so 256 is the phi = 0 resolution (pass 224 for the classifier's).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

DEPTH_BASE = 1.2
WIDTH_BASE = 1.1
RESOLUTION_BASE = 1.15
CHANNEL_DIVISOR = 8
RESOLUTION_MULTIPLE = 32
BASE_RESOLUTION = 256
PRESET_PHIS = (0, 1, 2, 3)


@dataclass(frozen=True)
class StageSpec:
    """One EfficientNet stage: ``repeats`` MBConv blocks, the first with ``stride``."""

    expand_ratio: int
    kernel_size: int
    stride: int
    repeats: int
    channels: int


B0_STEM_CHANNELS = 32
B0_STAGES = (
    StageSpec(expand_ratio=1, kernel_size=3, stride=1, repeats=1, channels=16),
    StageSpec(expand_ratio=6, kernel_size=3, stride=2, repeats=2, channels=24),
    StageSpec(expand_ratio=6, kernel_size=5, stride=2, repeats=2, channels=40),
    StageSpec(expand_ratio=6, kernel_size=3, stride=2, repeats=3, channels=80),
    StageSpec(expand_ratio=6, kernel_size=5, stride=1, repeats=3, channels=112),
    StageSpec(expand_ratio=6, kernel_size=5, stride=2, repeats=4, channels=192),
    StageSpec(expand_ratio=6, kernel_size=3, stride=1, repeats=1, channels=320),
)


@dataclass(frozen=True)
class ScalingRow:
    phi: int
    depth_mult: float
    width_mult: float
    resolution: int


@dataclass(frozen=True)
class EfficientNetPreset:
    """A scaled B0: stem width, stage list and recommended training resolution."""

    phi: int
    stem_channels: int
    stages: tuple[StageSpec, ...]
    resolution: int


def _check_phi(phi) -> int:
    if isinstance(phi, bool) or not isinstance(phi, int) or phi < 0:
        raise ValueError(f"phi must be a non-negative int, got {phi!r}")
    return phi


def depth_multiplier(phi: int) -> float:
    return DEPTH_BASE ** _check_phi(phi)


def width_multiplier(phi: int) -> float:
    return WIDTH_BASE ** _check_phi(phi)


def round_channels(channels: int, width_mult: float, divisor: int = CHANNEL_DIVISOR) -> int:
    """channels * width_mult to the nearest multiple of ``divisor``, never below 90% of it."""
    scaled = channels * width_mult
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(repeats: int, depth_mult: float) -> int:
    return int(math.ceil(repeats * depth_mult))


def scaled_resolution(phi: int, base_resolution: int = BASE_RESOLUTION,
                      multiple: int = RESOLUTION_MULTIPLE) -> int:
    """base_resolution * 1.15**phi rounded to the nearest multiple of ``multiple``."""
    if base_resolution <= 0 or multiple <= 0:
        raise ValueError("base_resolution and multiple must be positive")
    scaled = base_resolution * RESOLUTION_BASE ** _check_phi(phi)
    return max(multiple, int(round(scaled / multiple)) * multiple)


def scaling_table(phis=PRESET_PHIS, *, base_resolution: int = BASE_RESOLUTION,
                  multiple: int = RESOLUTION_MULTIPLE) -> list[ScalingRow]:
    """phi -> (depth multiplier, width multiplier, training resolution), one row per phi."""
    return [ScalingRow(phi, depth_multiplier(phi), width_multiplier(phi),
                       scaled_resolution(phi, base_resolution, multiple)) for phi in phis]


def _check_width_scale(width_scale) -> float:
    if isinstance(width_scale, bool) or not isinstance(width_scale, (int, float)) \
            or not width_scale > 0:
        raise ValueError(f"width_scale must be a positive number, got {width_scale!r}")
    return float(width_scale)


def stage_list(phi: int, *, width_scale: float = 1.0) -> tuple[StageSpec, ...]:
    """The B0 stage table with repeats scaled by depth and channels by width.

    ``width_scale`` multiplies the width on top of 1.1**phi (1.0: the preset; smaller values
    give narrow models of the same depth, e.g. for tests).
    """
    depth = depth_multiplier(phi)
    width = width_multiplier(phi) * _check_width_scale(width_scale)
    return tuple(StageSpec(s.expand_ratio, s.kernel_size, s.stride,
                           round_repeats(s.repeats, depth), round_channels(s.channels, width))
                 for s in B0_STAGES)


def preset(phi: int, *, base_resolution: int = BASE_RESOLUTION,
           width_scale: float = 1.0) -> EfficientNetPreset:
    """effnet-b{phi}: stem width, scaled stage list and recommended resolution."""
    width = width_multiplier(phi) * _check_width_scale(width_scale)
    return EfficientNetPreset(phi, round_channels(B0_STEM_CHANNELS, width),
                              stage_list(phi, width_scale=width_scale),
                              scaled_resolution(phi, base_resolution))
