"""The "cans" dataset: procedurally rendered scenes holding a red can (domain A) or a blue can (domain B).

A scene (background, table, lighting, can pose) is drawn independently of the
domain, and the domain only changes the can's paint. Rendering one scene with
both paints therefore gives a ground-truth translation pair: the two images
are identical outside the can's silhouette. The test split uses this to
measure translation quality; the train split is unpaired, with domain A and
domain B scenes drawn from different seeds.

Everything is rendered with vectorised numpy (a 128x128 image takes a few ms)
from a generator seeded by (seed, split, domain stream, index), so any item
can be produced on its own, in any worker, identically on every run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from .seeding import check_seed, numpy_rng

Domain = Literal["A", "B"]
DOMAINS: tuple[Domain, ...] = ("A", "B")
SUPPORTED_SIZES = (64, 128, 256)
# Bump when a change to the renderer changes pixels, so on-disk caches are rebuilt.
RENDER_VERSION = 1

# Paint of the can body per domain (linear RGB in [0, 1]).
_PAINT = {"A": np.array([0.78, 0.07, 0.08], np.float32), "B": np.array([0.08, 0.22, 0.82], np.float32)}
_LABEL_CREAM = np.array([0.93, 0.90, 0.82], np.float32)
_METAL = np.array([0.74, 0.75, 0.78], np.float32)


@dataclass(frozen=True)
class CanScene:
    """Everything about a scene except the can's paint. Coordinates are fractions of the image side."""

    bg_top: tuple[float, float, float]
    bg_bottom: tuple[float, float, float]
    texture: tuple[tuple[float, float, float], ...]  # (freq_x, freq_y, phase) waves modulating the wall
    texture_amp: float
    table_y: float  # where the table surface starts (top edge)
    table_color: tuple[float, float, float]
    light_x: float  # horizontal light direction, -1 (from the left) .. 1 (from the right)
    light_up: float  # how much the light comes from above, 0 .. 1
    light_intensity: float
    ambient: float
    center_x: float
    base_y: float  # where the can stands on the table
    radius: float
    height: float
    tilt_deg: float  # in-plane rotation of the whole can
    ellipse_ratio: float  # apparent height/width of the top face (view elevation)
    band: tuple[float, float]  # label band, as fractions of the body height from the top
    stripe_phase: float
    paint_gain: float  # brightness jitter of the paint, shared by both domains


def sample_scene(rng: np.random.Generator) -> CanScene:
    """Draw a random scene. The draw order is fixed, so a seed always gives the same scene."""

    def color(low: float, high: float) -> tuple[float, float, float]:
        base = rng.uniform(low, high)
        return tuple(float(np.clip(base + d, 0.0, 1.0)) for d in rng.uniform(-0.12, 0.12, 3))

    bg_top = color(0.45, 0.9)
    bg_bottom = color(0.3, 0.75)
    texture = tuple(
        (float(rng.uniform(1.0, 9.0)), float(rng.uniform(1.0, 9.0)), float(rng.uniform(0.0, 2 * math.pi)))
        for _ in range(3)
    )
    texture_amp = float(rng.uniform(0.0, 0.08))
    table_y = float(rng.uniform(0.5, 0.72))
    table_color = color(0.25, 0.65)
    light_x = float(rng.uniform(-1.0, 1.0))
    light_up = float(rng.uniform(0.2, 0.9))
    light_intensity = float(rng.uniform(0.55, 0.95))
    ambient = float(rng.uniform(0.25, 0.45))
    radius = float(rng.uniform(0.11, 0.19))
    height = float(rng.uniform(2.0, 2.9) * radius)
    base_y = float(rng.uniform(table_y + 0.08, min(0.95, table_y + 0.3)))
    base_y = max(base_y, height + 0.08)  # keep the top inside the frame
    center_x = float(rng.uniform(0.2 + radius, 0.8 - radius))
    tilt_deg = float(rng.uniform(-15.0, 15.0))
    ellipse_ratio = float(rng.uniform(0.22, 0.38))
    band_top = float(rng.uniform(0.3, 0.4))
    band = (band_top, band_top + float(rng.uniform(0.25, 0.35)))
    stripe_phase = float(rng.uniform(0.0, 2 * math.pi))
    paint_gain = float(rng.uniform(0.85, 1.1))
    return CanScene(bg_top, bg_bottom, texture, texture_amp, table_y, table_color, light_x, light_up,
                    light_intensity, ambient, center_x, base_y, radius, height, tilt_deg, ellipse_ratio,
                    band, stripe_phase, paint_gain)


def render_scene(scene: CanScene, domain: Domain, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Render ``scene`` with the ``domain`` can at ``size`` x ``size``.

    Returns ``(image, alpha)``: image HxWx3 float32 in [0, 1]; alpha HxW float32, the can's
    anti-aliased coverage. Pixels where alpha == 0 do not depend on ``domain``.
    """
    if domain not in _PAINT:
        raise ValueError(f"domain must be 'A' or 'B', got {domain!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")

    pixel = 1.0 / size
    coords = (np.arange(size, dtype=np.float32) + 0.5) * pixel
    y, x = np.meshgrid(coords, coords, indexing="ij")

    background = _render_background(scene, x, y, pixel)
    body_cov, top_cov, body_rgb, top_rgb = _render_can(scene, _PAINT[domain], x, y, pixel)

    # Top face over body over background ("over" compositing, premultiplied by coverage).
    body_cov3, top_cov3 = body_cov[..., None], top_cov[..., None]
    image = body_cov3 * body_rgb + (1 - body_cov3) * background
    image = top_cov3 * top_rgb + (1 - top_cov3) * image
    alpha = 1 - (1 - body_cov) * (1 - top_cov)
    return np.clip(image, 0.0, 1.0).astype(np.float32), alpha.astype(np.float32)


def _render_background(scene: CanScene, x: np.ndarray, y: np.ndarray, pixel: float) -> np.ndarray:
    top, bottom = np.array(scene.bg_top, np.float32), np.array(scene.bg_bottom, np.float32)
    wall = top + (bottom - top) * y[..., None]
    waves = sum(np.sin(2 * math.pi * (fx * x + fy * y) + phase) for fx, fy, phase in scene.texture)
    wall = wall * (1 + scene.texture_amp * waves / len(scene.texture))[..., None]

    # The table: a soft-edged horizontal surface, darker towards the viewer, with wood-like streaks.
    table_cov = np.clip((y - scene.table_y) / pixel + 0.5, 0.0, 1.0)[..., None]
    depth = (y - scene.table_y) / max(1e-3, 1 - scene.table_y)
    streaks = 1 + 0.05 * np.sin(2 * math.pi * (14 * x + 3 * depth) + scene.texture[0][2])
    table = np.array(scene.table_color, np.float32) * ((1 - 0.3 * depth) * streaks)[..., None]
    edge = np.exp(-(((y - scene.table_y) / (1.5 * pixel)) ** 2))[..., None]  # a thin bright edge
    scene_rgb = wall * (1 - table_cov) + table * table_cov + 0.15 * edge

    # Light falloff across the frame, from the side the light comes from.
    falloff = 1 + 0.25 * scene.light_intensity * scene.light_x * (x - 0.5) * 2
    scene_rgb = scene_rgb * falloff[..., None]

    # The can's soft shadow on the table, cast away from the light; it belongs to the scene,
    # not to the can's paint, so both domains share it.
    shadow_dx = -scene.light_x * scene.height * 0.7
    sx = (x - scene.center_x - shadow_dx / 2) / (scene.radius * 1.3 + abs(shadow_dx) / 2)
    sy = (y - scene.base_y) / (scene.radius * scene.ellipse_ratio * 1.8)
    shadow = np.exp(-2.0 * (sx**2 + sy**2)) * table_cov[..., 0]
    scene_rgb = scene_rgb * (1 - 0.5 * scene.light_intensity * shadow)[..., None]
    return scene_rgb


def _render_can(scene: CanScene, paint: np.ndarray, x: np.ndarray, y: np.ndarray, pixel: float):
    r, h, e = scene.radius, scene.height, scene.ellipse_ratio
    mid_y = scene.base_y - h / 2
    theta = math.radians(scene.tilt_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    dx, dy = x - scene.center_x, y - mid_y
    # Can-local coordinates: xl across the can, yl along its axis (down), origin at the axis middle.
    xl = cos * dx + sin * dy
    yl = -sin * dx + cos * dy

    u = np.clip(xl / r, -1.0, 1.0)
    depth = np.sqrt(np.clip(1 - u * u, 0.0, 1.0))  # z of the cylinder surface normal
    bottom_edge = h / 2 + e * r * depth
    # Signed distances in pixels (negative inside); max() intersects the half-spaces.
    body_sd = np.maximum(np.maximum(np.abs(xl) - r, yl - bottom_edge), -h / 2 - yl) / pixel
    body_cov = np.clip(0.5 - body_sd, 0.0, 1.0)

    ex, ey = xl / r, (yl + h / 2) / (e * r)
    q = np.sqrt(ex * ex + ey * ey) + 1e-6
    grad = np.sqrt((ex / r) ** 2 + (ey / (e * r)) ** 2) / q  # |grad q|, to turn q - 1 into a distance
    top_sd = (q - 1) / np.maximum(grad, 1e-6) / pixel
    top_cov = np.clip(0.5 - top_sd, 0.0, 1.0)

    # Lighting: Lambert + Blinn-Phong highlight on a vertical cylinder, normal (u, 0, depth).
    light = np.array([scene.light_x, 0.0, 0.9], np.float32)
    light /= np.linalg.norm(light)
    diffuse = np.clip(u * light[0] + depth * light[2], 0.0, 1.0)
    half = light + np.array([0.0, 0.0, 1.0], np.float32)
    half /= np.linalg.norm(half)
    highlight = np.clip(u * half[0] + depth * half[2], 0.0, 1.0) ** 40
    shade = (scene.ambient + scene.light_intensity * diffuse)[..., None]

    # Paint, label band (cream with a wavy stripe of darker paint) and metal rims at both ends.
    v = (yl + h / 2) / h  # 0 at the top rim, 1 at the bottom
    band_lo, band_hi = scene.band
    in_band = np.clip(np.minimum(v - band_lo, band_hi - v) * h / pixel + 0.5, 0.0, 1.0)[..., None]
    wave = (band_lo + band_hi) / 2 + 0.05 * np.sin(2.5 * math.pi * u + scene.stripe_phase)
    in_stripe = np.clip((0.045 - np.abs(v - wave)) * h / pixel + 0.5, 0.0, 1.0)[..., None]
    band_color = _LABEL_CREAM * (1 - in_stripe) + paint * 0.7 * in_stripe
    albedo = paint * scene.paint_gain * (1 - in_band) + band_color * in_band
    rim = np.clip((np.maximum(0.06 - v, v - 0.95)) * h / pixel + 0.5, 0.0, 1.0)[..., None]
    albedo = albedo * (1 - rim) + _METAL * rim
    body_rgb = albedo * shade + 0.55 * scene.light_intensity * highlight[..., None]

    # The metal top face, lit from above, with a darker groove ring and a pull tab.
    top_light = scene.ambient + scene.light_intensity * (0.35 + 0.6 * scene.light_up)
    groove = np.exp(-(((q - 0.86) / 0.05) ** 2))
    tab = np.exp(-(((ex - 0.05) / 0.22) ** 2 + ((ey + 0.15) / 0.3) ** 2) * 3)
    top_shade = top_light * (1 - 0.35 * groove - 0.25 * tab) * (1 + 0.15 * scene.light_x * ex)
    top_rgb = _METAL * top_shade[..., None]
    return body_cov, top_cov, body_rgb, top_rgb


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """HxWx3 [0, 1] float array -> CHW float32 tensor in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))) * 2 - 1


def _check_args(split: str, size: int, length: int, seed: int) -> None:
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if size not in SUPPORTED_SIZES:
        raise ValueError(f"size must be one of {SUPPORTED_SIZES}, got {size!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive int, got {length!r}")
    check_seed(seed)


class CansDomain:
    """An image source of one domain: item ``i`` is scene (seed, split, domain, i) with that domain's can.

    Domain A and domain B items come from different scene streams, so the train
    split is genuinely unpaired.
    """

    def __init__(self, domain: Domain, *, split: str = "train", size: int = 128, length: int = 1000,
                 seed: int = 0) -> None:
        if domain not in DOMAINS:
            raise ValueError(f"domain must be 'A' or 'B', got {domain!r}")
        _check_args(split, size, length, seed)
        self.domain, self.split, self.size, self.length, self.seed = domain, split, size, length, seed

    def __len__(self) -> int:
        return self.length

    def scene(self, index: int) -> CanScene:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} items")
        return sample_scene(numpy_rng(self.seed, "cans", self.split, self.domain, index))

    def cache_key(self) -> str:
        return f"cans-v{RENDER_VERSION}-{self.split}-{self.domain}-{self.size}px-{self.length}-seed{self.seed}"

    def image(self, index: int) -> torch.Tensor:
        image, _ = render_scene(self.scene(index), self.domain, self.size)
        return to_tensor(image)


def other_domain(domain: Domain) -> Domain:
    return "B" if domain == "A" else "A"
