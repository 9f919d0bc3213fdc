"""Tiny training configurations shared by the tests/test_train_*.py files.

Sizes are the smallest the real models and datasets accept, so a step takes a fraction of a
second on a CPU core and every family still runs its real code path.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from effgan.train import TrainConfig


def tiny_config(model: str, out_dir, **overrides) -> TrainConfig:
    # impl="ref": the fused modules and loss ops run their PyTorch references, so no test waits
    # for the C++ extension to compile; the kernels are the ops' own tests' business
    common = dict(model=model, out_dir=str(out_dir), progress=False, tensorboard=False, log_every=1,
                  checkpoint_every=0, seed=0, device="cpu", num_samples=2, impl="ref", cpu_threads=1)
    if model == "cyclegan":
        family = dict(ngf=4, ndf=4, image_size=64, train_length=4, batch_size=1, epochs=1, epochs_decay=1)
    elif model in ("dcgan", "cgan"):
        family = dict(ngf=4, ndf=4, image_size=32, train_length=16, batch_size=4, latent_dim=8, epochs=1,
                      epochs_decay=0)
    else:
        family = dict(ngf=4, ndf=4, image_size=32, train_length=16, batch_size=4, latent_dim=8, epochs=1,
                      epochs_decay=0)
    config = TrainConfig(**{**common, **family, **{k: v for k, v in overrides.items() if "." not in k}})
    if model == "cyclegan":
        config.cyclegan = dataclasses.replace(config.cyclegan, d_layers=2, pool_size=2)
    if model in ("dcgan", "cgan"):
        config.gan = dataclasses.replace(config.gan, arch="classic")
    if model == "stylegan":
        config.stylegan = dataclasses.replace(config.stylegan, mapping_layers=2, r1_interval=2)
    for key, value in overrides.items():
        if "." in key:
            section, name = key.split(".")
            setattr(getattr(config, section), name, value)
    return config


def stylegan_available() -> bool:
    try:
        from effgan.nn import AdaIN  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture
def one_thread():
    """Tiny convolutions run fastest on one thread, and CI shares two cores between jobs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
