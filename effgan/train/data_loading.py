"""Loaders whose order is a pure function of (seed, epoch, rank), so a run can resume mid-epoch.

The sampler is a ``DistributedSampler`` (shuffled by a hash of seed and epoch, sharded by rank) that can
also skip the samples of batches already trained on in the current epoch. Batches are dropped at
the end of an epoch when incomplete, so every step sees the same shapes (needed by CUDA graphs and
kind to BatchNorm).
"""
from __future__ import annotations

import signal
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from effgan.data.seeding import derive_seed
from effgan.train.distributed import DistInfo


class ResumableSampler(DistributedSampler):
    def __init__(self, dataset: Dataset, info: DistInfo, seed: int, shuffle: bool = True) -> None:
        super().__init__(dataset, num_replicas=info.world_size, rank=info.rank,
                         shuffle=shuffle, seed=seed, drop_last=True)
        self.skip = 0

    def set_position(self, epoch: int, skip_samples: int = 0) -> None:
        """Start ``epoch`` after its first ``skip_samples`` samples (of this rank's shard)."""
        if skip_samples < 0:
            raise ValueError(f"skip_samples must be >= 0, got {skip_samples}")
        self.set_epoch(epoch)
        self.skip = skip_samples

    def __iter__(self) -> Iterator[int]:
        # DistributedSampler shuffles with seed + epoch, which gives seed s + 1's first epoch the
        # order of seed s's second: runs meant to be independent would share their batches.
        if self.shuffle:
            generator = torch.Generator().manual_seed(derive_seed(self.seed, "data order", self.epoch))
            indices = torch.randperm(len(self.dataset), generator=generator).tolist()
        else:
            indices = list(range(len(self.dataset)))
        indices = indices[:self.total_size]  # drop_last: every rank gets num_samples
        return iter(indices[self.rank:self.total_size:self.num_replicas][self.skip:])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


def _ignore_stop_signals(_worker_id: int) -> None:
    """Workers leave SIGINT and SIGTERM to the main process.

    A supervisor (systemd, docker, Slurm, a terminal's Ctrl-C) signals the whole process group; a
    worker killed by it makes the main process's next batch raise, before its own handler can finish
    the step and write the stop checkpoint. The main process shuts its workers down when it exits.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def make_train_loader(dataset: Dataset, batch_size: int, info: DistInfo, seed: int,
                      num_workers: int = 0, pin_memory: bool = False) -> tuple[DataLoader, ResumableSampler]:
    sampler = ResumableSampler(dataset, info, seed=seed)
    if sampler.num_samples < batch_size:
        raise ValueError(
            f"batch_size={batch_size} is larger than the {sampler.num_samples} samples per process "
            f"(dataset of {len(dataset)} over {info.world_size} process(es))")
    # worker seeds come from this generator, reseeded per epoch by the trainer
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=True,
                        num_workers=num_workers, pin_memory=pin_memory,
                        persistent_workers=False, generator=torch.Generator(),
                        worker_init_fn=_ignore_stop_signals if num_workers > 0 else None)
    return loader, sampler


def batches_per_epoch(sampler: ResumableSampler, batch_size: int) -> int:
    return sampler.num_samples // batch_size
