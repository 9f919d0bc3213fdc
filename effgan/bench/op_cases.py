"""Benchmark cases for the fused ops: inputs, the three providers, and the bytes each pass must move.

Providers: ``effgan`` (the op with impl="auto": Triton on CUDA, C++ on the CPU), ``eager`` (the
op's ``_ref``, i.e. the composite a user would write; cuDNN/ATen kernels), ``compile``
(torch.compile of that same composite). The minimal bytes are what any implementation must read
and write (inputs once, outputs once), so GB/s = bytes / time compares against the copy bandwidth.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
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
    memory_format: str = "contiguous"  # of the 4-D inputs: "contiguous" (NCHW) or "channels_last"

    @property
    def label(self) -> str:
        layout = ", channels_last" if self.memory_format == "channels_last" else ""
        return f"{self.op}[{'x'.join(map(str, self.shape))}{layout}]"


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


def _dwconv_norm_act_case(shape, impl: str) -> OpCase:
    N, C, H, W = shape

    def make(device, dtype, rg):
        g = torch.Generator().manual_seed(0)
        return {
            "x": _rand(shape, device, dtype, rg, g),
            "weight": _rand((C, 1, 3, 3), device, dtype, rg, g),  # the conv's weight has x's dtype
            "norm_weight": _rand((C,), device, torch.float32, rg, g),
            "norm_bias": _rand((C,), device, torch.float32, rg, g),
        }

    def call(fn, d, **extra):
        return fn(d["x"], d["weight"], None, d["norm_weight"], d["norm_bias"], act="silu", **extra)

    el = N * C * H * W
    # fwd: x in, y out; bwd: x, dy in, dx out (the kernel's fp32 pre-norm gradient temporary is extra)
    return OpCase("dwconv_norm_act", shape, make, lambda d: call(ops.dwconv_norm_act, d, impl=impl),
                  lambda d: call(ops.dwconv_norm_act_ref, d), bytes_fwd=2 * el, bytes_bwd=3 * el)


def _se_scale_case(shape, impl: str) -> OpCase:
    N, C, H, W = shape

    def make(device, dtype, rg):
        g = torch.Generator().manual_seed(0)
        # The gate comes from the SE block's 1x1 convs, so it has the activations' dtype (the op
        # takes one dtype for both).
        return {"x": _rand(shape, device, dtype, rg, g), "gate": _rand((N, C), device, dtype, rg, g)}

    el = N * C * H * W
    return OpCase("se_scale", shape, make, lambda d: ops.se_scale(d["x"], d["gate"], impl=impl),
                  lambda d: ops.se_scale_ref(d["x"], d["gate"]), bytes_fwd=2 * el, bytes_bwd=3 * el)


def _cyclegan_loss_case(shape, impl: str) -> OpCase:
    """Images of ``shape`` (N, C, H, W) and PatchGAN-sized logit maps (N, 1, H/8 - 2, W/8 - 2)."""
    N, C, H, W = shape
    pshape = (N, 1, max(1, H // 8 - 2), max(1, W // 8 - 2))

    def make(device, dtype, rg):
        g = torch.Generator().manual_seed(0)
        d = {k: _rand(pshape, device, dtype, rg, g) for k in ("pred_fake_b", "pred_fake_a")}
        for k in ("rec_a", "rec_b", "idt_a", "idt_b"):
            d[k] = _rand(shape, device, dtype, rg, g)
        for k in ("real_a", "real_b"):  # data: no gradient
            d[k] = _rand(shape, device, dtype, False, g)
        return d

    def call(fn, d, **extra):
        return fn(d["pred_fake_b"], d["pred_fake_a"], d["rec_a"], d["real_a"], d["rec_b"], d["real_b"],
                  d["idt_a"], d["idt_b"], **extra).total

    el = N * C * H * W
    # fwd reads six images; bwd writes four gradients (from 2-bit signs the forward kept: 1/16 of an
    # image each at float32, left out of this floor)
    return OpCase("cyclegan_loss", shape, make, lambda d: call(ops.cyclegan_generator_loss, d, impl=impl),
                  lambda d: call(ops.cyclegan_generator_loss_ref, d), bytes_fwd=6 * el, bytes_bwd=4 * el)


def _diff_augment_case(shape, impl: str) -> OpCase:
    N, C, H, W = shape

    policy = "color,translation,cutout"

    def make(device, dtype, rg):
        g = torch.Generator().manual_seed(0)
        # The random parameters are drawn here, outside the timed call: both providers then do the
        # same work on the same parameters, and the call holds no host-to-device copy, which a CUDA
        # graph cannot capture (the draw itself, a few CPU-side values, is the same for both).
        params = ops.sample_diff_augment_params(N, H, W, policy, torch.Generator().manual_seed(1), device)
        return {"x": _rand(shape, device, dtype, rg, g), "params": params}

    def call(fn, d, **extra):
        return fn(d["x"], policy, params=d["params"], **extra)

    el = N * C * H * W
    return OpCase("diff_augment", shape, make, lambda d: call(ops.diff_augment, d, impl=impl),
                  lambda d: call(ops.diff_augment_ref, d), bytes_fwd=2 * el, bytes_bwd=2 * el)


CASE_BUILDERS = {
    "instance_norm_act": _instance_norm_act_case,
    "adain": _adain_case,
    "dwconv_norm_act": _dwconv_norm_act_case,
    "se_scale": _se_scale_case,
    "cyclegan_loss": _cyclegan_loss_case,
    "diff_augment": _diff_augment_case,
}


def register(op: str, builder: Callable[[tuple, str], OpCase]) -> None:
    CASE_BUILDERS[op] = builder


def available_ops() -> list[str]:
    """Every op with a case (named as effgan's backends name them: ``cyclegan_loss`` is the CycleGAN
    generator loss)."""
    return list(CASE_BUILDERS)


def _to_channels_last(t):
    """A 4-D tensor in channels_last memory (a leaf stays a leaf); anything else unchanged."""
    if not isinstance(t, torch.Tensor) or t.dim() != 4:
        return t
    return t.detach().contiguous(memory_format=torch.channels_last).requires_grad_(t.requires_grad)


def _channels_last_inputs(make):
    def make_channels_last(device, dtype, requires_grad):
        return {k: _to_channels_last(v) for k, v in make(device, dtype, requires_grad).items()}

    return make_channels_last


def cases(op_names, shapes, impl: str = "auto", channels_last: bool = False) -> list[OpCase]:
    """The cases of ``op_names`` x ``shapes``; with ``channels_last`` every 4-D input (images,
    activations; also a depthwise weight, whose layout that leaves as it was) is channels_last."""
    out = [CASE_BUILDERS[op](tuple(s), impl) for op in op_names for s in shapes]
    if channels_last:
        out = [replace(c, make_inputs=_channels_last_inputs(c.make_inputs), memory_format="channels_last") for c in out]
    return out
