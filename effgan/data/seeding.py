"""Seeds derived from named parts, so any item's randomness can be rebuilt on its own.

Every random choice in ``effgan.data`` is drawn from a generator seeded by
``derive_seed(seed, <what>, <split>, <index>, ...)``. Deriving per item (instead
of advancing one shared generator) is what lets a DataLoader worker produce item
``i`` without knowing which items came before it, so results do not depend on
the number of workers or on the order in which items are requested.
"""

from __future__ import annotations

import hashlib
import operator

import numpy as np
import torch

_SEED_MASK = (1 << 63) - 1  # torch.Generator.manual_seed wants a non-negative int64


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed that is a stable hash of ``parts`` (ints and strings).

    Uses blake2b rather than ``hash()`` because Python salts ``hash`` of strings
    per process, which would make worker processes disagree.
    """
    # Integer-likes (numpy integers: Subset(dataset, np.arange(n)) indexes with them) become ints
    # first: the text below names each part's type, so an int64 index would seed other draws.
    parts = tuple(part if isinstance(part, str) else _as_int(part) for part in parts)
    text = "\x1f".join(f"{type(part).__name__}:{part}" for part in parts)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & _SEED_MASK


def _as_int(part) -> int:
    if not isinstance(part, (bool, np.bool_)):
        try:
            return operator.index(part)
        except TypeError:
            pass
    raise TypeError(f"derive_seed parts must be int or str, got {type(part).__name__}: {part!r}")


def numpy_rng(*parts: int | str) -> np.random.Generator:
    """A numpy Generator seeded by ``derive_seed(*parts)``."""
    return np.random.default_rng(derive_seed(*parts))


def torch_generator(*parts: int | str) -> torch.Generator:
    """A CPU torch.Generator seeded by ``derive_seed(*parts)``."""
    generator = torch.Generator()
    generator.manual_seed(derive_seed(*parts))
    return generator


def check_seed(seed: int, name: str = "seed") -> int:
    """Validate a user-supplied seed (a non-negative int) and return it."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{name} must be an int, got {type(seed).__name__}")
    if not 0 <= seed < _SEED_MASK:  # torch.Generator.manual_seed takes an int64 (the loader adds 1)
        raise ValueError(f"{name} must be in [0, 2**63 - 1), got {seed}")
    return seed
