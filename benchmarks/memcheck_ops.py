"""Every fused op's forward+backward at awkward sizes, for compute-sanitizer to watch.

    compute-sanitizer --tool memcheck --error-exitcode 9 python benchmarks/memcheck_ops.py

The op tests compare values, which catches a wrong result but not a masked-off load that reads
past a tensor's end and happens to be discarded. Under memcheck every access is checked, so this
script drives each kernel through the paths that its launch geometry chooses between: planes
smaller than one tile and than the statistics' 256-value shift window, planes too large for the
register-resident path, few planes (se_scale's split reduction), odd widths, channels_last, and
half precision. It prints one line per case and exits 0 when every case ran.
"""
from __future__ import annotations

import argparse
import itertools

import torch

from effgan.bench import op_cases
from effgan.bench.ops_runner import _leaves, _outputs

SHAPES = [
    (1, 3, 5, 7),        # a plane smaller than any tile and than the shift window
    (2, 5, 17, 33),      # odd sizes in every dimension
    (1, 4, 1, 300),      # one row
    (3, 2, 129, 131),    # past the resident path's plane limit, odd width
    (1, 2, 300, 301),    # a large plane over few programs (split reductions)
]
DTYPES = ("float32", "bfloat16")
LAYOUTS = ("contiguous", "channels_last")


def run_case(op: str, shape, dtype: str, layout: str, impl: str, device: torch.device) -> None:
    (case,) = op_cases.cases([op], [shape], impl, channels_last=layout == "channels_last")
    d = case.make_inputs(device, getattr(torch, dtype), True)
    outs = _outputs(case.effgan(d))
    grads = [torch.randn_like(o) for o in outs]
    torch.autograd.backward(outs, grads)
    for t in _leaves(d):
        if t.grad is not None and not torch.isfinite(t.grad).all():
            raise RuntimeError(f"{case.label} {dtype}: non-finite gradient")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", default="all", help="comma-separated op names, or 'all'")
    parser.add_argument("--impl", default="triton", help="the backend to drive (default: triton)")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args(argv)
    ops = op_cases.available_ops() if args.ops == "all" else args.ops.split(",")
    unknown = sorted(set(ops) - set(op_cases.available_ops()))
    if unknown:
        parser.error(f"--ops: unknown op(s) {unknown}; known: {op_cases.available_ops()}")
    device = torch.device(args.device)
    for op, shape, dtype, layout in itertools.product(ops, SHAPES, DTYPES, LAYOUTS):
        run_case(op, shape, dtype, layout, args.impl, device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        print(f"ok {op} {'x'.join(map(str, shape))} {dtype} {layout}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
