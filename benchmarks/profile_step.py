"""Where one training step's time goes, for each way of running it: host vs device, ops, Python.

    python benchmarks/profile_step.py --model cyclegan-resnet9-256-b1 --variants eager,fused

The step is the end-to-end benchmark's (effgan.bench.e2e: the family's own train_step). For
each variant this prints the wall time per step (synchronised), and over a few profiled steps:
the device's busy time (the sum of its kernels and copies), the number of kernels launched, the
torch ops with the most CPU time, and the Python functions with the most own time. A step
whose wall time is far above its device time is bound by host work; the two variants' tables
side by side show which host work the slower one adds.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import pstats
import statistics
import time

import torch

from effgan.bench import e2e
from effgan.bench.timing import gc_paused

LAUNCH_CALLS = ("cudaLaunchKernel", "cuLaunchKernel", "cuLaunchKernelEx", "cudaLaunchKernelExC")


def find_spec(label: str) -> e2e.ModelSpec:
    if label not in e2e.SPECS_BY_LABEL:
        raise ValueError(f"--model must be one of {list(e2e.SPECS_BY_LABEL)}, got {label!r}")
    return e2e.SPECS_BY_LABEL[label]


def find_variant(name: str) -> e2e.Variant:
    if name not in e2e.VARIANTS_BY_NAME:
        raise ValueError(f"--variants must name some of {list(e2e.VARIANTS_BY_NAME)}, got {name!r}")
    return e2e.VARIANTS_BY_NAME[name]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_summary(prof, steps: int) -> str:
    """Device busy time and kernel count per step, and host launch calls per step."""
    device_us, kernels, launches = 0.0, 0, 0
    for event in prof.events():
        if event.device_type == torch.autograd.DeviceType.CUDA:
            device_us += event.time_range.elapsed_us()
            kernels += 1
        elif event.name in LAUNCH_CALLS:
            launches += 1
    return (f"device busy {device_us / steps / 1e3:.2f} ms/step, {kernels / steps:.0f} device kernels/copies "
            f"a step, {launches / steps:.0f} launch calls a step")


def profile_variant(spec: e2e.ModelSpec, variant: e2e.Variant, device: torch.device, *, steps: int,
                    warmup: int, top: int, gc_enabled: bool = True) -> None:
    # Python's collector on (as in training) or paused (as effgan.bench times), to see what its pauses add
    with contextlib.nullcontext() if gc_enabled else gc_paused():
        _profile_variant(spec, variant, device, steps=steps, warmup=warmup, top=top)


def _profile_variant(spec: e2e.ModelSpec, variant: e2e.Variant, device: torch.device, *, steps: int,
                     warmup: int, top: int) -> None:
    step, batches = e2e.step_fn(spec, variant, device)
    for i in range(warmup):
        step(batches[i % 2])
    _sync(device)
    walls = []
    for i in range(max(steps, 5)):
        t0 = time.perf_counter()
        step(batches[i % 2])
        _sync(device)
        walls.append(time.perf_counter() - t0)
    paused = "" if gc.isenabled() else " (gc paused)"
    print(f"\n=== {spec.label} {variant.name}{paused}: median {statistics.median(walls) * 1e3:.1f} ms/step, "
          f"min {min(walls) * 1e3:.1f} ms (wall, synchronised after each step)")

    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for i in range(steps):
            step(batches[i % 2])
        _sync(device)
    print(f"--- {device_summary(prof, steps)} ({steps} profiled steps)")
    print(f"--- torch ops by self CPU time ({steps} steps; divide by {steps} for per step)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))

    python_profile = cProfile.Profile()
    python_profile.enable()
    for i in range(steps):
        step(batches[i % 2])
    _sync(device)
    python_profile.disable()
    out = io.StringIO()
    pstats.Stats(python_profile, stream=out).sort_stats("tottime").print_stats(top)
    print(f"--- Python functions by own time ({steps} steps)")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cyclegan-resnet9-256-b1")
    parser.add_argument("--variants", default="eager,fused")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps per variant")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--gc", action=argparse.BooleanOptionalAction, default=True,
                        help="Python's garbage collector during the steps (--no-gc pauses it)")
    args = parser.parse_args(argv)
    try:
        spec = find_spec(args.model)
        variants = [find_variant(name.strip()) for name in args.variants.split(",") if name.strip()]
        if args.steps < 1:
            raise ValueError(f"--steps must be >= 1, got {args.steps}")
    except ValueError as error:
        parser.error(str(error))
    device = torch.device(args.device)
    for variant in variants:
        profile_variant(spec, variant, device, steps=args.steps, warmup=args.warmup, top=args.top,
                        gc_enabled=args.gc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
