"""Building networks from the model registry, in one place.

Families call a ``ModelBuilder`` (``builder(name, **kwargs) -> nn.Module``). The default looks the
name up in ``effgan.models.build``; tests and experiments pass their own builder instead of
patching anything.
"""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

ModelBuilder = Callable[..., nn.Module]


def registry_builder(name: str, **kwargs: Any) -> nn.Module:
    from effgan.models import build  # lazy: the models pull in the fused ops

    return build(name, **kwargs)


def initialise(module: nn.Module, kind: str, gain: float) -> nn.Module:
    """Apply the run's weight init (``kind='none'`` keeps the model's own)."""
    if kind == "none":
        return module
    from effgan.models.init import init_weights

    return init_weights(module, kind=kind, gain=gain)


def gan_model_names(config, data, num_classes: int | None) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    """Registry names and arguments of the dcgan/cgan generator and discriminator."""
    arch = config.gan.arch
    common: dict[str, Any] = dict(fused=config.fused, impl=config.impl)
    if num_classes is not None:
        common["num_classes"] = num_classes
    g_kwargs = dict(common, nz=config.latent_dim, out_channels=data.channels)
    d_kwargs = dict(common, in_channels=data.channels)
    if arch == "classic":
        g_kwargs.update(ngf=config.ngf, image_size=data.image_size)
        d_kwargs.update(ndf=config.ndf, image_size=data.image_size)
    return f"dcgan-{arch}-g", f"dcgan-{arch}-d", g_kwargs, d_kwargs
