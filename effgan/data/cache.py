"""Optional on-disk cache for the generated datasets.

Rendering is cheap but not free (a 128x128 can scene takes a few ms); with a
``cache_dir`` the whole source is rendered once into a float16 ``.npy`` file
and later runs read it memory-mapped. The file name encodes every parameter
that changes the pixels, including a renderer version, so a stale cache is
never read. Values are stored as float16 (error below 1e-3 on [-1, 1]).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch

from effgan._paths import create_temp_file


class CachedImages:
    """Wraps an image source; ``image(i)`` reads the cached render of ``source.image(i)``.

    ``key`` must identify the source's content (see ``CansDomain.cache_key``). The file is
    written at construction if missing; workers each open it memory-mapped on first use.
    """

    def __init__(self, source, cache_dir: str | Path, key: str) -> None:
        if not key or any(c in key for c in "/\\"):
            raise ValueError(f"key must be a non-empty file-name-safe string, got {key!r}")
        self.source = source
        self.path = Path(cache_dir) / f"{key}.npy"
        self._array: np.ndarray | None = None
        if not self.path.is_file():
            self._write()
        elif not self._readable():
            # written by rename, so this is no concurrent writer's half file: a copy cut short, a
            # full disk, a hand edit. The render is deterministic: write it again.
            warnings.warn(f"cache {str(self.path)!r} is damaged; rendering it again", stacklevel=2)
            self._write()

    def _readable(self) -> bool:
        try:
            array = np.load(self.path, mmap_mode="r")
        except (ValueError, EOFError, OSError):
            return False
        return array.dtype == np.float16 and array.ndim == 4 and len(array) == len(self.source)

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        first = self.source.image(0)
        array = np.empty((len(self.source), *first.shape), np.float16)
        array[0] = first.numpy()
        for index in range(1, len(self.source)):
            array[index] = self.source.image(index).numpy()
        # Write to a temporary name and rename, so a concurrent or interrupted run never sees half a file.
        handle, tmp = create_temp_file(self.path.parent, prefix=f"{self.path.stem}.", suffix=".npy.tmp")
        try:
            with os.fdopen(handle, "wb") as f:
                np.save(f, array)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __getstate__(self) -> dict:
        # Send workers the path, not the mapped array (pickling a memmap copies its data).
        return {**self.__dict__, "_array": None}

    def __len__(self) -> int:
        return len(self.source)

    def image(self, index: int) -> torch.Tensor:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
            if len(self._array) != len(self.source):
                raise RuntimeError(f"cache {str(self.path)!r} holds {len(self._array)} items, "
                                   f"expected {len(self.source)}")
        return torch.from_numpy(np.array(self._array[index], dtype=np.float32))

    def label(self, index: int) -> int:
        return self.source.label(index)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.source.classes
