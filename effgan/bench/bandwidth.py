"""The device's achievable memory bandwidth, measured with a large copy in the same run."""
from __future__ import annotations

import torch

from effgan.bench.timing import time_fn


def copy_bandwidth(device: torch.device, *, nbytes: int | None = None) -> float:
    """Bytes per second of ``dst.copy_(src)``, counting bytes read plus bytes written."""
    if nbytes is None:
        nbytes = 1 << 30 if device.type == "cuda" else 256 << 20
    n = nbytes // 4
    src = torch.randn(n, device=device)
    dst = torch.empty_like(src)
    t = time_fn(lambda _: dst.copy_(src), [None], device, warmup=2, min_runs=5, budget_s=0.5)
    return 2 * nbytes / t.median_s


def matmul_flops(device: torch.device, dtype: torch.dtype = torch.float32) -> float:
    """FLOP/s of a large square matmul: the compute ceiling for the flops floor."""
    n = 8192 if device.type == "cuda" else 1024
    if device.type == "cuda" and dtype == torch.float32:
        dtype = torch.bfloat16
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    t = time_fn(lambda _: a @ b, [None], device, warmup=2, min_runs=3, budget_s=0.5)
    return 2 * n**3 / t.median_s
