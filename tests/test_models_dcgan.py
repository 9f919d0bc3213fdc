"""DCGAN family: published parameter counts, every image size, conditional versions."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from effgan.models import DCGANDiscriminator, DCGANGenerator, build
from test_models_support import assert_same_forward_backward, copy_params_in_order


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def ref_dcgan_64(nz, ngf, ndf, nc):
    """The reference 64x64 DCGAN layer sequences, written out."""
    g = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False))
    return g, d


def test_classic_published_parameter_counts():
    with torch.device("meta"):
        assert n_params(build("dcgan-classic-g")) == 3_576_704
        assert n_params(build("dcgan-classic-d")) == 2_765_568


def test_shallow_published_parameter_counts():
    # Trainable parameters of the two-layer 28x28 DCGAN (batch-norm running stats excluded).
    assert n_params(build("dcgan-shallow-g")) == 2_305_472
    assert n_params(build("dcgan-shallow-d")) == 212_865


def test_classic_matches_reference_in_train_mode():
    ref_g, ref_d = ref_dcgan_64(nz=7, ngf=4, ndf=4, nc=3)
    g = DCGANGenerator(nz=7, ngf=4, image_size=64)
    d = DCGANDiscriminator(ndf=4, image_size=64)
    copy_params_in_order(g, ref_g)
    copy_params_in_order(d, ref_d)
    z = randn(3, 7)
    # The reference takes (N, nz, 1, 1); ours also accepts it.
    assert_same_forward_backward(ref_g, g, (z[:, :, None, None],), atol=1e-5, rtol=1e-5)
    x = randn(3, 3, 64, 64, seed=1)
    ref_logits = lambda t: ref_d(t).flatten(1)  # noqa: E731
    out_ref, out = ref_logits(x), d(x)
    torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
    assert out.shape == (3, 1)


@pytest.mark.parametrize("size", [28, 32, 64, 128, 256])
def test_classic_every_size(size):
    g = DCGANGenerator(nz=5, out_channels=2, ngf=2, image_size=size)
    d = DCGANDiscriminator(in_channels=2, ndf=2, image_size=size, sigmoid=True)
    img = g(randn(2, 5))
    assert img.shape == (2, 2, size, size) and img.abs().max() <= 1
    p = d(img)
    assert p.shape == (2, 1) and ((p > 0) & (p < 1)).all()
    p.sum().backward()
    assert all(q.grad is not None for q in g.parameters())


@pytest.mark.parametrize("variant", ["classic", "shallow", "deep"])
def test_conditional_versions_use_labels(variant):
    kw = dict(image_size=32, ngf=4) if variant == "classic" else {}
    g = build(f"cgan-{variant}-g", nz=6, **kw).eval()
    kw_d = dict(image_size=32, ndf=4) if variant == "classic" else {}
    d = build(f"cgan-{variant}-d", **kw_d).eval()
    z = randn(4, 6)
    a, b = torch.tensor([0, 1, 2, 3]), torch.tensor([9, 8, 7, 6])
    with torch.no_grad():
        img = g(z, a)
        assert not torch.allclose(img, g(z, b))  # the label changes the image
        assert not torch.allclose(d(img, a), d(img, b))
    side = 32 if variant == "classic" else 28
    assert img.shape[-2:] == (side, side) and d(img, a).shape == (4, 1)
    with pytest.raises(ValueError, match="labels"):
        g(z)
    with pytest.raises(ValueError, match="labels"):
        build(f"dcgan-{variant}-g", nz=6, **kw)(z, a)


def test_deep_variant_layout():
    d = build("dcgan-deep-d")
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    assert [c.stride[0] for c in convs] == [2, 2, 1, 1]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.modules()) == 3
    g = build("dcgan-deep-g")
    assert g(randn(2, 100)).shape == (2, 1, 28, 28)
    assert [m.out_channels for m in g.modules() if isinstance(m, nn.ConvTranspose2d)] == \
        [128, 64, 32, 1]


def test_dcgan_init_is_reference_normal():
    g = DCGANGenerator(ngf=16, image_size=32)
    convs = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.ConvTranspose2d)])
    bns = torch.cat([m.weight for m in g.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(convs.std().item() - 0.02) < 0.002 and abs(convs.mean().item()) < 0.002
    assert abs(bns.mean().item() - 1) < 0.01 and 0.01 < bns.std().item() < 0.03


def test_bad_arguments():
    with pytest.raises(ValueError, match="image_size"):
        DCGANGenerator(image_size=48)
    with pytest.raises(ValueError, match="z must be"):
        DCGANGenerator(nz=5, image_size=32)(randn(2, 6))
    with pytest.raises(ValueError, match="x must be"):
        DCGANDiscriminator(image_size=32)(randn(2, 3, 64, 64))
    with pytest.raises(ValueError, match="n_blocks"):
        build("resnet9", n_blocks=6)


@pytest.mark.parametrize("layers", ["shallow", "deep"])
def test_mnist_generator_takes_every_norm_from_norm_layer(layers):
    # The dense projection kept a BatchNorm1d whatever norm_layer said, so a NoNormLayer generator
    # still normalised by batch statistics (its output depended on the rest of the batch).
    from effgan.models.dcgan_mnist import DEEP_G, SHALLOW_G, MnistDCGANGenerator
    from effgan.models.norm_act import BatchNormLayer, InstanceNormLayer, NoNormLayer

    spec = SHALLOW_G if layers == "shallow" else DEEP_G
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(0))
    for norm_layer in (NoNormLayer(), InstanceNormLayer(fused=False)):
        g = MnistDCGANGenerator(spec, norm_layer=norm_layer, fused=False)
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in g.modules())
        g.train()
        torch.testing.assert_close(g(z)[:1], g(z[:1]))  # a sample does not depend on its batch
    bn = MnistDCGANGenerator(spec, norm_layer=BatchNormLayer())
    assert isinstance(bn.project[1], torch.nn.BatchNorm1d) and bn.project[0].bias is None
