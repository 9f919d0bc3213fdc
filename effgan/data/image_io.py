"""Reading image files defensively: odd modes are converted, unreadable files are skipped.

A long training run should never die on item 51,317 because one JPEG is
truncated. ``ImageFiles`` validates lazily, in ``image()``/``item()``: a file
that fails to decode is reported once (``warnings.warn`` naming it), remembered,
and replaced by the next readable file. Files that need converting (grayscale,
palette, alpha, CMYK) are converted and reported once each.

The "once" bookkeeping lives on the instance, so each DataLoader worker keeps
its own record; with several workers a bad file may be reported once per worker.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"})

# Errors PIL raises for files that are not (complete, valid) images.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, UnidentifiedImageError, Image.DecompressionBombError)


class DataWarning(UserWarning):
    """A data file was converted, skipped or upscaled."""


class UnreadableDataError(ValueError):
    """No file of an image source could be decoded: a problem with the data, reported as such
    (a ValueError, so ``python -m effgan.train`` ends with the message instead of a traceback)."""


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def list_image_files(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted so the order is the same on every machine."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"folder {str(folder)!r} is not a directory")
    # Hidden files and folders (.ipynb_checkpoints/, ._x.png from macOS) are tool leftovers, never data.
    return sorted(p for p in folder.rglob("*")
                  if is_image_file(p) and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def decode_image(path: Path, channels: int) -> tuple[np.ndarray, str | None]:
    """Decode ``path`` to HxWxC uint8 with C == ``channels`` (1 or 3).

    Returns the array and a note describing a conversion worth reporting (None when the
    file already had the wanted layout). Raises one of PIL's decode errors for bad files.
    """
    with Image.open(path) as img:
        img.load()  # force the full decode now: truncated files fail here, not later
        # PIL opens a PGM/PPM of more than 8 bits as mode "I", already stretched to 0..65535 whatever
        # its maxval: 16-bit data, however dark (read before exif_transpose, whose copy has no format)
        sixteen_bit = img.mode.startswith("I;16") or (img.mode == "I" and img.format == "PPM")
        # a camera's JPEG is stored sideways with an EXIF orientation tag: show it as viewers do
        img = ImageOps.exif_transpose(img)
        mode = img.mode
        note = None
        if mode.startswith("I;16") or mode in ("I", "F"):
            # PIL's convert() to L/RGB clips these at 255 instead of rescaling, so any 16-bit image
            # above 255 would load as solid white: scale to 8 bits here (16-bit: by 257, the exact
            # map of 0..65535 onto 0..255; 32-bit int and float: see _to_uint8).
            img = Image.fromarray(_to_uint8(np.asarray(img), "I;16" if sixteen_bit else mode))
            note = f"{mode} image scaled to 8 bits"
        if mode == "P":
            img = img.convert("RGBA" if "transparency" in img.info else "RGB")
            note = "palette image converted"
        elif mode in ("L", "RGB") and "transparency" in img.info:
            # one colour declared transparent (PNG's tRNS): its alpha, composited below as any alpha is
            img = img.convert("RGBA")
        if img.mode in ("RGBA", "LA", "PA"):
            # Transparent pixels have arbitrary colour underneath; white is the usual backdrop
            # of cut-out photos, and keeps those pixels from turning into noise.
            rgba = img.convert("RGBA")
            backdrop = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            img = Image.alpha_composite(backdrop, rgba).convert("RGB")
            note = f"{mode} image with transparency composited over white"
        if channels == 3:
            if img.mode != "RGB":
                note = note or f"{mode} image converted to RGB"
                img = img.convert("RGB")
        elif img.mode != "L":
            if img.mode != "1":
                note = note or f"{mode} image converted to grayscale"
            img = img.convert("L")
        array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise ValueError("image has no pixels")
    return array, note


def _to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """A single-channel 16-bit, 32-bit int or float image as uint8 (see decode_image): 16-bit by its
    full range; 32-bit int by 0..65535 when it holds values above 255 (16-bit data PIL widened), else
    0..255; float in [0, 1] by that range, other floats by 0..255."""
    if mode.startswith("I;16"):
        return np.round(values.astype(np.float64) / 257.0).astype(np.uint8)
    values = values.astype(np.float64)
    if mode == "F" and values.size and values.min() >= 0.0 and values.max() <= 1.0:
        return np.round(values * 255.0).astype(np.uint8)
    top = 65535.0 if mode == "I" and values.size and values.max() > 255 else 255.0
    return np.round(np.clip(values, 0.0, top) * (255.0 / top)).astype(np.uint8)


def to_signed_tensor(array: np.ndarray) -> torch.Tensor:
    """HxWxC uint8 -> CHW float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float().div_(127.5).sub_(1.0)


class ImageFiles:
    """An image source over a list of files, optionally labelled.

    ``image(i)`` returns CHW float32 in [-1, 1]; ``item(i)`` returns ``(image, label)`` and
    keeps the label of the file actually read when an unreadable file was replaced.
    ``min_size``: images whose shorter side is below it are reported (once per source),
    since the transform will have to upscale them.
    """

    def __init__(self, paths: Sequence[str | Path], *, channels: int = 3, min_size: int = 0,
                 labels: Sequence[int] | None = None, classes: Sequence[str] = ()) -> None:
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels!r}")
        if len(paths) == 0:
            raise ValueError("paths is empty: no image files found")
        if labels is not None and len(labels) != len(paths):
            raise ValueError(f"labels has {len(labels)} entries for {len(paths)} paths")
        self.paths = [Path(p) for p in paths]
        self.channels, self.min_size = channels, min_size
        self.labels = None if labels is None else [int(label) for label in labels]
        self.classes = tuple(classes)
        self._unreadable: set[int] = set()
        self._reported: set[int] = set()
        self._reported_small = False

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> torch.Tensor:
        return self._read(index)[0]

    def item(self, index: int) -> tuple[torch.Tensor, int]:
        if self.labels is None:
            raise TypeError("this ImageFiles source has no labels; use image()")
        tensor, used = self._read(index)
        return tensor, self.labels[used]

    def _read(self, index: int) -> tuple[torch.Tensor, int]:
        count = len(self.paths)
        if not 0 <= index < count:
            raise IndexError(f"index {index} out of range for {count} files")
        for offset in range(count):
            # Replace a bad file by the next readable one: deterministic, and cheap to find.
            candidate = (index + offset) % count
            if candidate in self._unreadable:
                continue
            path = self.paths[candidate]
            try:
                array, note = decode_image(path, self.channels)
            except DECODE_ERRORS as error:
                self._unreadable.add(candidate)
                warnings.warn(f"skipping unreadable image {str(path)!r}: {error}", DataWarning, stacklevel=3)
                continue
            if note is not None and candidate not in self._reported:
                self._reported.add(candidate)
                warnings.warn(f"{str(path)!r}: {note}", DataWarning, stacklevel=3)
            if min(array.shape[:2]) < self.min_size and not self._reported_small:
                self._reported_small = True
                warnings.warn(f"{str(path)!r} is {array.shape[1]}x{array.shape[0]}, smaller than {self.min_size}; "
                              "images this small are upscaled (reported once per source)", DataWarning, stacklevel=3)
            return to_signed_tensor(array), candidate
        raise UnreadableDataError(f"none of the {count} image files could be read (first: {str(self.paths[0])!r}; "
                                  "the warnings above say why each was skipped)")
