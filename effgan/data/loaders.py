"""DataLoader construction with reproducible shuffling and worker seeding."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from .seeding import check_seed


def seed_worker(worker_id: int) -> None:
    """Seed Python's and numpy's global generators in a worker from torch's per-worker seed.

    effgan's own datasets draw from per-item generators and need none of this; it keeps
    third-party transforms that use ``random``/``np.random`` from repeating across workers
    (forked workers would otherwise inherit identical global states).
    """
    seed = torch.initial_seed() % 2**32  # DataLoader sets it to base_seed + worker_id
    random.seed(seed)
    np.random.seed(seed)


def make_loader(dataset: Dataset, batch_size: int, *, shuffle: bool = True, num_workers: int = 0, seed: int = 0,
                pin_memory: bool | None = None, drop_last: bool = False, sampler: Sampler | None = None,
                prefetch_factor: int = 2) -> DataLoader:
    """A DataLoader whose shuffling and worker seeds follow ``seed``.

    ``pin_memory=None`` pins only when CUDA is available (pinning without a GPU just
    costs time). Workers persist across epochs when ``num_workers > 0``; datasets that
    depend on the epoch share it with them (see ``SharedEpoch``), so call
    ``dataset.set_epoch(e)`` before iterating epoch ``e``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative int, got {num_workers!r}")
    if isinstance(prefetch_factor, bool) or not isinstance(prefetch_factor, int) or prefetch_factor < 1:
        raise ValueError(f"prefetch_factor must be a positive int, got {prefetch_factor!r}")
    if sampler is not None and shuffle:
        raise ValueError("shuffle must be False when a sampler is given (the sampler decides the order)")
    check_seed(seed)
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()

    # Two streams: the shuffle's own, and the one the DataLoader draws its workers' base seed from.
    # Sharing one made the order from the second epoch on depend on num_workers (persistent
    # workers draw the base seed once, a 0-worker loader once per epoch, from the same stream).
    if shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    generator = torch.Generator()
    generator.manual_seed(seed + 1)
    workers = num_workers > 0
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=seed_worker if workers else None,
        prefetch_factor=prefetch_factor if workers else None,
        persistent_workers=workers,
    )
