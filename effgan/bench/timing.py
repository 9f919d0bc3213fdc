"""Timing that means the same thing on every device: median of repeated runs after warm-up.

On CUDA the clock is a pair of CUDA events per run and the inputs rotate through copies whose
total size exceeds the L2 cache, so a kernel cannot read last run's data from cache. On the CPU
the clock is perf_counter; caches there are small against the benchmark tensors.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch


@dataclass(frozen=True)
class Timing:
    median_s: float
    p20_s: float
    p80_s: float
    runs: int

    def as_dict(self) -> dict:
        return {"median_ms": self.median_s * 1e3, "p20_ms": self.p20_s * 1e3, "p80_ms": self.p80_s * 1e3,
                "runs": self.runs}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(
    fn: Callable[[object], object],
    inputs: Sequence[object],
    device: torch.device,
    *,
    warmup: int = 3,
    min_runs: int = 5,
    max_runs: int = 200,
    budget_s: float = 1.0,
) -> Timing:
    """Median time of ``fn(inputs[i % len(inputs)])``; runs until ``budget_s`` or ``max_runs``."""
    for i in range(warmup):
        fn(inputs[i % len(inputs)])
    _sync(device)
    times: list[float] = []
    start_all = time.perf_counter()
    i = 0
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start_all < budget_s):
        inp = inputs[i % len(inputs)]
        i += 1
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(inp)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn(inp)
            times.append(time.perf_counter() - t0)
    times.sort()
    q = lambda f: times[min(len(times) - 1, int(f * len(times)))]  # noqa: E731
    return Timing(statistics.median(times), q(0.2), q(0.8), len(times))


def peak_memory(fn: Callable[[], object], device: torch.device) -> int | None:
    """Peak bytes allocated by one call of ``fn`` on CUDA (None on other devices)."""
    if device.type != "cuda":
        return None
    _sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    fn()
    _sync(device)
    return torch.cuda.max_memory_allocated(device) - base


def rotation_copies(nbytes_per_input: int, device: torch.device, *, l2_bytes: int = 50 * 2**20) -> int:
    """How many input copies to rotate through so their total exceeds the L2 cache (GPU only)."""
    if device.type != "cuda" or nbytes_per_input <= 0:
        return 1
    return max(1, min(16, -(-2 * l2_bytes // nbytes_per_input)))
