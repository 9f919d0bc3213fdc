"""The kernels' plane statistics keep their precision when a plane's first value is an outlier.

The C++ kernels and the Triton kernels that split a plane over programs sum v - shift and
(v - shift)^2 and take the variance as sumsq / n - mean^2: about a shift far from the plane's mean
(in standard deviations) that cancels. The shift was the plane's first value; with a 1000-sigma value
there the normalised output was off by 0.3-0.5. It is now the mean of the plane's first values
(csrc/params.h: sample_mean; kernels/_shift.py). The Triton resident path (whole planes in registers)
takes the exact two-pass variance and is checked here too.

On the CPU the Triton launchers run one program per plane; "triton-split" forces the GPU's geometry
(several programs per plane; at 64x64 tiles smaller than the shift's sample) and "triton-resident"
the resident path.
"""
import pytest
import torch

from effgan._backend import available_impls
from effgan.ops.adain import adain
from effgan.ops.dwconv_norm_act import dwconv_norm_act
from effgan.ops.instance_norm_act import instance_norm_act
from op_harness import force_triton_path

TOL = 1e-3  # the float32 kernels against float64; the old shift was off by 0.3-0.5 here


def backends(op, resident=True):
    """(impl, path) cases for ``op``: the C++ backend and the Triton launch paths, each skipped where absent."""
    paths = [("cpp", None), ("triton", None), ("triton", "split")] + ([("triton", "resident")] if resident else [])
    return [pytest.param(impl, path, id=impl + (f"-{path}" if path else ""),
                         marks=[] if impl in available_impls("cpu", op) else
                         [pytest.mark.skip(reason=f"{impl} unavailable for {op}")])
            for impl, path in paths]


def force_path(monkeypatch, op, path, shape):
    # At 64x64, 64-position tiles: a quarter of the shift's sample, so its loop takes several
    # tiles. Larger planes take 256 (one sample tile): the interpreter's time goes by tile count.
    if path is not None:
        block_hw = 64 if shape[-2] * shape[-1] <= 64 * 64 else 256
        force_triton_path(monkeypatch, op, path, block_hw=block_hw, programs=4)


def outlier_input(shape, channels_last, corner=1000.0):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    x[:, :, 0, 0] = corner  # every plane's first value (NCHW) and first pixel (channels_last)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def forward_backward(fn, x, dy):
    x = x.detach().clone().requires_grad_()
    y = fn(x)
    y.backward(dy.to(y.dtype))
    return y.detach().double(), x.grad.double()


def assert_close_to_float64(fn, x, impl):
    dy = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    got_y, got_dx = forward_backward(lambda t: fn(t, impl), x, dy)
    want_y, want_dx = forward_backward(lambda t: fn(t, "ref"), x.double(), dy.double())
    assert (got_y - want_y).abs().max().item() < TOL
    assert (got_dx - want_dx).abs().max().item() < TOL


@pytest.mark.parametrize("impl,path", backends("instance_norm_act"))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (1, 2, 256, 256)])  # C++: whole planes per thread; split
def test_instance_norm_act(shape, channels_last, impl, path, monkeypatch):
    if path == "resident" and shape[-1] > 64:
        pytest.skip("a 256x256 plane is over the resident path's register tile")
    force_path(monkeypatch, "instance_norm_act", path, shape)
    x = outlier_input(shape, channels_last)
    w = torch.rand(shape[1], generator=torch.Generator().manual_seed(2)) + 0.5

    def fn(t, impl):
        return instance_norm_act(t, w.to(t.dtype), None, act="relu", impl=impl)

    assert_close_to_float64(fn, x, impl)


@pytest.mark.parametrize("impl,path", backends("adain"))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(1, 3, 64, 64), (1, 2, 256, 256)])
def test_adain(shape, channels_last, impl, path, monkeypatch):
    if path == "resident" and shape[-1] > 64:
        pytest.skip("a 256x256 plane is over the resident path's register tile")
    force_path(monkeypatch, "adain", path, shape)
    x = outlier_input(shape, channels_last)
    g = torch.Generator().manual_seed(3)
    scale, bias = torch.rand(shape[:2], generator=g) + 0.5, torch.randn(shape[:2], generator=g)

    def fn(t, impl):
        return adain(t, scale.to(t.dtype), bias.to(t.dtype), act="leaky_relu", impl=impl)

    assert_close_to_float64(fn, x, impl)


@pytest.mark.parametrize("impl,path", backends("dwconv_norm_act", resident=False))
@pytest.mark.parametrize("channels_last", [False, True])
def test_dwconv_norm_act(channels_last, impl, path, monkeypatch):
    shape = (1, 3, 64, 64)
    force_path(monkeypatch, "dwconv_norm_act", path, shape)
    x = outlier_input(shape, channels_last)
    w = torch.zeros(3, 1, 3, 3)
    w[:, :, 1, 1] = 1.0
    w += 0.01 * torch.randn(3, 1, 3, 3, generator=torch.Generator().manual_seed(4))

    def fn(t, impl):
        return dwconv_norm_act(t, w.to(t.dtype), act="identity", impl=impl)[0]

    assert_close_to_float64(fn, x, impl)
