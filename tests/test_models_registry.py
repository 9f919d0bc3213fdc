"""The registry: names, errors, and a forward + backward of every registered model on the CPU,
in both builds, with identical state_dict layouts."""
from __future__ import annotations

import pytest
import torch

from effgan.models import build, list_models
from test_models_support import (assert_same_forward_backward, assert_same_state_dict_layout,
                                 require_effgan_nn)


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def small_case(name: str):
    """(constructor kwargs, inputs, effgan.nn modules needed) for a small instance of ``name``."""
    img = lambda side, c=3: (randn(2, c, side, side + 8 * (side < 64)),)  # noqa: E731
    if name.startswith("resnet"):
        return dict(ngf=2), img(12), ()
    if name.startswith("unet"):
        return dict(ngf=1), img(int(name[4:])), ()
    if name.startswith(("patchgan", "pixelgan")):
        return dict(ndf=4), img(40), ()
    if name.startswith("effnet-resnet"):
        return dict(ngf=2), img(16), ("MBConv",)
    if name.startswith("effnet"):
        return dict(width_scale=0.25), (randn(1, 3, 64, 64),), ("MBConv",)
    if name.startswith("stylegan"):
        return dict(z_dim=8, channel_max=8, mapping_layers=2), (randn(2, 8),), ("AdaIN",)
    conditional = name.startswith("cgan")
    labels = (torch.tensor([3, 1]),) if conditional else ()
    if name.endswith("classic-g"):
        return dict(nz=5, ngf=2, image_size=32), (randn(2, 5),) + labels, ()
    if name.endswith("classic-d"):
        return dict(ndf=2, image_size=32), (randn(2, 3, 32, 32),) + labels, ()
    if name.endswith("-g"):
        return dict(nz=5), (randn(2, 5),) + labels, ()
    if name.endswith("-d"):
        return {}, (randn(2, 1, 28, 28),) + labels, ()
    raise AssertionError(f"no small test case for registered model {name!r}")


def test_list_models_names_every_family():
    names = list_models()
    assert names == sorted(names)
    for expected in ["resnet9", "resnet6", "unet128", "unet256", "patchgan", "pixelgan",
                     "effnet-resnet-b0", "effnet-resnet-b3", "effnet-b0", "effnet-b3",
                     "stylegan", "stylegan-32", "stylegan-256", "dcgan-classic-g",
                     "dcgan-shallow-d", "dcgan-deep-g", "cgan-classic-d"]:
        assert expected in names


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError, match="unknown model name 'resnet7'") as info:
        build("resnet7")
    assert all(name in str(info.value) for name in list_models())
    with pytest.raises(TypeError, match="name"):
        build(9)


@pytest.mark.parametrize("name", list_models())
def test_every_model_forward_backward(name):
    """Fused build (impl="ref"): train-mode forward + backward, a gradient for every parameter,
    and the plain build's state_dict has the same keys and shapes (and loads)."""
    kwargs, inputs, needs = small_case(name)
    require_effgan_nn(*needs)
    torch.manual_seed(0)
    fused = build(name, fused=True, impl="ref", **kwargs).train()
    plain = build(name, fused=False, **kwargs)
    assert_same_state_dict_layout(plain, fused)
    plain.load_state_dict(fused.state_dict())
    forward_kwargs = {"noise_mode": "none"} if name.startswith("stylegan") else {}
    out = fused(*inputs, **forward_kwargs)
    outs = out if isinstance(out, tuple) else (out,)
    assert all(torch.isfinite(o).all() for o in outs)
    sum(o.square().mean() for o in outs).backward()
    missing = [n for n, p in fused.named_parameters() if p.grad is None]
    assert not missing, missing


# Fused vs plain outputs and gradients: every family without its own parity test. The
# CycleGAN, EfficientNet and StyleGAN families compare their builds in their own test files.
PARITY = [name for name in list_models() if name.startswith(("dcgan", "cgan"))]


@pytest.mark.parametrize("name", PARITY)
def test_builds_agree(name):
    kwargs, inputs, _ = small_case(name)
    torch.manual_seed(0)
    plain = build(name, fused=False, **kwargs).eval()
    fused = build(name, fused=True, **kwargs).eval()
    fused.load_state_dict(plain.state_dict())
    assert_same_forward_backward(plain, fused, inputs, atol=1e-5, rtol=1e-5)
