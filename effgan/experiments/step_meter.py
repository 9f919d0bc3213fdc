"""Training step time and peak memory, measured from inside a training run.

effgan.train calls a metrics hook at every checkpoint. `StepMeter` is such a hook: it
records the wall clock at each call, so with checkpoints every k steps the time
between the first and the last call divided by the steps in between is the mean
step time (the first k steps, with their warm-up, are left out). The interval
includes data loading and the checkpoint writes, as a real run does.

Peak memory over the same interval: on CUDA torch.cuda.max_memory_allocated after a
reset at the first call ("cuda_max_allocated"); on CPU the increase of the process's
resident set size over its value at the first call, sampled every few milliseconds
from /proc/self/statm ("cpu_peak_rss_delta_sampled"; short spikes between samples can
be missed); elsewhere "n/a".
"""
from __future__ import annotations

import os
import threading
import time

import torch

CPU_SAMPLE_INTERVAL_S = 0.005


def current_rss_bytes() -> int | None:
    """Resident set size of this process from /proc (Linux), or None where unavailable."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


class _RssSampler:
    def __init__(self) -> None:
        self.baseline = current_rss_bytes()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(CPU_SAMPLE_INTERVAL_S):
            rss = current_rss_bytes()
            if rss is not None and rss > self.peak:
                self.peak = rss

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak - self.baseline


class StepMeter:
    """A metrics hook for effgan.train (returns no metrics) that times the steps between checkpoints."""

    def __init__(self, device: torch.device | str, steps_per_call: int) -> None:
        if not isinstance(steps_per_call, int) or steps_per_call < 1:
            raise ValueError(f"steps_per_call must be a positive int, got {steps_per_call!r}")
        self.device = torch.device(device)
        self.steps_per_call = steps_per_call
        self.call_times: list[float] = []
        self.last_step: int | None = None  # the run's last step, where it ended off the checkpoint grid
        self._rss: _RssSampler | None = None
        self._memory_bytes: int | None = None

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, family) -> dict[str, float]:
        self._sync()
        self.call_times.append(time.perf_counter())
        if len(self.call_times) == 1:
            if self.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(self.device)
            elif current_rss_bytes() is not None:
                self._rss = _RssSampler()
        else:
            if self.device.type == "cuda":
                self._memory_bytes = torch.cuda.max_memory_allocated(self.device)
            elif self._rss is not None:
                self._memory_bytes = max(self._memory_bytes or 0, self._rss.peak - self._rss.baseline)
        return {}

    def close(self) -> None:
        if self._rss is not None:
            self._rss.stop()

    def run_ended_at(self, step: int) -> None:
        """The step the run's last checkpoint (and so the last call) was at: a run stopped early (a
        signal, a non-finite loss) checkpoints off the grid of steps_per_call."""
        self.last_step = step

    @property
    def timed_steps(self) -> int:
        """Steps from the first call (at step steps_per_call) to the last."""
        if len(self.call_times) < 2:
            return 0
        if self.last_step is not None:
            return max(0, self.last_step - self.steps_per_call)
        return (len(self.call_times) - 1) * self.steps_per_call

    @property
    def step_time_s(self) -> float | None:
        """Mean seconds per training step after the first checkpoint, or None with fewer than two calls."""
        if self.timed_steps == 0:
            return None
        return (self.call_times[-1] - self.call_times[0]) / self.timed_steps

    @property
    def memory_method(self) -> str:
        if self.device.type == "cuda":
            return "cuda_max_allocated"
        return "cpu_peak_rss_delta_sampled" if self._rss is not None else "n/a"

    @property
    def peak_memory_mb(self) -> float | None:
        return None if self._memory_bytes is None else self._memory_bytes / 2**20
