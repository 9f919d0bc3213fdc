"""Inputs that are valid for torch but easy for a kernel to misread: strides of size-1 dimensions,
strided per-channel and per-sample parameters, planes near the int32 index limit, launch grids
beyond CUDA's axis limits, and tanh near zero."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from effgan.ops import (
    adain,
    adain_ref,
    diff_augment,
    diff_augment_ref,
    dwconv_norm_act,
    dwconv_norm_act_ref,
    instance_norm_act,
    instance_norm_act_ref,
    sample_diff_augment_params,
    se_scale,
    se_scale_ref,
)
from tests.op_harness import assert_close, fast_backends, seeded


def _odd_size1_strides(channels_last: bool, device) -> torch.Tensor:
    """(2, 3, 5, 1) float64 data whose size-1 last dimension has stride 7: torch calls it contiguous
    (or channels_last), but a kernel stepping along a plane by stride(3) walks off it."""
    g = seeded("odd-strides", channels_last)
    if channels_last:
        base = torch.randn(2, 5, 1, 3, generator=g, dtype=torch.float64).to(device)  # NHWC storage
        x = base.as_strided((2, 3, 5, 1), (15, 1, 3, 7))
        assert x.is_contiguous(memory_format=torch.channels_last)
    else:
        base = torch.randn(2, 3, 5, 1, generator=g, dtype=torch.float64).to(device)
        x = base.as_strided((2, 3, 5, 1), (15, 5, 1, 7))
        assert x.is_contiguous()
    return x


def _grads(out, inputs):
    outs = out if isinstance(out, tuple) else (out,)
    gs = [torch.randn(o.shape, generator=seeded("dy", tuple(o.shape)), dtype=o.dtype).to(o.device) for o in outs]
    return torch.autograd.grad(outs, inputs, gs)


def _check(fast_fn, ref_fn, inputs, name):
    for t in inputs:  # a clone keeps the strides of a dense tensor (odd size-1 strides included)
        assert t.detach().clone().stride() == t.stride(), name
    leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    fast_out = fast_fn(*leaves)
    fast_grads = _grads(fast_out, leaves)
    ref_leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
    ref_out = ref_fn(*ref_leaves)
    ref_grads = _grads(ref_out, ref_leaves)
    for a, b in zip(fast_out if isinstance(fast_out, tuple) else (fast_out,),
                    ref_out if isinstance(ref_out, tuple) else (ref_out,)):
        assert_close(a, b, torch.float64, f"{name} output")
    for i, (a, b) in enumerate(zip(fast_grads, ref_grads)):
        assert_close(a, b, torch.float64, f"{name} grad {i}")


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
@pytest.mark.parametrize("impl,device", fast_backends("instance_norm_act"))
def test_size1_dimension_strides(impl, device, channels_last, poison_outputs):
    x = _odd_size1_strides(channels_last, device)
    g = seeded("params", impl, channels_last)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device)

    C = x.shape[1]
    w, b = rand(C), rand(C)
    res = rand(x.shape)
    _check(lambda x, w, b, r: instance_norm_act(x, w, b, r, act="leaky_relu", impl=impl),
           lambda x, w, b, r: instance_norm_act_ref(x, w, b, r, act="leaky_relu"), [x, w, b, res], "instance_norm_act")
    s, sb = rand(2, C), rand(2, C)
    noise, nw = rand(2, 1, 5, 1), rand(C)
    _check(lambda x, s, sb, nw: adain(x, s, sb, noise, nw, impl=impl),
           lambda x, s, sb, nw: adain_ref(x, s, sb, noise, nw), [x, s, sb, nw], "adain")
    gate = rand(2, C)
    _check(lambda x, gt: se_scale(x, gt, impl=impl), lambda x, gt: se_scale_ref(x, gt), [x, gate], "se_scale")
    wt = rand(C, 1, 3, 3)
    _check(lambda x, wt: dwconv_norm_act(x, wt, impl=impl), lambda x, wt: dwconv_norm_act_ref(x, wt), [x, wt],
           "dwconv_norm_act")


@pytest.mark.parametrize("impl,device", fast_backends("dwconv_norm_act"))
def test_dwconv_strided_norm_parameters(impl, device, poison_outputs):
    g = seeded("dw-strided", impl)
    x = torch.randn(1, 3, 6, 5, generator=g, dtype=torch.float64).to(device)
    wt = torch.randn(3, 1, 3, 3, generator=g, dtype=torch.float64).to(device)
    packed = torch.randn(6, generator=g, dtype=torch.float64).to(device)  # weight and bias interleaved in one tensor
    # the strided views are taken inside the calls: _check clones its inputs, and a clone is dense
    _check(lambda x, pk: dwconv_norm_act(x, wt, None, pk[::2], pk[1::2], impl=impl),
           lambda x, pk: dwconv_norm_act_ref(x, wt, None, pk[::2], pk[1::2]), [x, packed], "dwconv_norm_act")


@pytest.mark.parametrize("impl,device", fast_backends("diff_augment"))
def test_diff_augment_strided_params(impl, device, poison_outputs):
    g = seeded("da-strided", impl)
    x = torch.randn(3, 3, 8, 8, generator=g, dtype=torch.float64).to(device)
    p = sample_diff_augment_params(3, 8, 8, generator=torch.Generator().manual_seed(5), device=device)
    # equal values, transposed storage: strides (1, 3) for the (3, 2) tables, (2,) for the scalars
    p = dataclasses.replace(
        p, translation=p.translation.T.contiguous().T, cutout_origin=p.cutout_origin.T.contiguous().T,
        brightness=torch.stack([p.brightness, p.brightness], 1)[:, 0],
        saturation=torch.stack([p.saturation, p.saturation], 1)[:, 0],
        contrast=torch.stack([p.contrast, p.contrast], 1)[:, 0])
    assert p.translation.stride() == (1, 3) and p.brightness.stride() == (2,)
    _check(lambda x: diff_augment(x, params=p, impl=impl), lambda x: diff_augment_ref(x, params=p), [x],
           "diff_augment")


@pytest.mark.parametrize("impl,device", fast_backends("instance_norm_act"))
def test_tanh_keeps_relative_precision_near_zero(impl, device):
    """tanh(z) from exp(-2|z|) alone loses all precision below |z| ~ 1e-8 in float32 (1 - t cancels)."""
    x = torch.randn(1, 2, 8, 8, generator=seeded("tanh", impl)).to(device)
    for scale in (0.3, 0.2, 1e-3, 1e-6, 1e-9):
        w = torch.full((2,), scale, device=device)
        y = instance_norm_act(x, w, None, act="tanh", impl=impl)
        exact = instance_norm_act_ref(x.double(), w.double(), act="tanh")
        # float32's normalisation error is ~1e-7 of |xhat| <~ 3; the activation must not add more
        torch.testing.assert_close(y.double(), exact, rtol=1e-5, atol=1e-6 * scale, msg=lambda m: f"scale {scale}: {m}")


def test_split_chunks_never_pass_the_int32_index():
    from effgan.kernels._launch import MAX_PLANE, split_chunks

    # HW = 44184 * 48602 with 59 splits rounded its chunks up past 2**31 before
    for size, s, block in ((44184 * 48602, 59, 1024), (MAX_PLANE, 64, 4096), (MAX_PLANE, 64, 8192),
                           (2**31 - 10**6, 63, 2048), (1000, 3, 256)):
        splits, chunk = split_chunks(size, s, block)
        assert chunk % block == 0 and splits * chunk >= size and (splits - 1) * chunk < size
        assert splits * chunk <= 2**31, (size, s, block, splits, chunk)


def test_triton_refuses_launch_grids_beyond_cuda_limits():
    pytest.importorskip("triton")
    from effgan._backend import available_impls

    if "triton" not in available_impls("cpu", "instance_norm_act"):
        pytest.skip("triton unavailable on cpu")
    x = torch.randn(1, 65536 + 1, 2, 1)  # NCHW: one program column per channel
    with pytest.raises(ValueError, match="65537 channels"):
        instance_norm_act(x, impl="triton")
    assert torch.isfinite(instance_norm_act(x, impl="cpp" if "cpp" in available_impls("cpu", "instance_norm_act")
                                            else "ref")).all()
    imgs = torch.randn(65536, 1, 1, 1)
    with pytest.raises(ValueError, match="batch of 65536"):
        diff_augment(imgs, "translation", generator=torch.Generator().manual_seed(0), impl="triton")


def test_triton_diff_augment_refuses_more_channels_than_a_program_holds():
    """A DiffAugment program holds all channels of 16 or more pixels: beyond 65536 channels that tile
    passes Triton's 2**20 elements per tensor, which must be a clear error, not a compiler failure."""
    pytest.importorskip("triton")
    from effgan._backend import available_impls

    if "triton" not in available_impls("cpu", "diff_augment"):
        pytest.skip("triton unavailable on cpu")
    x = torch.randn(1, 65536 + 1, 1, 1)
    with pytest.raises(ValueError, match="65537 channels"):
        diff_augment(x, "color", generator=torch.Generator().manual_seed(0), impl="triton")
    ok = torch.randn(1, 65536, 1, 1)
    gen = torch.Generator().manual_seed(0)
    torch.testing.assert_close(diff_augment(ok, "color", generator=gen, impl="triton"),
                               diff_augment(ok, "color", generator=torch.Generator().manual_seed(0), impl="ref"))


def test_triton_dwconv_refuses_an_input_plane_its_backward_cannot_take(monkeypatch):
    """A stride-2 conv's output plane is a quarter of its input's: the forward checked only the output
    against the int32 plane limit, so an input plane over it passed the forward and failed in the
    backward. Checked here with the limit lowered to 100 elements."""
    pytest.importorskip("triton")
    from effgan._backend import available_impls
    from effgan.ops import dwconv_norm_act

    if "triton" not in available_impls("cpu", "dwconv_norm_act"):
        pytest.skip("triton unavailable on cpu")
    import effgan.kernels._launch as launch

    monkeypatch.setattr(launch, "MAX_PLANE", 100)
    x = torch.randn(1, 2, 12, 12)  # 144 input elements per plane, 36 after stride 2
    with pytest.raises(ValueError, match="planes of 144 elements"):
        dwconv_norm_act(x, torch.randn(2, 1, 3, 3), stride=2, act="relu", impl="triton")
