"""CycleGAN / pix2pix networks: exact parameter counts, equality with reference-structured
networks built from plain torch layers, fused vs plain builds, shapes."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from effgan.models import (BatchNormLayer, NLayerDiscriminator, PixelDiscriminator,
                           ResnetGenerator, UnetGenerator, build)
from test_models_support import (assert_same_forward_backward, assert_same_state_dict_layout,
                                 copy_params_in_order)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# ---- reference-structured networks: the published layer sequences, written out plainly ----

class RefResnetBlock(nn.Module):
    def __init__(self, dim, dropout):
        super().__init__()
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
                  nn.ReLU(True)]
        layers += [nn.Dropout(0.5)] if dropout else []
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x)


def ref_resnet(in_nc, out_nc, ngf, n_blocks, dropout=False):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_nc, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for i in range(2):
        m = 2 ** i
        layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1), nn.InstanceNorm2d(ngf * m * 2),
                   nn.ReLU(True)]
    layers += [RefResnetBlock(ngf * 4, dropout) for _ in range(n_blocks)]
    for i in range(2):
        m = 2 ** (2 - i)
        layers += [nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, 2, 1, output_padding=1),
                   nn.InstanceNorm2d(ngf * m // 2), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_nc, 7), nn.Tanh()]
    return nn.Sequential(*layers)


class RefUnetBlock(nn.Module):
    """Nested skip block, including the in-place LeakyReLU that also rewrites the skip tensor."""

    def __init__(self, outer, inner, input_nc=None, sub=None, outermost=False, innermost=False,
                 dropout=False):
        super().__init__()
        self.outermost = outermost
        input_nc = input_nc or outer
        down = nn.Conv2d(input_nc, inner, 4, 2, 1)
        if outermost:
            model = [down, sub, nn.ReLU(True), nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1),
                     nn.Tanh()]
        elif innermost:
            model = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                     nn.ConvTranspose2d(inner, outer, 4, 2, 1), nn.InstanceNorm2d(outer)]
        else:
            model = [nn.LeakyReLU(0.2, True), down, nn.InstanceNorm2d(inner), sub, nn.ReLU(True),
                     nn.ConvTranspose2d(inner * 2, outer, 4, 2, 1), nn.InstanceNorm2d(outer)]
            model += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def ref_unet(in_nc, out_nc, num_downs, ngf, dropout):
    block = RefUnetBlock(ngf * 8, ngf * 8, innermost=True)
    for _ in range(num_downs - 5):
        block = RefUnetBlock(ngf * 8, ngf * 8, sub=block, dropout=dropout)
    block = RefUnetBlock(ngf * 4, ngf * 8, sub=block)
    block = RefUnetBlock(ngf * 2, ngf * 4, sub=block)
    block = RefUnetBlock(ngf, ngf * 2, sub=block)
    return RefUnetBlock(out_nc, ngf, input_nc=in_nc, sub=block, outermost=True)


def ref_patchgan(in_nc, ndf, n_layers):
    layers = [nn.Conv2d(in_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    mult = 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 2, 1), nn.InstanceNorm2d(ndf * mult),
                   nn.LeakyReLU(0.2, True)]
    prev, mult = mult, min(2 ** n_layers, 8)
    layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1), nn.InstanceNorm2d(ndf * mult),
               nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
    return nn.Sequential(*layers)


def ref_pixelgan(in_nc, ndf):
    return nn.Sequential(nn.Conv2d(in_nc, ndf, 1), nn.LeakyReLU(0.2, True),
                         nn.Conv2d(ndf, ndf * 2, 1), nn.InstanceNorm2d(ndf * 2),
                         nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * 2, 1, 1))


def rand_image(n, c, h, w, seed=0):
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))


# ---- parameter counts (the published figures) ----

# Full-size networks are built on the meta device: shapes only, no memory or init cost.

@pytest.mark.parametrize("fused", [True, False])
def test_published_parameter_counts(fused):
    with torch.device("meta"):
        assert n_params(build("resnet9", fused=fused)) == 11_378_179
        assert n_params(build("resnet6", fused=fused)) == 7_837_699
        assert n_params(build("patchgan", fused=fused)) == 2_764_737


@pytest.mark.parametrize("num_downs", [7, 8])
def test_unet_parameter_shapes_match_reference(num_downs):
    with torch.device("meta"):
        ours = build(f"unet{2 ** num_downs}", fused=False)
        ref = ref_unet(3, 3, num_downs, 64, dropout=True)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in ref.parameters()]


# ---- same function as the reference networks ----

@pytest.mark.parametrize("dropout", [0.0, 0.5])
def test_resnet_matches_reference(dropout):
    ref = ref_resnet(3, 2, ngf=8, n_blocks=3, dropout=dropout > 0)
    ours = ResnetGenerator(3, 2, ngf=8, n_blocks=3, dropout=dropout, fused=False)
    copy_params_in_order(ours, ref)
    x = rand_image(2, 3, 28, 20)
    ref.eval(), ours.eval()
    assert_same_forward_backward(ref, ours, (x,), atol=1e-5, rtol=1e-5)
    if dropout:  # same dropout masks when the RNG starts from the same state
        ref.train(), ours.train()
        torch.manual_seed(3)
        y_ref = ref(x)
        torch.manual_seed(3)
        torch.testing.assert_close(ours(x), y_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("num_downs,side", [(5, 32), (6, 128)])
def test_unet_matches_reference_including_dropout(num_downs, side):
    ref = ref_unet(3, 2, num_downs, ngf=4, dropout=True)
    ours = UnetGenerator(3, 2, num_downs=num_downs, ngf=4, dropout=0.5, fused=False)
    copy_params_in_order(ours, ref)
    x = rand_image(2, 3, side, 2 * side, seed=1)
    ref.eval(), ours.eval()
    assert_same_forward_backward(ref, ours, (x,), atol=1e-5, rtol=1e-5)
    ref.train(), ours.train()
    torch.manual_seed(5)
    y_ref = ref(x.clone())
    torch.manual_seed(5)
    torch.testing.assert_close(ours(x.clone()), y_ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_layers", [1, 3, 4])
def test_patchgan_matches_reference(n_layers):
    ref = ref_patchgan(3, 8, n_layers)
    ours = NLayerDiscriminator(3, ndf=8, n_layers=n_layers, fused=False)
    copy_params_in_order(ours, ref)
    x = rand_image(2, 3, 70, 54, seed=2)
    assert_same_forward_backward(ref, ours, (x,), atol=1e-5, rtol=1e-5)


def test_pixelgan_matches_reference():
    ref = ref_pixelgan(3, 8)
    ours = PixelDiscriminator(3, ndf=8, fused=False)
    copy_params_in_order(ours, ref)
    assert_same_forward_backward(ref, ours, (rand_image(2, 3, 9, 7, seed=3),), atol=1e-5, rtol=1e-5)


# ---- shapes ----

def test_patchgan_256_gives_30x30():
    d = build("patchgan", fused=False)
    with torch.no_grad():
        assert d(rand_image(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_dual_head_patchgan_shares_trunk():
    d = build("patchgan-dual", ndf=8, fused=False)
    out = d(rand_image(2, 3, 64, 64))
    assert isinstance(out, tuple) and len(out) == 2
    assert out[0].shape == out[1].shape == (2, 1, 6, 6)
    assert not torch.allclose(out[0], out[1])  # independent heads
    single = NLayerDiscriminator(ndf=8, fused=False)
    assert n_params(d) == n_params(single) + n_params(single.heads[0])


@pytest.mark.parametrize("name,side", [("resnet9", 36), ("resnet6", 20), ("unet128", 128),
                                        ("unet256", 256)])
def test_generator_shapes(name, side):
    g = build(name, ngf=2, out_channels=1, fused=False).eval()
    with torch.no_grad():
        y = g(rand_image(1, 3, side, side))
    assert y.shape == (1, 1, side, side)
    assert y.abs().max() <= 1


def test_pixelgan_keeps_resolution():
    assert build("pixelgan", ndf=4, fused=False)(rand_image(1, 3, 13, 11)).shape == (1, 1, 13, 11)


# ---- fused vs plain builds ----

CASES = [
    (lambda fused, impl: ResnetGenerator(3, 3, ngf=4, n_blocks=2, dropout=0.0, fused=fused,
                                         impl=impl), (2, 3, 20, 24)),
    (lambda fused, impl: UnetGenerator(3, 3, num_downs=5, ngf=4, fused=fused, impl=impl),
     (2, 3, 32, 64)),
    (lambda fused, impl: NLayerDiscriminator(3, ndf=4, n_layers=3, heads=2, fused=fused,
                                             impl=impl), (2, 3, 40, 36)),
    (lambda fused, impl: PixelDiscriminator(3, ndf=4, fused=fused, impl=impl), (2, 3, 7, 9)),
]


@pytest.mark.parametrize("impl", ["ref", "auto"])
@pytest.mark.parametrize("case", range(len(CASES)), ids=["resnet", "unet", "patchgan", "pixelgan"])
def test_fused_build_equals_plain_build(case, impl):
    # float64: the builds must agree to roundoff. In float32 the gradient of a conv bias that an
    # instance norm follows is exactly zero but computed as a sum of roundoff, whose size depends
    # on the thread count of ATen's reductions; no tolerance separates that from a real error.
    make, shape = CASES[case]
    plain, fused = make(False, "auto").eval().double(), make(True, impl).eval().double()
    assert_same_state_dict_layout(plain, fused)
    fused.load_state_dict(plain.state_dict())
    assert_same_forward_backward(plain, fused, (rand_image(*shape, seed=4).double(),), atol=1e-9, rtol=1e-7)


def test_fused_build_uses_fused_modules():
    from effgan.nn import FusedInstanceNorm2d, InstanceNormAct

    kinds = lambda m: {type(x) for x in m.modules()}  # noqa: E731
    assert FusedInstanceNorm2d in kinds(build("resnet6", ngf=4, fused=True))
    assert FusedInstanceNorm2d not in kinds(build("resnet6", ngf=4, fused=False))
    assert InstanceNormAct in kinds(build("resnet6", ngf=4, fused=False))
    # The ReLU lives in the norm module in both builds: no separate activation modules.
    assert nn.ReLU not in kinds(build("resnet6", ngf=4, fused=False))


def test_batch_norm_drops_conv_bias_like_the_reference():
    with_bn = ResnetGenerator(ngf=8, n_blocks=1, norm_layer=BatchNormLayer())
    convs = [m for m in with_bn.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert all(c.bias is None for c in convs[:-1]) and convs[-1].bias is not None
    y = with_bn(rand_image(2, 3, 16, 16))
    assert y.shape == (2, 3, 16, 16)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="num_downs"):
        UnetGenerator(num_downs=4)
    with pytest.raises(ValueError, match="dropout"):
        ResnetGenerator(dropout=1.5)
    with pytest.raises(ValueError, match="impl"):
        ResnetGenerator(impl="cuda")
    with pytest.raises(TypeError, match="norm_layer"):
        NLayerDiscriminator(norm_layer=nn.InstanceNorm2d)
    with pytest.raises(ValueError, match="multiples of 32"):
        UnetGenerator(num_downs=5, ngf=2, fused=False)(rand_image(1, 3, 48, 40))
