"""How close instance_norm_act's CPU benchmark row is to the memory floor of its harness.

    python benchmarks/instance_norm_floor.py [--shapes 1x256x64x64,4x128x64x64] [--budget 2]

The op benchmark (`python -m effgan.bench`) times forward+backward with every input a leaf that
requires a gradient, the residual included. The residual's gradient is dy itself, which the
harness still holds, so autograd copies it into `residual.grad`: two more tensor passes that a
network (whose residual is an activation) does not pay, and that effgan cannot avoid in the
harness. This prints, interleaved in one run (20th-percentile times):

- `effgan` and `eager` as the benchmark times them (residual a leaf);
- the same with the residual a constant (no copy);
- `kernels`: the C++ launchers' forward and backward alone, no autograd;
- for each row, the fraction of its floor's speed: the tensor passes any implementation must make
  (forward x, residual in, y out; backward x, dy in, dx out: 6; with the residual a leaf, the
  copy's read and write: 8) over the copy bandwidth measured in the same run; and `eager /
  floor`, the largest ratio to eager an implementation with plain stores could reach in the
  harness.

The copy bandwidth is torch's `copy_`, whose plain stores read each output line before writing
it. The C++ kernels write outputs of 4 MiB and more with streaming stores (csrc/simd.h), which do
not, so they can run faster than this floor (above 100 %).
"""
from __future__ import annotations

import argparse
import importlib

import torch

from effgan import ops
from effgan.bench.bandwidth import copy_bandwidth
from effgan.bench.timing import rotation_copies, time_interleaved

HARNESS_PASSES = 8  # with the residual a leaf; 6 without


def _input_sets(shape, copies: int) -> list[dict]:
    """``copies`` independent sets of the op's tensors: x, residual, dy, weight and bias, and leaves of
    them that require a gradient (with the residual a leaf, or the constant residual)."""
    C = shape[1]
    sets = []
    for i in range(copies):
        gen = torch.Generator().manual_seed(i)
        x, res, dy = (torch.randn(shape, generator=gen) for _ in range(3))
        w, b = torch.randn(C, generator=gen), torch.randn(C, generator=gen)
        leaves = [t.clone().requires_grad_() for t in (x, w, b, res)]
        sets.append({"plain": (x, w, b, res), "dy": dy, "leaves": leaves, "frozen_res": leaves[:3] + [res]})
    return sets


def _runs(shape):
    """name -> (run, items) for time_interleaved, and each row's tensor passes.

    The runs rotate through copies of their tensors totalling twice the last-level cache (as the op
    benchmark does): with one set, a 4 MiB plane's x, residual and dy stay in a 32 MiB L3 from run
    to run, and the rows beat the memory floor they are compared with by reading from cache."""
    tensor_bytes = 4 * torch.Size(shape).numel()
    sets = _input_sets(shape, rotation_copies(3 * tensor_bytes, torch.device("cpu")))
    kernels = importlib.import_module("effgan.ops.instance_norm_act")._kernels("cpp")

    def fwd_bwd(fn, which):
        def run(item):
            inputs = item[which]
            for t in inputs:
                t.grad = None
            torch.autograd.backward([fn(*inputs, act="relu")], [item["dy"]])
        return run

    def kernels_only(item):
        x, w, b, res = item["plain"]
        y, mean, rstd = kernels.forward(x, w, b, res, 1e-5, 1, 0.01)
        kernels.backward(item["dy"], x, w, b, mean, rstd, 1, 0.01)

    fused = lambda *a, **k: ops.instance_norm_act(*a, impl="cpp", **k)  # noqa: E731
    runs = {
        "effgan": (fwd_bwd(fused, "leaves"), sets),
        "eager": (fwd_bwd(ops.instance_norm_act_ref, "leaves"), sets),
        "effgan, residual constant": (fwd_bwd(fused, "frozen_res"), sets),
        "eager, residual constant": (fwd_bwd(ops.instance_norm_act_ref, "frozen_res"), sets),
        "kernels": (kernels_only, sets),
    }
    passes = {name: HARNESS_PASSES if name in ("effgan", "eager") else 6 for name in runs}
    return runs, passes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="1x256x64x64,1x64x256x256,4x128x64x64")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds of timed runs per row")
    args = parser.parse_args(argv)
    cpu = torch.device("cpu")
    bandwidth = copy_bandwidth(cpu)
    print(f"copy bandwidth {bandwidth / 1e9:.1f} GB/s, {torch.get_num_threads()} threads")
    for text in args.shapes.split(","):
        shape = tuple(int(s) for s in text.split("x"))
        runs, passes = _runs(shape)
        times = time_interleaved(runs, cpu, budget_s=args.budget, max_runs=2000)
        tensor_bytes = 4 * torch.Size(shape).numel()  # float32
        pass_s = tensor_bytes / bandwidth
        floor_s = HARNESS_PASSES * pass_s
        print(f"\n{text}: floor {floor_s * 1e3:.3f} ms ({HARNESS_PASSES} passes of {tensor_bytes / 2**20:.0f} MiB)")
        for name, t in times.items():
            print(f"  {name:28s} {t.p20_s * 1e3:8.3f} ms  {passes[name] * pass_s / t.p20_s:5.0%} of its floor's speed")
        p20 = {name: timing.p20_s for name, timing in times.items()}
        constant = p20["eager, residual constant"] / p20["effgan, residual constant"]
        print(f"  effgan vs eager {p20['eager'] / p20['effgan']:.2f}x; eager / floor {p20['eager'] / floor_s:.2f}x "
              f"(the ceiling with plain stores); residual constant: {constant:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
