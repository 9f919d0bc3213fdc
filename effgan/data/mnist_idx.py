"""MNIST from its IDX files in a local folder (plain or gzipped); nothing is downloaded."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

# IDX type codes -> big-endian numpy dtypes (the format's numbers are big-endian).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"

# File stems per split; both the official dash names and the common dot variant are accepted.
_STEMS = {
    "train": (("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
              ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte")),
    "test": (("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
             ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte")),
}


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file (gzip detected from its first bytes) into a native-endian array."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:  # cut short (an interrupted download), bad CRC
            raise ValueError(f"{str(path)!r} is a damaged gzip file ({type(error).__name__}: {error})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{str(path)!r} is not an IDX file (bad magic number)")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        raise ValueError(f"{str(path)!r}: unknown IDX type code 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{str(path)!r}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{str(path)!r}: IDX shape {shape} needs {expected} data bytes, file has {len(raw) - header}")
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find(root: Path, stems: tuple[str, ...]) -> Path:
    for stem in stems:
        for name in (stem, stem + ".gz"):
            if (root / name).is_file():
                return root / name
    raise ValueError(f"no {stems[0]}[.gz] in {str(root)!r}")


def find_mnist_files(root: str | Path, split: str) -> tuple[Path, Path]:
    """The (images, labels) IDX files of ``split`` ("train" or "test") in ``root``."""
    if split not in _STEMS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = Path(root)
    image_stems, label_stems = _STEMS[split]
    return _find(root, image_stems), _find(root, label_stems)


def has_mnist_files(root: str | Path) -> bool:
    try:
        find_mnist_files(root, "train")
    except ValueError:
        try:
            find_mnist_files(root, "test")
        except ValueError:
            return False
    return True


class MnistIdx:
    """A labelled source over MNIST IDX files; ``item(i)`` is ((1, 28, 28) in [-1, 1], label)."""

    def __init__(self, root: str | Path, split: str = "train") -> None:
        images_path, labels_path = find_mnist_files(root, split)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{str(images_path)!r}: expected uint8 images (N, H, W), "
                             f"got {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"{str(labels_path)!r}: expected {len(images)} labels, got shape {labels.shape}")
        self.images = images
        self.labels = labels.astype(np.int64)
        if len(labels) and int(self.labels.min()) < 0:
            raise ValueError(f"{str(labels_path)!r}: labels must be >= 0, got {int(self.labels.min())}")
        # Classes 0..the largest label of either split, so both splits of one dataset have the same
        # classes (a test split need not hold every label; evaluation compares the class counts).
        top = max([int(self.labels.max())] if len(labels) else [], default=-1)
        other = "test" if split == "train" else "train"
        try:
            other_labels = read_idx(find_mnist_files(root, other)[1])
        except ValueError:
            other_labels = np.empty(0)
        if other_labels.ndim == 1 and len(other_labels):
            top = max(top, int(other_labels.max()))
        self.classes = tuple(str(k) for k in range(top + 1))

    def __len__(self) -> int:
        return len(self.images)

    def image(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.images[index].astype(np.float32))[None] / 127.5 - 1

    def item(self, index: int) -> tuple[torch.Tensor, int]:
        return self.image(index), int(self.labels[index])
