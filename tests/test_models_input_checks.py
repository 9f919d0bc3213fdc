"""Inputs and arguments the models cannot honour are refused with errors naming them: image sides
a ResNet-style generator would silently round, class labels out of range, a label width that
means nothing."""
from __future__ import annotations

import pytest
import torch

from effgan.models import registry


@pytest.mark.parametrize("name", ["resnet6", "resnet9", "effnet-resnet-b0"])
@pytest.mark.parametrize("fused", [True, False])
def test_resnet_generators_refuse_sides_they_would_round(name, fused):
    kwargs = dict(ngf=4) if name.startswith("resnet") else dict(ngf=8)
    model = registry.build(name, fused=fused, **kwargs).eval()
    with torch.no_grad():
        for side in ((38, 38), (36, 41), (4, 4)):
            with pytest.raises(ValueError, match=r"H and W multiples of 4 and at least 8"):
                model(torch.randn(1, 3, *side))
        assert model(torch.randn(1, 3, 8, 12)).shape == (1, 3, 8, 12)


@pytest.mark.parametrize("name, kwargs, side", [
    ("effnet-resnet-b0", dict(ngf=8, kernel_size=5), 12),  # reflect pad 2 at the 1/4 map: 3 pixels there
    ("resnet6", dict(ngf=4, padding_mode="zeros"), 8),  # instance norm at the 1/4 map: 2 pixels there
    ("effnet-resnet-b0", dict(ngf=8, padding_mode="zeros"), 8),
])
@pytest.mark.parametrize("fused", [True, False])
def test_resnet_generators_minimum_side_is_what_the_quarter_map_needs(name, kwargs, side, fused):
    model = registry.build(name, fused=fused, **kwargs).eval()
    with torch.no_grad():
        with pytest.raises(ValueError, match=rf"H and W multiples of 4 and at least {side}"):
            model(torch.randn(1, 3, side - 4, side - 4))
        assert model(torch.randn(1, 3, side, side)).shape == (1, 3, side, side)


@pytest.mark.parametrize("name, make_input", [
    ("cgan-classic-g", lambda: (torch.randn(2, 100),)),
    ("cgan-shallow-g", lambda: (torch.randn(2, 100),)),
    ("cgan-classic-d", lambda: (torch.randn(2, 3, 64, 64),)),
    ("cgan-shallow-d", lambda: (torch.randn(2, 1, 28, 28),)),
])
@pytest.mark.parametrize("bad", [[1, 10], [-1, 3]])
def test_labels_out_of_range_name_the_classes(name, make_input, bad):
    model = registry.build(name).eval()
    with torch.no_grad(), pytest.raises(ValueError, match=r"labels must be class indices in \[0, 10\)"):
        model(*make_input(), torch.tensor(bad))


@pytest.mark.parametrize("name", ["cgan-shallow-g", "cgan-classic-g"])
def test_a_zero_label_width_is_refused(name):
    with pytest.raises(ValueError, match="label_dim must be >= 1, got 0"):
        registry.build(name, label_dim=0)


@pytest.mark.parametrize("name", ["dcgan-shallow-g", "dcgan-classic-g"])
def test_a_label_width_without_classes_is_refused(name):
    with pytest.raises(ValueError, match="label_dim needs num_classes"):
        registry.build(name, label_dim=5)


def test_stylegan_refuses_a_mismatched_z2_and_a_cutoff_beyond_its_layers():
    generator = registry.build("stylegan-32", z_dim=16, w_dim=16).eval()
    z = torch.randn(2, 16)
    with torch.no_grad():
        with pytest.raises(ValueError, match=r"z2 must have z's shape \(2, 16\), got \(3, 16\)"):
            generator(z, z2=torch.randn(3, 16), mixing_prob=1.0)
        with pytest.raises(ValueError, match="truncation_cutoff must be at most the generator's 8 style layers"):
            generator(z, truncation_psi=0.7, truncation_cutoff=9)
        assert generator(z, truncation_psi=0.7, truncation_cutoff=8).shape == (2, 3, 32, 32)


@pytest.mark.parametrize("name, kwargs, side", [
    ("resnet6", dict(ngf=4), 16), ("effnet-resnet-b0", dict(ngf=8), 16),
    ("unet128", dict(ngf=4), 128), ("effnet-b0", dict(width_scale=0.25), 64),
])
def test_generators_name_in_channels_for_an_input_with_other_channels(name, kwargs, side):
    model = registry.build(name, in_channels=1, out_channels=1, **kwargs).eval()
    with torch.no_grad():
        with pytest.raises(ValueError, match="x has 3 channels but the network was built with in_channels=1"):
            model(torch.randn(1, 3, side, side))
        assert model(torch.randn(1, 1, side, side)).shape == (1, 1, side, side)


def test_a_norm_layer_factory_follows_the_models_build_or_is_refused():
    """fused/impl hold for the whole model: a default instance norm factory takes them, a
    conflicting one is an error (not norms built one way and the other fused layers another)."""
    from effgan.models import InstanceNormLayer
    from effgan.nn import FusedInstanceNorm2d, InstanceNormAct

    build = registry.build
    plain = build("resnet6", ngf=8, norm_layer=InstanceNormLayer(affine=True), fused=False, impl="ref")
    norms = [m for m in plain.modules() if isinstance(m, (FusedInstanceNorm2d, InstanceNormAct))]
    assert norms and all(type(m) is InstanceNormAct and m.affine for m in norms)
    fused = build("resnet6", ngf=8, norm_layer=InstanceNormLayer(affine=True), impl="ref")
    assert all(m.impl == "ref" for m in fused.modules() if isinstance(m, FusedInstanceNorm2d))
    with pytest.raises(ValueError, match="norm_layer=.*disagrees with the model's fused=True"):
        build("effnet-resnet-b0", norm_layer=InstanceNormLayer(fused=False))
    build("effnet-resnet-b0", norm_layer=InstanceNormLayer(fused=False), fused=False)  # said once: fine


@pytest.mark.parametrize("bad", ["a", 0, -1.0, float("nan"), True])
def test_stylegan_names_a_bad_mapping_lr_mul(bad):
    with pytest.raises(ValueError, match="mapping_lr_mul must be a finite number > 0"):
        registry.build("stylegan-32", mapping_lr_mul=bad)
