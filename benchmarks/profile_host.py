"""Where the host time of one fused call goes: Python functions (cProfile) and torch ops (profiler).

    python benchmarks/profile_host.py --op instance_norm_act --shape 1x256x64x64 [--device cuda]

At small shapes a fused op's forward+backward is bound by host work (checks, backend choice,
the autograd Function, allocation, kernel launches), not by the device. This prints, for the
effgan provider and the eager composite side by side: the mean wall time per fwd+bwd, the
Python functions with the most own time per call, and the torch ops with the most CPU time.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time

import torch

from effgan.bench import op_cases
from effgan.bench.ops_runner import _leaves, _outputs  # what the op benchmark times, the same way


def _fwd_bwd(fn, d, grads):
    for t in _leaves(d):
        t.grad = None
    torch.autograd.backward(_outputs(fn(d)), grads)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile_provider(name, fn, d, device, calls: int, top: int) -> None:
    grads = [torch.randn_like(o) for o in _outputs(fn(d))]
    for _ in range(20):
        _fwd_bwd(fn, d, grads)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(calls):
        _fwd_bwd(fn, d, grads)
    _sync(device)
    per_call_us = (time.perf_counter() - t0) / calls * 1e6
    print(f"\n=== {name}: {per_call_us:.1f} us per fwd+bwd (host loop of {calls}, synchronised at the end)")

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(calls):
        _fwd_bwd(fn, d, grads)
    _sync(device)
    prof.disable()
    out = io.StringIO()
    stats = pstats.Stats(prof, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    print(f"--- Python functions by own time ({calls} calls; divide by {calls} for per call)")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])

    acts = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=acts) as p:
        for _ in range(calls):
            _fwd_bwd(fn, d, grads)
        _sync(device)
    print(f"--- torch ops by self CPU time ({calls} calls)")
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=top))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", default="instance_norm_act", choices=op_cases.available_ops())
    parser.add_argument("--shape", default="1x256x64x64")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error(f"--calls must be >= 1, got {args.calls}")
    try:
        shape = tuple(int(s) for s in args.shape.lower().split("x"))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        parser.error(f"--shape: expected positive NxCxHxW sizes, got {args.shape!r}")
    device = torch.device(args.device)
    (case,) = op_cases.cases([args.op], [shape])
    d = case.make_inputs(device, torch.float32, True)
    for name, fn in (("effgan", case.effgan), ("eager", case.eager)):
        profile_provider(name, fn, d, device, args.calls, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
