"""StyleGAN-style generator: mapping network, equalized lr, style mixing, truncation, builds."""
from __future__ import annotations

import math

import pytest
import torch

from effgan.models import EqualConv2d, EqualLinear, MappingNetwork, StyleGANGenerator, build
from effgan.models.stylegan_layers import pixel_norm
from test_models_support import (assert_same_forward_backward, assert_same_state_dict_layout,
                                 require_effgan_nn)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def small(resolution=32, fused=False, impl="ref", **kw):
    require_effgan_nn("AdaIN")
    torch.manual_seed(0)
    return StyleGANGenerator(resolution, z_dim=12, w_dim=10, channel_max=8, mapping_layers=3,
                             fused=fused, impl=impl, **kw)


# ---- layers that need no effgan.nn module ----

def test_pixel_norm_puts_z_on_the_sphere():
    z = randn(5, 37) * 3
    assert pixel_norm(z).square().mean(1).sqrt() == pytest.approx(torch.ones(5), abs=1e-5)


def test_equal_linear_runtime_scaling():
    layer = EqualLinear(50, 20, lr_mul=0.01, gain=math.sqrt(2), bias_init=1.0)
    x = randn(3, 50)
    expected = x @ (layer.weight * 0.01 * math.sqrt(2) / math.sqrt(50)).T + layer.bias * 0.01
    torch.testing.assert_close(layer(x), expected)
    torch.testing.assert_close(layer.bias * 0.01, torch.ones(20))
    # stored weights are N(0, 1/lr_mul): the effective weight has the He std gain/sqrt(fan_in)
    assert (layer.weight * layer.weight_gain).std().item() == pytest.approx(
        math.sqrt(2 / 50), rel=0.15)


def test_equal_conv_runtime_scaling():
    conv = EqualConv2d(6, 4, 3, gain=2.0)
    x = randn(2, 6, 7, 5)
    expected = torch.nn.functional.conv2d(x, conv.weight * 2.0 / math.sqrt(54), conv.bias,
                                          padding=1)
    torch.testing.assert_close(conv(x), expected)


def test_style_affine_is_equalized_and_init_weights_leaves_it_alone():
    """StyleGAN's affine A is an equalized-lr layer: N(0, 1) weights scaled by 1/sqrt(w_dim) per call."""
    from effgan.models import init_weights

    g = StyleGANGenerator(32, z_dim=64, w_dim=64, channel_max=32, mapping_layers=2, fused=False)
    adain = g.blocks[0].adain0
    assert adain.equalized_lr and adain.style.weight.std().item() == pytest.approx(1.0, rel=0.1)
    w = randn(3, 64)
    scale, shift = adain.styles(w)
    expected = w @ (adain.style.weight / 8.0).T + adain.style.bias
    torch.testing.assert_close(torch.cat([scale, shift], 1), expected)
    style_before = {k: v.clone() for k, v in g.state_dict().items() if ".style." in k}
    init_weights(g, "normal", 0.02)
    for k, v in g.state_dict().items():
        if ".style." in k:
            assert torch.equal(v, style_before[k]), k  # the scale half's bias is still 1, weights N(0, 1)


def test_mapping_network_layout():
    m = MappingNetwork(16, 24, 8)
    assert len(m.layers) == 8 and all(layer.lr_mul == 0.01 for layer in m.layers)
    assert m.layers[0].in_features == 16 and m.layers[-1].out_features == 24
    w = m(randn(4, 16))
    assert w.shape == (4, 24)
    # pixel norm first: scaling z does not change w
    torch.testing.assert_close(m(randn(4, 16) * 7.5), w)
    with pytest.raises(ValueError, match="z must be"):
        m(randn(4, 15))


# ---- the generator (needs effgan.nn.AdaIN) ----

@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
def test_shapes_and_layer_count(resolution):
    require_effgan_nn("AdaIN")
    g = build(f"stylegan-{resolution}", z_dim=8, channel_max=4, mapping_layers=2, fused=False)
    assert g.num_ws == 2 * (int(math.log2(resolution)) - 1)
    with torch.no_grad():
        assert g(randn(1, 8)).shape == (1, 3, resolution, resolution)


def test_reference_channel_schedule():
    require_effgan_nn("AdaIN")
    with torch.device("meta"):
        g = build("stylegan", resolution=256)
    assert [b.conv1.out_channels for b in g.blocks] == [512, 512, 512, 512, 256, 128, 64]
    assert g.mapping.z_dim == g.w_dim == 512 and len(g.mapping.layers) == 8


@pytest.mark.parametrize("impl", ["ref", "auto"])
def test_fused_equals_plain_with_fixed_noise(impl):
    plain, fused = small(fused=False).eval(), small(fused=True, impl=impl).eval()
    assert_same_state_dict_layout(plain, fused)
    with torch.no_grad():  # noise weights and biases start at zero; make them matter
        for name, p in plain.named_parameters():
            if name.endswith(("noise_weight", "adain0.bias", "adain1.bias")):
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))))
    fused.load_state_dict(plain.state_dict())
    z = randn(2, 12)
    noise = [randn(2, 1, s, s, seed=10 + i) for i, s in enumerate([4, 4, 8, 8, 16, 16, 32, 32])]
    assert_same_forward_backward(plain, fused, (z,), atol=1e-4, rtol=1e-4, noise=noise)


def test_noise_changes_the_image():
    g = small().eval()
    z = randn(2, 12)
    with torch.no_grad():
        _with_noise_weights(g)
        a = g(z, generator=torch.Generator().manual_seed(1))
        b = g(z, generator=torch.Generator().manual_seed(1))
        c = g(z, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


def _with_noise_weights(g):
    """AdaIN noise weights start at zero; give them values so the noise matters."""
    for name, p in g.named_parameters():
        if name.endswith("noise_weight"):
            p.copy_(torch.full_like(p, 0.5))


def test_style_mixing_is_repeatable_and_switches_latent():
    g = small().eval()
    z, z2 = randn(2, 12), randn(2, 12, seed=1)
    with torch.no_grad():
        run = lambda seed, **kw: g(z, generator=torch.Generator().manual_seed(seed),  # noqa: E731
                                   noise_mode="none", **kw)
        plain = run(0)
        mixed_a = run(0, z2=z2, mixing_prob=1.0)
        mixed_b = run(0, z2=z2, mixing_prob=1.0)
        never = run(0, z2=z2, mixing_prob=0.0)
        only_z2 = g(z2, noise_mode="none")
    torch.testing.assert_close(mixed_a, mixed_b)
    torch.testing.assert_close(never, plain)
    assert not torch.allclose(mixed_a, plain) and not torch.allclose(mixed_a, only_z2)
    # crossover layers drawn from the generator cover the whole range [1, num_ws)
    crossovers = set()
    ws_seen = []

    def record_only(ws, **kw):  # the crossover is decided before synthesis; skip the convs
        ws_seen.append(ws)
        return ws.new_zeros(())

    g.synthesis = record_only
    with torch.no_grad():
        w1, w2 = g.mapping(z), g.mapping(z2)
        for seed in range(60):
            g(z, z2=z2, mixing_prob=1.0, generator=torch.Generator().manual_seed(seed),
              noise_mode="none")
            ws = ws_seen[-1]
            from_z2 = [torch.allclose(ws[:, i], w2) for i in range(g.num_ws)]
            k = from_z2.index(True)
            assert not any(from_z2[:k]) and all(from_z2[k:])
            assert all(torch.allclose(ws[:, i], w1) for i in range(k))
            crossovers.add(k)
    assert crossovers == set(range(1, g.num_ws))


def test_w_avg_tracks_mapped_w_in_training_only():
    g = small(w_avg_beta=0.5)
    z = randn(6, 12)
    with torch.no_grad():
        w_mean = g.mapping(z).mean(0)
        g.eval()(z, noise_mode="none")
        assert torch.count_nonzero(g.w_avg) == 0
        g.train()(z, noise_mode="none")
        torch.testing.assert_close(g.w_avg, 0.5 * w_mean)
        g(z, noise_mode="none")
        torch.testing.assert_close(g.w_avg, 0.75 * w_mean)


def test_truncation_pulls_towards_w_avg():
    g = small().eval()
    with torch.no_grad():
        g.w_avg.copy_(randn(10, seed=3))
        z = randn(3, 12)
        seen = []
        real = g.synthesis
        g.synthesis = lambda ws, **kw: seen.append(ws) or real(ws, **kw)
        g(z, truncation_psi=0.0, noise_mode="none")
        assert torch.allclose(seen[-1], g.w_avg.expand_as(seen[-1]))
        g(z, truncation_psi=0.5, truncation_cutoff=4, noise_mode="none")
        w = g.mapping(z)
        torch.testing.assert_close(seen[-1][:, :4], (0.5 * (w + g.w_avg))[:, None].expand(-1, 4, -1))
        torch.testing.assert_close(seen[-1][:, 4:], w[:, None].expand(-1, g.num_ws - 4, -1))
        images = g.sample(2, generator=torch.Generator().manual_seed(0))
    assert images.shape == (2, 3, 32, 32)


def test_bad_arguments():
    with pytest.raises(ValueError, match="resolution"):
        StyleGANGenerator(48)
    g = small()
    with pytest.raises(ValueError, match="mixing_prob"):
        g(randn(1, 12), mixing_prob=1.5)
    with pytest.raises(ValueError, match="noise_mode"):
        g(randn(1, 12), noise_mode="const")
    with pytest.raises(ValueError, match="noise must be"):
        g(randn(1, 12), noise=[randn(1, 1, 4, 4)])


@pytest.mark.parametrize("psi", [float("nan"), float("inf"), "0.7", None, True])
def test_bad_truncation_psi_names_the_argument(psi):
    # a NaN psi would otherwise turn every image into NaNs without a word
    g = small().eval()
    with pytest.raises((TypeError, ValueError), match="truncation_psi"):
        g(randn(2, 12), truncation_psi=psi)
    with pytest.raises((TypeError, ValueError), match="truncation_psi"):
        g.sample(2, truncation_psi=psi)
