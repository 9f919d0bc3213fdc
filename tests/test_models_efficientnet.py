"""EfficientNet generators: structure from the scaling table, shapes, fused vs plain builds."""
from __future__ import annotations

import math

import pytest
import torch

from effgan.models import (EfficientNetResnetGenerator, EfficientNetUnetGenerator, build,
                           count_flops, preset)
from effgan.models.efficientnet_blocks import drop_path_rates
from test_models_support import (assert_same_forward_backward, assert_same_state_dict_layout,
                                 require_effgan_nn)


@pytest.fixture(autouse=True)
def _needs_mbconv():
    require_effgan_nn("MBConv", "FusedInstanceNorm2d")


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def mbconvs(model):
    from effgan.nn import MBConv

    return [m for m in model.modules() if isinstance(m, MBConv)]


@pytest.mark.parametrize("phi", [0, 1, 2, 3])
def test_effnet_unet_follows_stage_list(phi):
    with torch.device("meta"):
        g = build(f"effnet-b{phi}")
    spec = preset(phi)
    assert g.resolution == spec.resolution
    repeats = sum(s.repeats for s in spec.stages)
    assert len(mbconvs(g)) == 2 * repeats  # mirrored decoder
    assert [len(stage) for stage in g.encoder] == [s.repeats for s in spec.stages]
    assert g.stem[0].out_channels == spec.stem_channels


@pytest.mark.parametrize("phi", [0, 1, 2, 3])
def test_effnet_resnet_blocks_scale_with_depth(phi):
    with torch.device("meta"):
        g = build(f"effnet-resnet-b{phi}")
    assert len(mbconvs(g)) == math.ceil(9 * 1.2 ** phi)
    assert g.resolution == preset(phi).resolution
    assert g.stem[0].out_channels % 8 == 0


def test_presets_grow_in_parameters():
    with torch.device("meta"):
        counts = [sum(p.numel() for p in build(f"effnet-b{phi}").parameters()) for phi in range(4)]
    assert counts == sorted(counts) and counts[0] < counts[-1]


def test_effnet_unet_shapes_and_skip_option():
    g = EfficientNetUnetGenerator(0, 3, 2, skip=False, width_scale=0.25, fused=False).eval()
    with torch.no_grad():
        y = g(randn(1, 3, 64, 96))
    assert y.shape == (1, 2, 64, 96) and y.abs().max() <= 1
    with torch.device("meta"):
        with_skip = EfficientNetUnetGenerator(0, skip=True)
        without = EfficientNetUnetGenerator(0, skip=False)
    # skips widen the first block of every decoder stage and nothing else
    widened = [(a.in_channels, b.in_channels) for a, b in zip(mbconvs(with_skip), mbconvs(without))
               if a.in_channels != b.in_channels]
    assert len(widened) == len(preset(0).stages)
    assert sum(p.numel() for p in with_skip.parameters()) > \
        sum(p.numel() for p in without.parameters())


def test_effnet_unet_rejects_sizes_it_cannot_downsample():
    g = EfficientNetUnetGenerator(0, width_scale=0.25, fused=False)
    with pytest.raises(ValueError, match="multiples of 32"):
        g(randn(1, 3, 64, 80))
    with pytest.raises(ValueError, match="multiples of 32"):
        g(randn(1, 3, 32, 32))


# Dozens of instance norms over few pixels amplify float32 rounding differences between two
# correct builds, so the builds are compared in float64, where any real difference stands out.
DOUBLE = dict(atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("impl", ["ref", "auto"])
def test_effnet_resnet_fused_equals_plain(impl):
    plain = EfficientNetResnetGenerator(0, 3, 3, ngf=4, fused=False).double().eval()
    fused = EfficientNetResnetGenerator(0, 3, 3, ngf=4, fused=True, impl=impl).double().eval()
    assert_same_state_dict_layout(plain, fused)
    fused.load_state_dict(plain.state_dict())
    x = randn(1, 3, 8, 12).double()
    assert_same_forward_backward(plain, fused, (x,), **DOUBLE)


# impl="ref" of the fused build is covered by the effnet-resnet test above; here it would cost
# tens of seconds (32 blocks of reference depthwise convs in float64) for no new code path.
@pytest.mark.parametrize("impl", ["auto"])
def test_effnet_unet_fused_equals_plain(impl):
    plain = EfficientNetUnetGenerator(0, width_scale=0.25, fused=False).double().eval()
    fused = EfficientNetUnetGenerator(0, width_scale=0.25, fused=True, impl=impl).double().eval()
    assert_same_state_dict_layout(plain, fused)
    fused.load_state_dict(plain.state_dict())
    x = randn(1, 3, 64, 64, seed=1).double()
    assert_same_forward_backward(plain, fused, (x,), **DOUBLE)


def test_stochastic_depth_rates_rise_linearly(monkeypatch):
    assert drop_path_rates(5, 0.2) == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    from effgan.models import efficientnet_resnet

    seen = []
    real = efficientnet_resnet.make_mbconv

    def recording(*args, **kwargs):
        seen.append(kwargs["drop_path"])
        return real(*args, **kwargs)

    monkeypatch.setattr(efficientnet_resnet, "make_mbconv", recording)
    EfficientNetResnetGenerator(0, ngf=4, drop_path_rate=0.2, fused=False)
    assert seen == pytest.approx(drop_path_rates(9, 0.2))
    with pytest.raises(ValueError, match="drop_path_rate"):
        EfficientNetResnetGenerator(0, ngf=4, drop_path_rate=1.0, fused=False)
    for bad in ("0.1", None, True):
        with pytest.raises(ValueError, match="drop_path_rate must be a number"):
            EfficientNetResnetGenerator(0, ngf=4, drop_path_rate=bad, fused=False)


def test_flops_grow_with_phi():
    flops = [count_flops(build(f"effnet-resnet-b{phi}", ngf=8, fused=False), (1, 3, 32, 32))
             for phi in (0, 1)]
    assert flops[1] > flops[0] > 0
