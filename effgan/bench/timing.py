"""Timing that means the same thing on every device: median of repeated runs after warm-up.

On CUDA the clock is a pair of CUDA events per run; on the CPU, perf_counter. On both the inputs
(and the output gradients a backward reads) rotate through copies whose total size exceeds the
last-level cache (a GPU's L2; a CPU's L3, which at 32 MiB holds a 4 MiB op's whole working set), so
a run cannot read the previous run's data from cache: the op reads its inputs from memory, as it
does in a network whose other layers have moved its inputs out.

Python's cyclic garbage collector is paused during timed runs (as ``timeit`` does): a full
collection of a process that has imported torch and inductor takes milliseconds and would land
on whichever run happened to trigger it. Competing implementations are timed interleaved
(``time_interleaved``): run i of every provider comes before run i + 1 of any, so a slow spell
of a shared machine costs them alike and their ratio stays meaningful. Within a round the order
is shuffled (seeded, so a rerun repeats it): on the CPU whatever runs right after eager PyTorch
is slower (up to 3x for a 4 MiB forward; likely the memory eager's temporaries hand back, which
the next provider's fresh allocations then fault in again), and a fixed order, or a rotation of
one, hands that cost to the same provider every time.
"""
from __future__ import annotations

import contextlib
import gc
import glob
import os
import random
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


@contextlib.contextmanager
def gc_paused():
    """Python's garbage collector off inside (after one collection), back as it was afterwards."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _time_once(fn: Callable[[object], object], inp: object, device: torch.device) -> float:
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(inp)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    fn(inp)
    return time.perf_counter() - t0


def _summary(times: list[float]) -> Timing:
    # Percentiles interpolated between the sorted runs (numpy's default), as the median is: indexing
    # at int(f * n) gave the 20th percentile from above and the 80th from the slowest runs (of 5,
    # the maximum), so the spread leaned towards the slow side.
    if len(times) < 2:
        return Timing(times[0], times[0], times[0], len(times))
    p20, _, _, p80 = statistics.quantiles(times, n=5, method="inclusive")
    return Timing(statistics.median(times), p20, p80, len(times))


def _arg(setup: Callable[[object], object] | None, item: object) -> object:
    return item if setup is None else setup(item)


def time_interleaved(
    runs: dict[str, tuple],
    device: torch.device,
    *,
    warmup: int = 3,
    min_runs: int = 5,
    max_runs: int = 200,
    budget_s: float = 1.0,
) -> dict[str, Timing]:
    """Median times of each ``fn(inputs[i % len(inputs)])`` in ``runs`` (name -> (fn, inputs)),
    the providers taking turns run by run; runs until ``budget_s`` per provider or ``max_runs``.

    A run given as (fn, inputs, setup) times ``fn(setup(inputs[i % len(inputs)]))`` and leaves the
    setup out of the time: work each run needs done afresh but that is not what is measured (a
    backward's forward, whose graph a backward consumes).
    """
    if max_runs < 1:
        raise ValueError(f"max_runs must be >= 1 (a median needs a run), got {max_runs}")
    runs = {name: (spec[0], spec[1], spec[2] if len(spec) > 2 else None) for name, spec in runs.items()}
    empty = [name for name, (_, inputs, _) in runs.items() if len(inputs) == 0]
    if empty:
        raise ValueError(f"inputs of {empty} are empty: each run needs at least one item to call fn on")
    for name, (fn, inputs, setup) in runs.items():
        for i in range(warmup):
            fn(_arg(setup, inputs[i % len(inputs)]))
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in runs}
    total_budget = budget_s * len(runs)
    order = list(runs)
    shuffler = random.Random(0)
    with gc_paused():
        start_all = time.perf_counter()
        i = 0
        while i < max_runs and (i < min_runs or time.perf_counter() - start_all < total_budget):
            shuffler.shuffle(order)
            for name in order:
                fn, inputs, setup = runs[name]
                times[name].append(_time_once(fn, _arg(setup, inputs[i % len(inputs)]), device))
            i += 1
    return {name: _summary(t) for name, t in times.items()}


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
    return time_interleaved({"fn": (fn, inputs)}, device, warmup=warmup, min_runs=min_runs, max_runs=max_runs,
                            budget_s=budget_s)["fn"]


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


# Where the last-level cache size cannot be read: an H100's L2 (50 MiB); a server CPU's L3 (32 MiB).
DEFAULT_LAST_LEVEL_CACHE = {"cuda": 50 * 2**20, "cpu": 32 * 2**20}


def last_level_cache_bytes(device: torch.device) -> int:
    """The device's largest cache: the GPU's L2, or the CPU's largest data cache (from sysfs)."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return int(getattr(props, "L2_cache_size", 0)) or DEFAULT_LAST_LEVEL_CACHE["cuda"]
    sizes = []
    for index in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            with open(os.path.join(index, "type")) as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(os.path.join(index, "size")) as f:
                text = f.read().strip().upper()
        except OSError:
            continue
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        try:
            sizes.append(int(text.rstrip("KMG")) * scale)
        except ValueError:
            continue
    return max(sizes, default=DEFAULT_LAST_LEVEL_CACHE["cpu"])


def rotation_copies(nbytes_per_input: int, device: torch.device, *, cache_bytes: int | None = None) -> int:
    """How many input copies to rotate through so their total is twice the last-level cache."""
    if nbytes_per_input <= 0:
        return 1
    cache = last_level_cache_bytes(device) if cache_bytes is None else cache_bytes
    return max(1, min(16, -(-2 * cache // nbytes_per_input)))
