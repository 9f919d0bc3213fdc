"""Name -> model table behind ``effgan.models.build`` and ``list_models``.

Each entry is a constructor plus the arguments its name fixes (``resnet9`` fixes n_blocks=9)
and defaults a caller may override (``cgan-*`` defaults to 10 classes). The table is built once
from the family modules and never changes afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable

from torch import nn

from . import dcgan_mnist
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .dcgan_mnist import MnistDCGANDiscriminator, MnistDCGANGenerator
from .efficientnet import EfficientNetUnetGenerator
from .efficientnet_resnet import EfficientNetResnetGenerator
from .efficientnet_scaling import PRESET_PHIS
from .norm_act import BatchNormLayer
from .patchgan import NLayerDiscriminator, PixelDiscriminator
from .resnet import ResnetGenerator
from .stylegan import RESOLUTIONS, StyleGANGenerator
from .unet import UnetGenerator

CGAN_DEFAULT_CLASSES = 10


@dataclass(frozen=True)
class ModelEntry:
    factory: Callable[..., nn.Module]
    fixed: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    def build(self, name: str, kwargs: dict[str, Any]) -> nn.Module:
        clashes = sorted(set(kwargs) & set(self.fixed))
        if clashes:
            raise ValueError(f"model {name!r} fixes {clashes} "
                             f"({', '.join(f'{k}={self.fixed[k]!r}' for k in clashes)}); "
                             f"construct {self.factory.__name__} directly to change them")
        return self.factory(**{**self.defaults, **self.fixed, **kwargs})


def _dcgan_entries() -> dict[str, ModelEntry]:
    deep_d = dict(layers=dcgan_mnist.DEEP_D, negative_slope=0.2, dropout=0.0,
                  norm_layer=BatchNormLayer())
    pairs = {
        "classic": (ModelEntry(DCGANGenerator), ModelEntry(DCGANDiscriminator)),
        "shallow": (ModelEntry(MnistDCGANGenerator, fixed=dict(layers=dcgan_mnist.SHALLOW_G)),
                    ModelEntry(MnistDCGANDiscriminator, fixed=dict(layers=dcgan_mnist.SHALLOW_D))),
        "deep": (ModelEntry(MnistDCGANGenerator, fixed=dict(layers=dcgan_mnist.DEEP_G),
                            defaults=dict(negative_slope=0.2)),
                 ModelEntry(MnistDCGANDiscriminator, fixed=dict(layers=deep_d.pop("layers")),
                            defaults=deep_d)),
    }
    entries = {}
    for variant, (gen, disc) in pairs.items():
        entries[f"dcgan-{variant}-g"] = gen
        entries[f"dcgan-{variant}-d"] = disc
        for suffix, entry in (("g", gen), ("d", disc)):
            entries[f"cgan-{variant}-{suffix}"] = ModelEntry(
                entry.factory, entry.fixed,
                {**entry.defaults, "num_classes": CGAN_DEFAULT_CLASSES})
    return entries


def _entries() -> dict[str, ModelEntry]:
    entries = {
        "resnet9": ModelEntry(ResnetGenerator, fixed=dict(n_blocks=9)),
        "resnet6": ModelEntry(ResnetGenerator, fixed=dict(n_blocks=6)),
        "unet128": ModelEntry(UnetGenerator, fixed=dict(num_downs=7)),
        "unet256": ModelEntry(UnetGenerator, fixed=dict(num_downs=8)),
        "patchgan": ModelEntry(NLayerDiscriminator),
        "patchgan-dual": ModelEntry(NLayerDiscriminator, fixed=dict(heads=2)),
        "pixelgan": ModelEntry(PixelDiscriminator),
        "effnet-resnet": ModelEntry(EfficientNetResnetGenerator),
        "effnet-unet": ModelEntry(EfficientNetUnetGenerator),
        "stylegan": ModelEntry(StyleGANGenerator),
    }
    for phi in PRESET_PHIS:
        entries[f"effnet-resnet-b{phi}"] = ModelEntry(EfficientNetResnetGenerator,
                                                      fixed=dict(phi=phi))
        entries[f"effnet-b{phi}"] = ModelEntry(EfficientNetUnetGenerator, fixed=dict(phi=phi))
    for resolution in RESOLUTIONS:
        entries[f"stylegan-{resolution}"] = ModelEntry(StyleGANGenerator,
                                                       fixed=dict(resolution=resolution))
    entries.update(_dcgan_entries())
    return entries


MODELS = MappingProxyType(_entries())


def list_models() -> list[str]:
    """The names ``build`` accepts, sorted."""
    return sorted(MODELS)


def build(name: str, **kwargs) -> nn.Module:
    """The model registered as ``name``, with ``kwargs`` passed to its constructor.

    Raises ValueError for an unknown name (listing the known ones) or for a keyword the name
    already fixes (``build("resnet9", n_blocks=6)``).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    entry = MODELS.get(name)
    if entry is None:
        raise ValueError(f"unknown model name {name!r}; known models: {', '.join(list_models())}")
    return entry.build(name, kwargs)
