"""The fused modules where they meet torch's own: nn.InstanceNorm2d's bias=False and 1x1 planes,
autocast's mixed dtypes around MBConv's fused residual, and meta tensors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from effgan.nn import DepthwiseConvNormAct, DepthwiseSeparableConv, FusedInstanceNorm2d, InstanceNormAct, MBConv


@pytest.mark.parametrize("cls", [FusedInstanceNorm2d, InstanceNormAct])
def test_affine_weight_without_bias_loads_torchs_state_dict(cls):
    torch.manual_seed(0)
    ours = cls(4, affine=True, bias=False, act="identity")
    assert ours.bias is None and set(ours.state_dict()) == {"weight"}
    theirs = nn.InstanceNorm2d(4, affine=True)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.zero_()
    ours.load_state_dict({"weight": theirs.weight.detach().clone()})
    x = torch.randn(2, 4, 5, 7)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    assert "bias=False" in repr(ours)


def test_a_single_pixel_plane_is_refused_like_torch():
    x = torch.randn(2, 4, 1, 1)
    with pytest.raises(ValueError, match="more than 1 spatial element") as torch_error:
        nn.InstanceNorm2d(4)(x)
    for module in (FusedInstanceNorm2d(4), InstanceNormAct(4)):
        with pytest.raises(ValueError, match="more than 1 spatial element"):
            module(x)
    assert "more than 1 spatial element" in str(torch_error.value)


@pytest.mark.parametrize("cls", [MBConv, DepthwiseSeparableConv])
def test_fused_blocks_run_under_autocast_like_the_unfused_ones(cls):
    torch.manual_seed(0)
    fused, plain = cls(6, 6), cls(6, 6, fused=False)
    plain.load_state_dict(fused.state_dict())
    fused.eval(), plain.eval()
    x = torch.randn(2, 6, 9, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, want = fused(x), plain(x)
    assert got.dtype == want.dtype
    torch.testing.assert_close(got.float(), want.float(), rtol=0.05, atol=0.05)


def test_the_residual_is_promoted_to_the_wider_dtype():
    torch.manual_seed(0)
    h, x = torch.randn(2, 6, 5, 5).bfloat16(), torch.randn(2, 6, 5, 5)
    got, want = FusedInstanceNorm2d(6)(h, x), InstanceNormAct(6)(h, x)
    assert got.dtype == want.dtype == torch.float32
    torch.testing.assert_close(got, want, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("make", [lambda: DepthwiseConvNormAct(4), lambda: MBConv(4, 4), lambda: DepthwiseSeparableConv(4, 4)])
def test_fused_depthwise_modules_take_meta_tensors(make):
    out = make().to("meta")(torch.empty(2, 4, 5, 5, device="meta"))
    first = out[0] if isinstance(out, tuple) else out
    assert first.device.type == "meta" and first.shape == (2, 4, 5, 5)


def test_adain_names_a_non_float_x_and_a_style_batch_that_does_not_match():
    from effgan.nn import AdaIN

    layer = AdaIN(3, 4)
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got torch.int64"):
        layer(torch.ones(2, 3, 4, 4, dtype=torch.int64), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"w must have shape \(2, 4\): one style per sample of x, got \(3, 4\)"):
        layer(torch.randn(2, 3, 4, 4), torch.randn(3, 4))


@pytest.mark.parametrize("impl", ["auto", "ref"])
def test_adain_takes_a_fixed_noise_of_another_float_dtype_like_the_noise_it_draws(impl):
    """A float32 noise image held fixed beside a conv's bf16 output under autocast: the layer casts it
    to x's dtype, the dtype of the noise it draws itself, instead of refusing the mix."""
    from effgan.nn import AdaIN

    torch.manual_seed(0)
    layer, conv = AdaIN(4, 5, impl=impl), nn.Conv2d(3, 4, 3, padding=1)
    with torch.no_grad():
        for p in layer.parameters():
            p.uniform_(-1.0, 1.0)
    x, w, noise = torch.randn(2, 3, 6, 7), torch.randn(2, 5), torch.randn(2, 1, 6, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = conv(x)
        got, want = layer(h, w, noise), layer(h, w, noise.to(h.dtype))
    assert got.dtype == want.dtype == torch.bfloat16
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    h = torch.randn(2, 4, 6, 7, dtype=torch.float64)
    torch.testing.assert_close(layer(h, w, noise), layer(h, w, noise.double()), rtol=0, atol=0)
    with pytest.raises(TypeError, match="noise"):  # a non-float noise is still refused
        layer(h, w, torch.ones(2, 1, 6, 7, dtype=torch.int64))
