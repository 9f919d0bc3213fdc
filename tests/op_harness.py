"""Shared machinery for the fused-op tests: backends, devices, tolerances, the low-precision rule."""
from __future__ import annotations

import importlib
import zlib

import pytest
import torch

from effgan._backend import available_impls

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# (dtype, atol, rtol) of a fast backend against the reference evaluated in the same dtype.
TOL = {
    torch.float64: (1e-9, 1e-7),
    torch.float32: (2e-5, 2e-5),
}
LOW_PRECISION = (torch.float16, torch.bfloat16)
# Absolute slack added to the "twice eager's error" rule, per dtype (one or two ulps at |y|~4).
LOW_PRECISION_ATOL = {torch.float16: 2e-3, torch.bfloat16: 2e-2}


def fast_backends(op: str) -> list:
    """pytest params (impl, device) for every non-reference backend that can run ``op`` here.

    Backends that cannot run are still listed, as skips that say why, so a missing backend is
    visible in the test report rather than silently untested.
    """
    params = []
    cpu = available_impls("cpu", op)
    for impl in ("triton", "cpp"):
        marks = [] if impl in cpu else [pytest.mark.skip(reason=f"{impl} unavailable for {op} on cpu")]
        params.append(pytest.param(impl, "cpu", marks=marks, id=f"{impl}-cpu"))
    params.append(pytest.param("triton", "cuda", marks=[CUDA], id="triton-cuda"))
    return params


def rand(shape, *, dtype=torch.float32, device="cpu", channels_last=False, scale=1.0, offset=0.0, gen=None):
    """Random normal data (never zeros), optionally channels_last."""
    t = torch.randn(shape, generator=gen, dtype=torch.float64) * scale + offset
    t = t.to(device=device, dtype=dtype)
    if channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    return t


def assert_close(actual, expected, dtype, name=""):
    atol, rtol = TOL[dtype]
    torch.testing.assert_close(actual, expected, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")


def assert_low_precision_ok(fast, eager_low, exact, dtype, name=""):
    """The fast kernel's error against float64 is at most twice eager PyTorch's own error (+atol)."""
    fast_err = (fast.double() - exact).abs().max().item()
    eager_err = (eager_low.double() - exact).abs().max().item()
    bound = 2 * eager_err + LOW_PRECISION_ATOL[dtype]
    assert fast_err <= bound, f"{name}: {dtype} error {fast_err:.3g} > 2 x eager {eager_err:.3g} + atol"
    assert torch.isfinite(fast).all(), f"{name}: non-finite values"


def assert_sum_ok(fast, eager, exact, name=""):
    """A float32 sum over planes (a parameter gradient) is within twice eager's own error of float64.

    Elementwise closeness of two float32 results is the wrong test for these: each element cancels
    thousands of terms, and two correct summation orders differ by more than 2e-5 relative where
    the total is small against its terms. The slack is 1e-6 of the largest exact value, a few
    float32 ulps at that scale.
    """
    exact = exact.double()
    fast_err = (fast.double() - exact).abs().max().item()
    eager_err = (eager.double() - exact).abs().max().item()
    bound = 2 * eager_err + 1e-6 * exact.abs().max().item()
    assert fast_err <= bound, f"{name}: error {fast_err:.3g} > 2 x eager {eager_err:.3g} + slack"


def seeded(*parts) -> torch.Generator:
    """A generator seeded from the test's parameters, the same in every process.

    Python's hash() of strings (and of torch.dtype objects) changes from one process to the next,
    so a seed taken from it gave each run different data: a failure could not be reproduced.
    """
    return torch.Generator().manual_seed(zlib.crc32(repr(parts).encode()))


def force_triton_path(monkeypatch, op: str, path: str, *, block_hw: int = 16, programs: int | None = None,
                      block_c: int | None = None) -> None:
    """Make the Triton launchers of ``effgan.kernels.<op>`` take ``path`` on the CPU.

    On the CPU they run one program per plane, so the paths a GPU takes are forced here.
    "resident": whole planes in registers. "split": each plane cut over several programs, in tiles
    of ``block_hw`` positions: one tile a program, or ``programs`` programs a plane; ``block_c``
    channels a program (default 4 in channels_last, else 1).
    """
    from effgan.kernels._launch import PlaneSplit, next_pow2, resident_geometry

    kernels = importlib.import_module(f"effgan.kernels.{op}")
    if path == "resident":
        monkeypatch.setattr(kernels, "resident_plane", lambda x, N, C, HW: resident_geometry(x, N, C, HW))
        return
    if path != "split":
        raise ValueError(f"path must be 'resident' or 'split', got {path!r}")

    def split(x, N, C, HW, **_):
        chunk = block_hw if programs is None else max(block_hw, -(-HW // (programs * block_hw)) * block_hw)
        s = -(-HW // chunk)
        channels = block_c if block_c is not None else (4 if x.stride(1) == 1 and C > 1 else 1)
        return PlaneSplit(channels, block_hw, s, chunk, next_pow2(s), 2)

    if hasattr(kernels, "resident_plane"):
        monkeypatch.setattr(kernels, "resident_plane", lambda x, N, C, HW: None)
    monkeypatch.setattr(kernels, "plane_split", split)
