"""Image folders on disk: the CycleGAN unpaired layout, and folders with optional class subfolders."""

from __future__ import annotations

import warnings
from pathlib import Path

from .image_io import DataWarning, ImageFiles, is_image_file, list_image_files

SPLITS = ("train", "test")


def is_cyclegan_root(root: str | Path) -> bool:
    """True when ``root`` has the CycleGAN layout (trainA/ and trainB/, or testA/ and testB/)."""
    root = Path(root)
    return any((root / f"{split}A").is_dir() and (root / f"{split}B").is_dir() for split in SPLITS)


class MissingSplitError(ValueError):
    """The dataset has no such split: a plain image folder has only 'train', a CycleGAN folder may
    lack testA/ and testB/."""


def cyclegan_domains(root: str | Path, split: str, *, channels: int = 3,
                     min_size: int = 0) -> tuple[ImageFiles, ImageFiles]:
    """The two domain sources ``root/<split>A`` and ``root/<split>B`` of a CycleGAN dataset."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    sources = []
    for domain in "AB":
        folder = root / f"{split}{domain}"
        if not folder.is_dir():
            raise MissingSplitError(f"root {str(root)!r} has no {split}{domain}/ folder (CycleGAN layout expected)")
        files = list_image_files(folder)
        if not files:
            raise ValueError(f"{str(folder)!r} holds no image files")
        sources.append(ImageFiles(files, channels=channels, min_size=min_size))
    return sources[0], sources[1]


def image_folder(root: str | Path, *, channels: int = 3, min_size: int = 0) -> ImageFiles:
    """A labelled source over ``root``.

    If ``root`` has subfolders holding images, each such subfolder is a class (sorted by
    name, label = position); otherwise every image under ``root`` is one class named
    after ``root``, label 0.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root {str(root)!r} is not a directory")
    class_dirs = [d for d in sorted(root.iterdir())
                  if d.is_dir() and not d.name.startswith(".") and list_image_files(d)]
    if class_dirs:
        loose = [p for p in sorted(root.iterdir()) if is_image_file(p) and not p.name.startswith(".")]
        if loose:
            warnings.warn(f"{str(root)!r}: {len(loose)} image(s) beside the class folders (e.g. {loose[0].name!r}) "
                          f"belong to no class and are not used", DataWarning, stacklevel=2)
        paths, labels = [], []
        for label, folder in enumerate(class_dirs):
            files = list_image_files(folder)
            paths += files
            labels += [label] * len(files)
        classes = [d.name for d in class_dirs]
    else:
        paths = list_image_files(root)
        labels, classes = [0] * len(paths), [root.name]
    if not paths:
        raise ValueError(f"{str(root)!r} holds no image files")
    return ImageFiles(paths, channels=channels, min_size=min_size, labels=labels, classes=classes)
