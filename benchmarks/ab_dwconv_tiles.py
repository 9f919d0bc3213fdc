"""dwconv_norm_act's Triton tile geometry, choices timed against each other in one process (CUDA).

    python benchmarks/ab_dwconv_tiles.py [--shapes '8x256x128x128;1x256x64x64'] [--budget 1]
        [--choices shared,8,4,2] [--channels-last] [--kernel-size 5] [--dtype bfloat16]

Each choice of ``_conv_split`` (kernels/dwconv_norm_act.py) is captured as CUDA graphs of the op's
forward+backward, then all are replayed in turns (effgan.bench.timing.time_interleaved), with
eager PyTorch beside them: "shared" is the plane geometry the other ops use (up to 16 elements a
thread), "8", "4" and "2" cap the elements a thread holds by narrowing the pixel axis (the
launchers' choice for NCHW is 4), "c32" and "c16" cap a tile's channels instead (for channels_last,
which launches the shared geometry). This script is where alternatives get measured before the
launchers change.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools

import torch

from effgan.bench import op_cases
from effgan.bench.ops_runner import _prepare, graphed
from effgan.bench.timing import rotation_copies, time_interleaved


def _shared(conv_split):
    return lambda split, channels_last, per_thread=None: split


def _pixel_cap(per_thread: int):
    """The launchers' narrowing (fewer pixels a tile) at ``per_thread`` elements a thread."""
    return lambda conv_split: functools.partial(conv_split, per_thread=per_thread)


def _channel_cap(block_c: int):
    """Tiles of at most ``block_c`` channels, pixels and warps as shared: for channels_last, where
    the channel axis is the contiguous one and narrowing the pixel axis timed slower."""
    def make(conv_split):
        def split_fn(split, channels_last, per_thread=None):
            return split if split.BLOCK_C <= block_c else dataclasses.replace(split, BLOCK_C=block_c)
        return split_fn
    return make


# name -> (the launchers' _conv_split -> the geometry function to launch with)
CHOICES = {"shared": _shared, "8": _pixel_cap(8), "4": _pixel_cap(4), "2": _pixel_cap(2),
           "c32": _channel_cap(32), "c16": _channel_cap(16)}


def _capture(case, device, dtype, n_copies: int, choice):
    """Graphs of case.effgan's fwd+bwd with the dwconv kernels launched in the given geometry."""
    from effgan.kernels import dwconv_norm_act as kernels

    original = kernels._conv_split
    kernels._conv_split = CHOICES[choice](original)
    try:
        run, items = _prepare(case.effgan, case, device, dtype, "fwd+bwd", n_copies)
        run(items[0])
        return graphed(run, items, device)
    finally:
        kernels._conv_split = original


def _with_kernel_size(case, k: int):
    """``case`` with a (C, 1, k, k) conv weight in place of its 3x3 one (same dtype, device, grad)."""
    if k == 3:
        return case
    make_3x3 = case.make_inputs

    def make(device, dtype, rg):
        d = make_3x3(device, dtype, rg)
        w = d["weight"]
        g = torch.Generator().manual_seed(1)
        wk = torch.randn((w.shape[0], 1, k, k), generator=g).to(w.device, w.dtype)
        d["weight"] = wk.requires_grad_(w.requires_grad)
        return d

    return dataclasses.replace(case, make_inputs=make)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="8x256x128x128;1x256x64x64;1x96x128x128;8x144x56x56")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--kernel-size", type=int, default=3, choices=(3, 5))
    parser.add_argument("--choices", default="shared,8,4,2",
                        help=f"comma-separated geometries from {list(CHOICES)} ('shared' is always timed)")
    parser.add_argument("--budget", type=float, default=1.0, help="seconds of replays per choice and shape")
    args = parser.parse_args(argv)
    try:
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(";") if s]
    except ValueError:
        parser.error(f"--shapes must be NxCxHxW separated by ';', got {args.shapes!r}")
    if not shapes or any(len(s) != 4 or min(s) < 1 for s in shapes):
        parser.error(f"--shapes must be NxCxHxW separated by ';', got {args.shapes!r}")
    if args.budget <= 0:
        parser.error(f"--budget must be > 0 seconds, got {args.budget}")
    choices = ["shared"] + [c for c in args.choices.split(",") if c and c != "shared"]
    unknown = [c for c in choices if c not in CHOICES]
    if unknown:
        parser.error(f"--choices must name geometries from {list(CHOICES)}, got {unknown}")
    if not torch.cuda.is_available():
        parser.error("needs a CUDA device (the geometry is the GPU's)")
    device, dtype = torch.device("cuda"), getattr(torch, args.dtype)
    print(f"{torch.cuda.get_device_name()}: dwconv_norm_act fwd+bwd, CUDA-graph replays, {args.dtype}"
          f"{', channels_last' if args.channels_last else ''}, {args.kernel_size}x{args.kernel_size}")
    print("| shape | " + " | ".join(f"{c} ms" for c in choices) + " | eager ms | best vs shared |")
    print("|---|" + "---:|" * (len(choices) + 2))
    for shape in shapes:
        (case,) = op_cases.cases(["dwconv_norm_act"], [shape], "auto", channels_last=args.channels_last)
        case = _with_kernel_size(case, args.kernel_size)
        n = rotation_copies(case.bytes_fwd * dtype.itemsize, device)
        runs = {c: _capture(case, device, dtype, n, c) for c in choices}
        eager_run, eager_items = _prepare(case.eager, case, device, dtype, "fwd+bwd", n)
        runs["eager"] = graphed(eager_run, eager_items, device)
        timings = time_interleaved(runs, device, budget_s=args.budget)
        t = {name: timing.median_s * 1e3 for name, timing in timings.items()}
        best = min(choices, key=lambda c: t[c])
        print(f"| {'x'.join(map(str, shape))} | " + " | ".join(f"{t[c]:.3f}" for c in choices)
              + f" | {t['eager']:.3f} | {best}: {t['shared'] / t[best]:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
