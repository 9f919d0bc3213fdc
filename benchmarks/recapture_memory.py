"""GPU memory across CUDA-graph re-captures of a training step (CUDA only).

    python benchmarks/recapture_memory.py [--model cyclegan-resnet9-256-b1] [--recaptures 4]

A family that replays its step as CUDA graphs re-captures them whenever the learning rate changes
(fused Adam keeps the lr of its capture; ``GraphedPhase.recapture``). This builds the training step
of the end-to-end benchmark (``fused+graphs``), lets it capture, then re-captures it several times,
printing after each: the memory allocated, the peak since the previous line, and the memory the
caching allocator holds. Allocated memory that grows by about the same amount at every re-capture
means the old graphs' memory outlives them.
"""
from __future__ import annotations

import argparse

import torch

from effgan.bench import e2e


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cyclegan-resnet9-256-b1", help="an end-to-end model label")
    parser.add_argument("--recaptures", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="replayed steps after each capture")
    args = parser.parse_args(argv)
    if args.model not in e2e.SPECS_BY_LABEL:
        parser.error(f"--model must be one of {list(e2e.SPECS_BY_LABEL)}, got {args.model!r}")
    if args.recaptures < 1 or args.steps < 1:
        parser.error(f"--recaptures and --steps must be >= 1, got {args.recaptures} and {args.steps}")
    if not torch.cuda.is_available():
        parser.error("needs a CUDA device (CUDA graphs)")
    device = torch.device("cuda")
    step, batches = e2e.step_fn(e2e.SPECS_BY_LABEL[args.model], e2e.VARIANTS_BY_NAME["fused+graphs"], device)
    mib = 2 ** 20

    def run(label: str, n: int) -> None:
        torch.cuda.reset_peak_memory_stats(device)
        for i in range(n):
            step(batches[i % len(batches)])
        torch.cuda.synchronize(device)
        print(f"{label:>14s}: allocated {torch.cuda.memory_allocated(device) / mib:9.1f} MiB, "
              f"peak {torch.cuda.max_memory_allocated(device) / mib:9.1f} MiB, "
              f"reserved {torch.cuda.memory_reserved(device) / mib:9.1f} MiB", flush=True)

    print(f"{args.model}, fused + CUDA graphs, {torch.cuda.get_device_name(device)}")
    run("first capture", 8)  # warm-up steps on a side stream, the capture, replays
    for k in range(1, args.recaptures + 1):
        step.family.lr_changed()
        run(f"re-capture {k}", args.steps + 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
