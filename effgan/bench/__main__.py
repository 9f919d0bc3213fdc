"""python -m effgan.bench: op and end-to-end benchmarks on whatever device is present.

Writes one JSON file (device, driver, versions, commit, every timing) and prints a summary table
last: effgan's fused ops against eager PyTorch and torch.compile of the same composite, measured
side by side in this one run, plus the device's copy bandwidth measured in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from effgan._paths import probe_writable
from effgan.bench import op_cases
from effgan.bench.bandwidth import copy_bandwidth
from effgan.bench.device_info import device_info, device_slug
from effgan.bench.ops_runner import MODES, PROVIDERS, run_op_benchmarks, speedup_table
from effgan.bench.report import format_e2e_table, format_speedup_table

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m effgan.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="device to benchmark on (default: cuda when present, else cpu)")
    p.add_argument("--quick", action="store_true",
                   help="a reduced set of shapes and modes that fits in a few minutes")
    p.add_argument("--ops", default="all", help="comma-separated op names, or 'all' (default), or 'none'")
    p.add_argument("--shapes", default=None,
                   help="semicolon-separated NxCxHxW shapes overriding the default table, e.g. '1x64x256x256;8x128x64x64'")
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="activation dtype for the op benchmarks")
    p.add_argument("--channels-last", action="store_true",
                   help="the op benchmarks' 4-D inputs in channels_last memory format (default: NCHW)")
    p.add_argument("--providers", default=",".join(PROVIDERS), help=f"subset of {PROVIDERS}")
    p.add_argument("--modes", default=None, help=f"subset of {MODES} (default: all; --quick: fwd+bwd and fwd)")
    p.add_argument("--compile-mode", default=None,
                   help="torch.compile mode for the compile provider (default: max-autotune-no-cudagraphs on "
                        "CUDA without --quick, else the default mode)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="time the op benchmarks as replays of CUDA graphs, each provider's calls captured once: "
                        "the kernels' GPU time without the host work that dominates small shapes (CUDA only)")
    p.add_argument("--e2e", default="auto", choices=["auto", "yes", "no"],
                   help="run the end-to-end training-step benchmark (auto: yes)")
    p.add_argument("--e2e-models", default=None,
                   help="comma-separated end-to-end model labels to run (default: the device's set; see effgan/bench/e2e.py)")
    p.add_argument("--e2e-variants", default=None,
                   help="comma-separated end-to-end variants to run (default: all; see effgan/bench/e2e.py)")
    p.add_argument("--budget", type=float, default=None, help="seconds of timed runs per measurement")
    p.add_argument("--out", default=None,
                   help="JSON path (default: benchmarks/results/<device>.json, with -quick, -graphs, -channels-last, "
                        "-<dtype>, -compile-<mode> and -partial (a subset of --ops, --shapes, --providers, --modes, "
                        "--e2e-models or --e2e-variants, or --e2e no) suffixes where they apply)")
    return p.parse_args(argv)


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def default_compile_mode(device_type: str, quick: bool) -> str:
    """The compile provider's mode when --compile-mode is not given."""
    return "max-autotune-no-cudagraphs" if device_type == "cuda" and not quick else "default"


def default_out_path(args, info) -> str:
    """benchmarks/results/<device>[-quick][-graphs][-channels-last][-<dtype>][-compile-<mode>][-partial].json:
    a run with a subset of the ops, shapes, providers, modes or end-to-end models and variants, or
    other inputs, never overwrites the device's full results."""
    name = device_slug(info)
    if args.quick:
        name += "-quick"
    if args.cuda_graphs:
        name += "-graphs"
    if args.channels_last:
        name += "-channels-last"
    if args.dtype != "float32":
        name += f"-{args.dtype}"
    if args.compile_mode not in (None, default_compile_mode(info.get("device_type"), args.quick)):
        name += f"-compile-{args.compile_mode}"
    all_modes = {"fwd", "fwd+bwd"} if args.quick else set(MODES)
    modes_subset = args.modes is not None and set(args.modes.split(",")) != all_modes
    e2e_subset = args.e2e == "no" or args.e2e_models or args.e2e_variants
    if args.ops != "all" or args.shapes or set(args.providers.split(",")) != set(PROVIDERS) or modes_subset \
            or e2e_subset:
        name += "-partial"
    return os.path.join("benchmarks", "results", f"{name}.json")


def _shapes(args, device):
    if args.shapes:
        try:
            shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes.split(";") if s]
        except ValueError:
            shapes = []
        if not shapes or any(len(shape) != 4 or min(shape) < 1 for shape in shapes):
            raise SystemExit(f"--shapes: expected positive NxCxHxW sizes separated by ';', got {args.shapes!r}")
        return shapes
    if device.type == "cuda":
        return op_cases.QUICK_GPU_SHAPES if args.quick else op_cases.GPU_SHAPES
    return op_cases.QUICK_CPU_SHAPES if args.quick else op_cases.CPU_SHAPES


def _subset(value: str, flag: str, known) -> list[str]:
    """The comma-separated names of ``value``, each one of ``known``."""
    names = [v for v in value.split(",") if v]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"{flag}: unknown {unknown}; known: {sorted(known)}")
    if not names:
        raise SystemExit(f"{flag}: expected comma-separated names of {sorted(known)}, got {value!r}")
    return names


def _device(text: str) -> torch.device:
    try:
        device = torch.device(text)
    except RuntimeError:
        raise SystemExit(f"--device: expected cpu or cuda[:N], got {text!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise SystemExit(f"--device: expected cpu or cuda[:N], got {text!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    return device


def _check_writable(out: str) -> None:
    """--out's folder can be made and a file written beside the result (its temporary name), before
    the first measurement rather than after the last."""
    try:
        probe_writable(out)
    except OSError as error:
        raise SystemExit(f"--out: {out!r} cannot be written ({error.strerror or error})") from None


def main(argv=None) -> int:
    args = parse_args(argv)
    # Every argument is checked before the first measurement: a typo must not cost a run's minutes,
    # nor its results (an --out that cannot be written would only fail at the end).
    device = _device(args.device)
    if args.cuda_graphs and device.type != "cuda":
        raise SystemExit("--cuda-graphs needs a CUDA device")
    if args.budget is not None and not args.budget > 0:
        raise SystemExit(f"--budget: expected seconds > 0, got {args.budget}")
    providers = _subset(args.providers, "--providers", PROVIDERS)
    modes = _subset(args.modes, "--modes", MODES) if args.modes else (["fwd", "fwd+bwd"] if args.quick else list(MODES))
    if args.out is not None and os.path.isdir(args.out):
        raise SystemExit(f"--out: {args.out!r} is a folder; give the JSON file's path")
    if args.compile_mode is not None and args.compile_mode not in COMPILE_MODES:
        raise SystemExit(f"--compile-mode: expected one of {COMPILE_MODES}, got {args.compile_mode!r}")
    available = op_cases.available_ops()
    names = available if args.ops == "all" else [] if args.ops == "none" else args.ops.split(",")
    unknown = [n for n in names if n not in op_cases.CASE_BUILDERS]
    if unknown:
        raise SystemExit(f"--ops: unknown {unknown}; known: {sorted(op_cases.CASE_BUILDERS)}")
    cases = op_cases.cases(names, _shapes(args, device), channels_last=args.channels_last)
    specs = variants = None
    if args.e2e != "no":
        from effgan.bench import e2e  # the training stack: imported only when a step is timed

        if args.e2e_models:
            specs = [e2e.SPECS_BY_LABEL[name]
                     for name in _subset(args.e2e_models, "--e2e-models", e2e.SPECS_BY_LABEL)]
        variants = e2e.VARIANTS
        if args.e2e_variants:
            variants = tuple(e2e.VARIANTS_BY_NAME[name]
                             for name in _subset(args.e2e_variants, "--e2e-variants", e2e.VARIANTS_BY_NAME))
            unrunnable = [f"{v.name} ({e2e.skip_reason(v, device)})" for v in variants if e2e.skip_reason(v, device)]
            if unrunnable:  # asked for by name: not silently left out, as the default set's are
                raise SystemExit(f"--e2e-variants: cannot run on {device.type}: {', '.join(unrunnable)}")
    info = device_info(device)
    out = args.out or default_out_path(args, info)
    _check_writable(out)
    print(f"effgan.bench on {info['device']} (torch {info['torch']}, triton {info['triton']}, commit {info['commit']})")
    t_start = time.time()
    bw = copy_bandwidth(device)
    print(f"copy bandwidth: {bw / 1e9:.1f} GB/s (read + write)")

    compile_mode = args.compile_mode or default_compile_mode(device.type, args.quick)
    budget = args.budget if args.budget is not None else (0.3 if args.quick else 1.0)
    argv_used = sys.argv[1:] if argv is None else list(argv)

    def save(complete: bool) -> None:
        # Saved after the op table and after each end-to-end model as well as at the end, marked
        # incomplete until then: a run stopped by a time limit keeps what it measured.
        result = {"info": info, "copy_bandwidth_gbps": bw / 1e9, "compile_mode": compile_mode, "ops": rows,
                  "speedups": speedups, "e2e": e2e_rows, "complete": complete, "wall_s": time.time() - t_start,
                  "argv": argv_used}
        os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
        tmp = f"{out}.tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, out)

    rows = run_op_benchmarks(cases, device, dtype=DTYPES[args.dtype], providers=providers, modes=modes,
                             bandwidth=bw, budget_s=budget, compile_mode=compile_mode, cuda_graphs=args.cuda_graphs)
    speedups = speedup_table(rows)
    e2e_rows = []
    save(complete=False)

    if args.e2e != "no":
        def keep(rows_so_far):
            e2e_rows[:] = rows_so_far
            save(complete=False)

        e2e_rows = e2e.run_e2e_benchmarks(device, quick=args.quick, budget_s=budget, specs=specs,
                                          variants=variants, on_model_done=keep)

    save(complete=True)
    print(f"\nwrote {out}\n")
    print(f"Summary on {info['device']} ({info['date']}), copy bandwidth {bw / 1e9:.1f} GB/s")
    print(format_speedup_table(speedups))
    if rows and not speedups:
        print("(the summary compares forward+backward: add fwd+bwd to --modes for its rows; every timing is "
              "in the JSON)")
    if e2e_rows:
        print()
        print(format_e2e_table(e2e_rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
