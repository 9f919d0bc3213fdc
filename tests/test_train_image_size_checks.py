"""Image sizes the chosen networks cannot take are refused by the config, naming image_size, before
any run folder exists (the networks alone would refuse only the first batch)."""
from __future__ import annotations

import pytest

from effgan.train import train
from effgan.train.config import TrainConfig, resolve
from train_support import tiny_config


@pytest.mark.parametrize("model, size, section, match", [
    ("dcgan", 64, {"arch": "shallow"}, r"image_size must be 28 for gan.arch='shallow'.*'classic' takes \[28, 32"),
    ("cgan", 32, {"arch": "deep"}, r"image_size must be 28 for gan.arch='deep'"),
    ("dcgan", 48, {"arch": "classic"}, r"image_size must be one of \[28, 32, 64, 128, 256\] for gan.arch='classic'"),
    ("stylegan", 48, {}, r"image_size must be one of \[32, 64, 128, 256\] for stylegan"),
    ("cyclegan", 64, {"generator": "unet128"}, r"image_size must be a multiple of 128 .*'unet128'"),
    ("cyclegan", 128, {"generator": "unet256"}, r"image_size must be a multiple of 256 .*'unet256'"),
    ("cyclegan", 38, {"generator": "resnet6"}, r"image_size must be a multiple of 4 of at least 8 .*'resnet6'"),
    ("cyclegan", 66, {"generator": "effnet-resnet-b0"}, r"multiple of 4 of at least 8 .*'effnet-resnet-b0'"),
    ("cyclegan", 48, {"generator": "effnet-b0"}, r"image_size must be a multiple of 32 of at least 64 .*'effnet-b0'"),
])
def test_sizes_the_networks_cannot_take_are_refused(tmp_path, model, size, section, match):
    section_name = "cyclegan" if model == "cyclegan" else "gan" if model in ("dcgan", "cgan") else None
    overrides = {f"{section_name}.{k}": v for k, v in section.items()}
    with pytest.raises(ValueError, match=match):
        train(tiny_config(model, tmp_path, run_name="r", image_size=size, **overrides))
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("model, size, section", [
    ("dcgan", 28, dict(arch="shallow")), ("dcgan", 64, dict(arch="classic")), ("stylegan", 32, {}),
    ("cyclegan", 256, dict(generator="unet128")), ("cyclegan", 72, dict(generator="resnet6")),
    ("cyclegan", 68, dict(generator="resnet9")), ("cyclegan", 64, dict(generator="effnet-b0")),
])
def test_sizes_they_take_pass(model, size, section):
    config = TrainConfig(model=model, image_size=size)
    for key, value in section.items():
        setattr(config.cyclegan if model == "cyclegan" else config.gan, key, value)
    assert resolve(config).image_size == size
