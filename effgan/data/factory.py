"""``build_dataset``: one entry point from a dataset name or folder to a ready Dataset.

Names ``"cans"`` and ``"digits"`` are the embedded, generated datasets; anything
else is a local folder: the CycleGAN layout (trainA/trainB/testA/testB), MNIST
IDX files, or an image folder with optional class subfolders.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from torch.utils.data import Dataset

from .cache import CachedImages
from .cans import SUPPORTED_SIZES as CANS_SIZES
from .cans import CansDomain
from .cans_pairs import CansPairs
from .datasets import LabelledDataset, UnpairedDataset
from .digits import Digits
from .folders import MissingSplitError, cyclegan_domains, image_folder, is_cyclegan_root
from .mnist_idx import MnistIdx, has_mnist_files
from .seeding import check_seed
from .sources import LabelledDigits
from .transforms import Transform, jitter_load_size

# What an item looks like: dict(A, B, A_index, B_index) | dict(A, B, A_true_B, B_true_A, ...) | (image, label).
DatasetKind = Literal["auto", "unpaired", "paired", "labelled"]
KINDS = ("auto", "unpaired", "paired", "labelled")
EMBEDDED = ("cans", "digits")

_DEFAULT_SIZE = {"cans": 128, "digits": 28, "mnist": 28, "cyclegan": 256, "folder": 256}
_DEFAULT_LENGTH = {("cans", "train"): 2000, ("cans", "test"): 200, ("digits", "train"): 10000,
                   ("digits", "test"): 2000}


def is_embedded(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` names a generated dataset. The bare names always do, whatever folder
    of that name the working directory holds (``./cans`` reaches such a folder): the default command
    must not start training on an unrelated folder that happens to be called ``cans``."""
    return isinstance(name_or_path, str) and name_or_path in EMBEDDED


def _source_type(name_or_path: str | Path) -> str:
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path must be a dataset name or a folder path, got {type(name_or_path).__name__}")
    if is_embedded(name_or_path):
        return name_or_path
    path = Path(name_or_path)
    if not path.is_dir():
        raise ValueError(f"name_or_path must be one of {EMBEDDED} or an existing folder, got {str(name_or_path)!r}")
    if is_cyclegan_root(path):
        return "cyclegan"
    if has_mnist_files(path):
        return "mnist"
    return "folder"


def _resolve_transform(augment: bool | Transform, size: int, labelled: bool) -> Transform:
    if isinstance(augment, Transform):
        return augment
    if not isinstance(augment, bool):
        raise TypeError(f"augment must be a bool or a Transform, got {type(augment).__name__}")
    if not augment:
        return Transform.resize(size)
    if labelled:
        # Mirrored digits or letters are different symbols, so labelled data gets crop jitter
        # and a small rotation instead of flips.
        return Transform(crop_size=size, load_size=jitter_load_size(size), random_crop=True, max_rotation_deg=10.0)
    return Transform.jitter(size)


def build_dataset(name_or_path: str | Path, split: str = "train", *, image_size: int | None = None,
                  kind: DatasetKind = "auto", seed: int = 0, augment: bool | Transform = False,
                  length: int | None = None, cache_dir: str | Path | None = None) -> Dataset:
    """Build the dataset ``name_or_path`` for ``split`` ("train" or "test").

    image_size: output side length (defaults: cans 128, digits/MNIST 28, folders 256).
    kind: item structure; "auto" gives cans train -> "unpaired", cans test -> "paired",
        CycleGAN folders -> "unpaired", digits/MNIST/image folders -> "labelled".
    seed: drives generated content, augmentation and unpaired pairing.
    augment: False (resize only), True (crop jitter, plus flips for unlabelled data), or a Transform.
    length: number of items of the generated datasets (cans, digits); not allowed for folders.
    cache_dir: render the generated images once into this folder and read them back from there
        (unpaired cans and digits; the small paired cans split always renders on the fly).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    check_seed(seed)
    source_type = _source_type(name_or_path)
    size = _DEFAULT_SIZE[source_type] if image_size is None else image_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"image_size must be an int >= 8, got {image_size!r}")
    if length is not None and source_type not in EMBEDDED:
        raise ValueError(f"length applies only to the generated datasets {EMBEDDED}, not to folders")
    if cache_dir is not None and source_type not in EMBEDDED:
        raise ValueError(f"cache_dir applies only to the generated datasets {EMBEDDED}, not to folders")
    if length is None and source_type in EMBEDDED:
        length = _DEFAULT_LENGTH[(source_type, split)]

    if source_type == "cans":
        kind = ("paired" if split == "test" else "unpaired") if kind == "auto" else kind
        if kind not in ("paired", "unpaired"):
            raise ValueError(f"kind {kind!r} is not available for 'cans'; use 'unpaired' or 'paired'")
        if size not in CANS_SIZES:  # the scenes are drawn at these sizes
            raise ValueError(f"image_size must be one of {CANS_SIZES} for 'cans', got {size}")
        transform = _resolve_transform(augment, size, labelled=False)
        if kind == "paired":
            return CansPairs(split=split, size=size, length=length, seed=seed, transform=transform)
        domains = [CansDomain(d, split=split, size=size, length=length, seed=seed) for d in "AB"]
        if cache_dir is not None:
            domains = [CachedImages(domain, cache_dir, domain.cache_key()) for domain in domains]
        return UnpairedDataset(*domains, transform=transform, seed=seed)

    if source_type == "cyclegan":
        kind = "unpaired" if kind == "auto" else kind
        if kind != "unpaired":
            raise ValueError(f"kind {kind!r} is not available for a CycleGAN folder; use 'unpaired'")
        source_a, source_b = cyclegan_domains(name_or_path, split, channels=3, min_size=size)
        return UnpairedDataset(source_a, source_b, transform=_resolve_transform(augment, size, labelled=False),
                               seed=seed)

    kind = "labelled" if kind == "auto" else kind
    if kind != "labelled":
        raise ValueError(f"kind {kind!r} is not available for {source_type!r} data; use 'labelled'")
    transform = _resolve_transform(augment, size, labelled=True)
    if source_type == "digits":
        digits = Digits(split=split, size=size, length=length, seed=seed)
        source = LabelledDigits(digits if cache_dir is None else CachedImages(digits, cache_dir, digits.cache_key()))
    elif source_type == "mnist":
        source = MnistIdx(name_or_path, split)
    else:
        if split != "train":
            # A plain image folder has no test part; say so rather than silently reusing the training images.
            raise MissingSplitError(f"split {split!r}: a plain image folder only has a 'train' split")
        source = image_folder(name_or_path, channels=3, min_size=size)
    return LabelledDataset(source, transform=transform, seed=seed)
