"""One fused op's forward+backward under Nsight Compute: what bounds each of its kernels.

    ncu --profile-from-start off --section SpeedOfLight ... \
        python benchmarks/ncu_op.py --op dwconv_norm_act --shape 8x256x128x128 [--channels-last] [--provider eager]

The op runs a few times first (Triton compiles, the allocator settles); only the last
forward+backward sits between cudaProfilerStart and cudaProfilerStop, so with
``--profile-from-start off`` ncu measures that one call's kernels and nothing of the warm-up.
``--provider eager`` profiles the eager PyTorch composite instead, for where it is the faster one.
"""
from __future__ import annotations

import argparse

import torch

from effgan.bench import op_cases
from effgan.bench.ops_runner import _leaves, _outputs  # what the op benchmark times, the same way


def _fwd_bwd(fn, d, grads):
    for t in _leaves(d):
        t.grad = None
    torch.autograd.backward(_outputs(fn(d)), grads)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", default="dwconv_norm_act", choices=op_cases.available_ops())
    parser.add_argument("--shape", default="8x256x128x128")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--channels-last", action="store_true", help="4-D inputs in channels_last")
    parser.add_argument("--provider", default="effgan", choices=("effgan", "eager"))
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    try:
        shape = tuple(int(s) for s in args.shape.lower().split("x"))
    except ValueError:
        parser.error(f"--shape must look like NxCxHxW, got {args.shape!r}")
    if len(shape) != 4 or min(shape) < 1:
        parser.error(f"--shape must be four positive sizes NxCxHxW, got {args.shape!r}")
    if args.warmup < 1:
        parser.error(f"--warmup must be >= 1 (the first call compiles), got {args.warmup}")
    if not torch.cuda.is_available():
        parser.error("needs a CUDA device (Nsight Compute profiles GPU kernels)")

    (case,) = op_cases.cases([args.op], [shape], "auto", channels_last=args.channels_last)
    fn = case.effgan if args.provider == "effgan" else case.eager
    device = torch.device("cuda")
    d = case.make_inputs(device, getattr(torch, args.dtype), True)
    grads = [torch.randn_like(o) for o in _outputs(fn(d))]
    for _ in range(args.warmup):
        _fwd_bwd(fn, d, grads)
    torch.cuda.synchronize()
    torch.cuda.profiler.start()
    _fwd_bwd(fn, d, grads)
    torch.cuda.synchronize()
    torch.cuda.profiler.stop()
    print(f"profiled one forward+backward of {case.label} ({args.dtype}, {args.provider})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
