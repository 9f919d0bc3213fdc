"""Two builds of the C++ extension timed side by side in one process, against eager PyTorch.

    python benchmarks/ab_builds.py --old ~/.cache/effgan/ext/<key>/effgan_cpp.so \
        [--ops instance_norm_act,se_scale] [--modes fwd,fwd+bwd] [--runs 40]

A change to a CPU kernel is often worth 5-30 %, and this shared machine's speed drifts by as much
between two benchmark runs, so runs before and after a change cannot separate them. Here the
current build (``--new``, default: the one effgan loads) and an earlier one (``--old``) run the op
benchmark's cases (``effgan.bench.op_cases``) in turns, call by call, with eager PyTorch between
them; it prints medians and each build's ratio to eager.
Both builds must take the same arguments (the Python launchers are today's).

The earlier build: check the earlier commit out beside this one (``git worktree add /tmp/old REV``)
and build its sources by path, since ``python -m effgan.build_ext`` builds the sources of the
installed package wherever it runs:

    EFFGAN_EXT_DIR=/tmp/ext_old python -c "from effgan import _cpp_build; _cpp_build.build(src='/tmp/old/csrc')"

then pass ``--old /tmp/ext_old/<key>/effgan_cpp.so``.
"""
from __future__ import annotations

import argparse
import os

import torch

import effgan.ops._cpp_kernels as cpp_kernels
from effgan import _backend, _cpp_build
from effgan.bench import op_cases
from effgan.bench.op_cases import CPU_SHAPES
from effgan.bench.ops_runner import _prepare, _provider_fn
from effgan.bench.timing import time_interleaved


def load_build(path: str, package: str):
    """The extension at ``path`` as ``<package>.effgan_cpp``: a module separate from the one effgan
    loaded (Python keeps one module per name, and the init symbol fixes the last component)."""
    return _cpp_build.module_from_file(path, f"{package}.{_cpp_build.EXT_NAME}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--old", required=True, help="path of the earlier build's effgan_cpp.so")
    p.add_argument("--new", default=None, help="path of the later build (default: the one effgan loads)")
    p.add_argument("--ops", default="instance_norm_act,adain,dwconv_norm_act,se_scale,cyclegan_loss")
    p.add_argument("--modes", default="fwd,fwd+bwd")
    p.add_argument("--shapes", default=";".join("x".join(map(str, s)) for s in CPU_SHAPES))
    p.add_argument("--channels-last", action="store_true", help="channels_last inputs (default: NCHW)")
    p.add_argument("--runs", type=int, default=40)
    args = p.parse_args(argv)
    for flag, path in (("--old", args.old), ("--new", args.new)):
        if path is not None and not os.path.isfile(path):
            p.error(f"{flag}: no build at {path!r} (the path of an effgan_cpp .so file)")
    if args.runs < 1:
        p.error(f"--runs must be >= 1, got {args.runs}")
    try:
        shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(";") if s]
    except ValueError:
        shapes = []
    if not shapes or any(len(shape) != 4 or min(shape) < 1 for shape in shapes):
        p.error(f"--shapes: expected positive NxCxHxW sizes separated by ';', got {args.shapes!r}")
    args.shapes = shapes

    builds = {"old": load_build(args.old, "ab_old"),
              "new": load_build(args.new, "ab_new") if args.new else _backend.cpp_extension()}
    device = torch.device("cpu")
    current = {"build": builds["new"]}
    # The launchers call cpp_extension() on every call: point it at the build whose turn it is.
    loaded = cpp_kernels.cpp_extension
    cpp_kernels.cpp_extension = lambda: current["build"]
    try:
        _compare(args, builds, current, device)
    finally:
        cpp_kernels.cpp_extension = loaded
    return 0


def _on(current: dict, build, spec: tuple) -> tuple:
    """The run ``spec`` (``ops_runner._prepare``'s) with the launchers pointed at ``build`` in its
    timed call and in its setup (a backward's forward), if it has one."""
    def with_build(fn):
        def call(item):
            current["build"] = build
            return fn(item)

        return call

    return tuple(with_build(f) if callable(f) else f for f in spec)


def _compare(args, builds: dict, current: dict, device: torch.device) -> None:
    shapes = args.shapes
    print(f"old: {args.old}\nnew: {args.new or builds['new'].__file__}")
    print("| op | shape | mode | old ms | new ms | eager ms | new / old | old vs eager | new vs eager |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for op in args.ops.split(","):
        _backend.resolve_impl("cpp", device, op)  # checked once, against the build effgan loaded
        for shape in shapes:
            (case,) = op_cases.cases([op], [shape], "cpp", channels_last=args.channels_last)
            for mode in args.modes.split(","):
                runs = {p: _prepare(_provider_fn(case, p, device, None), case, device, torch.float32, mode, 2)
                        for p in ("effgan", "eager")}
                # time_interleaved shuffles the order of every round: whatever runs right after
                # eager is slower, so a fixed order would favour one build (an A/A run, one build as
                # both, then differed by up to 29 %; shuffled, within 5 %).
                timings = time_interleaved(
                    {"old": _on(current, builds["old"], runs["effgan"]),
                     "new": _on(current, builds["new"], runs["effgan"]), "eager": runs["eager"]},
                    device, min_runs=args.runs, max_runs=args.runs, budget_s=0.0)
                med = {k: t.median_s * 1e3 for k, t in timings.items()}
                print(f"| {op} | {'x'.join(map(str, shape))} | {mode} | {med['old']:.3f} | {med['new']:.3f} | "
                      f"{med['eager']:.3f} | {med['new'] / med['old']:.2f} | {med['eager'] / med['old']:.2f}x | "
                      f"{med['eager'] / med['new']:.2f}x |", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
