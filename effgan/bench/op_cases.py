"""Benchmark cases for the fused ops: inputs, the three providers, and the bytes each pass must move.

Providers: ``effgan`` (the op with impl="auto": Triton on CUDA, C++ on the CPU), ``eager`` (the
op's ``_ref``, i.e. the composite a user would write; cuDNN/ATen kernels), ``compile``
(torch.compile of that same composite). The minimal bytes are what any implementation must read
and write (inputs once, outputs once), so GB/s = bytes / time compares against the copy bandwidth.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

import effgan.ops as ops

# (N, C, H, W): CycleGAN at batch 1 and 256² (64 channels after the stem, 256 in the
# transformer), EfficientNet block shapes, and batch 8-32.
GPU_SHAPES = [(1, 64, 256, 256), (1, 256, 64, 64), (8, 128, 64, 64), (16, 64, 128, 128), (32, 256, 32, 32)]
CPU_SHAPES = [(1, 256, 64, 64), (1, 64, 256, 256), (4, 128, 64, 64)]
QUICK_GPU_SHAPES = [(1, 256, 64, 64), (8, 128, 64, 64), (16, 64, 128, 128)]
QUICK_CPU_SHAPES = [(1, 256, 64, 64)]


@dataclass
class OpCase:
    op: str
    shape: tuple
    make_inputs: Callable[[torch.device, torch.dtype, bool], dict]
    effgan: Callable[[dict], object]
    eager: Callable[[dict], object]
    bytes_fwd: int
    bytes_bwd: int

    @property
    def label(self) -> str:
        return f"{self.op}[{'x'.join(map(str, self.shape))}]"


def _rand(shape, device, dtype, requires_grad, gen):
    t = torch.randn(shape, generator=gen, device="cpu", dtype=torch.float32).to(device=device, dtype=dtype)
    return t.requires_grad_(requires_grad)


def _instance_norm_act_case(shape, impl: str) -> OpCase:
    N, C, H, W = shape

    def make(device, dtype, rg):
        g = torch.Generator().manual_seed(0)
        return {
            "x": _rand(shape, device, dtype, rg, g),
            "weight": _rand((C,), device, torch.float32, rg, g),
            "bias": _rand((C,), device, torch.float32, rg, g),
            "residual": _rand(shape, device, dtype, rg, g),
        }

    kw = dict(act="relu")
    el = N * C * H * W
    return OpCase(
        "instance_norm_act", shape, make,
        lambda d: ops.instance_norm_act(d["x"], d["weight"], d["bias"], d["residual"], impl=impl, **kw),
        lambda d: ops.instance_norm_act_ref(d["x"], d["weight"], d["bias"], d["residual"], **kw),
        bytes_fwd=3 * el, bytes_bwd=3 * el,  # fwd: x, residual in, y out; bwd: x, dy in, dx out
    )


def _adain_case(shape, impl: str) -> OpCase:
    N, C, H, W = shape

    def make(device, dtype, rg):
        g = torch.Generator().manual_seed(0)
        return {
            "x": _rand(shape, device, dtype, rg, g),
            "style_scale": _rand((N, C), device, torch.float32, rg, g),
            "style_bias": _rand((N, C), device, torch.float32, rg, g),
            "noise": _rand((N, 1, H, W), device, dtype, False, g),
            "noise_weight": _rand((C,), device, torch.float32, rg, g),
            "bias": _rand((C,), device, torch.float32, rg, g),
        }

    def call(fn, d, **extra):
        return fn(d["x"], d["style_scale"], d["style_bias"], d["noise"], d["noise_weight"], d["bias"], **extra)

    el = N * C * H * W
    return OpCase("adain", shape, make, lambda d: call(ops.adain, d, impl=impl), lambda d: call(ops.adain_ref, d),
                  bytes_fwd=2 * el, bytes_bwd=3 * el)


CASE_BUILDERS = {"instance_norm_act": _instance_norm_act_case, "adain": _adain_case}


def register(op: str, builder: Callable[[tuple, str], OpCase]) -> None:
    CASE_BUILDERS[op] = builder


def available_ops() -> list[str]:
    return [op for op in CASE_BUILDERS if hasattr(ops, op)]


def cases(op_names, shapes, impl: str = "auto") -> list[OpCase]:
    return [CASE_BUILDERS[op](tuple(s), impl) for op in op_names for s in shapes]
