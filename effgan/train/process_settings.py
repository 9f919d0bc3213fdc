"""Process-wide settings a training run makes: CPU threads, deterministic kernels (both restored
when the run ends) and the seeds of Python's, numpy's and torch's global generators."""
from __future__ import annotations

import contextlib
import os

import torch

from effgan.train.distributed import DistInfo


@contextlib.contextmanager
def cpu_thread_count(requested: int | None, device: torch.device, info: DistInfo):
    """Intra-op threads for a CPU run (restored afterwards); GPU runs keep torch's setting."""
    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    count = requested or max(1, (os.cpu_count() or 2) // 2 // info.world_size)
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def deterministic_mode(enabled: bool):
    """Deterministic kernels for the duration of a run; the previous settings come back after."""
    if not enabled:
        yield
        return
    previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
                torch.backends.cudnn.benchmark)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be deterministic
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = previous[1], previous[2]


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
