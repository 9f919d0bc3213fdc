"""Seeded samplers that turn a latent-variable generator into the callables the metrics take."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Callable

import torch
import torch.nn as nn

from effgan.models.modes import evaluating


def latent_sampler(generator: nn.Module, latent_dim: int, *, device: torch.device | str, seed: int = 0,
                   conditional: bool) -> Callable:
    """(n, labels) -> images for a conditional G(z, labels), (n) -> images otherwise; z ~ N(0, I) seeded.

    The latents come from the sampler's own generator, and whatever the network draws from the
    global RNG (StyleGAN's per-layer noise) from a seed the sampler draws too, with the global
    stream restored afterwards: evaluating never moves the caller's random stream, and the same
    seed gives the same samples. The network runs in eval mode (its mode restored afterwards), so
    sampling updates no BatchNorm statistics or w average.
    """
    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
    noise = torch.Generator().manual_seed(seed)
    device = torch.device(device)

    def run(n: int, labels: torch.Tensor | None) -> torch.Tensor:
        z = torch.randn(n, latent_dim, generator=noise).to(device)
        if conditional:
            if labels is None:
                raise ValueError("a conditional generator needs labels")
            return generator(z, labels.to(device)).float().cpu()
        return generator(z).float().cpu()

    def sample(n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        call_seed = int(torch.randint(0, 2**62, (), generator=noise))
        with _seeded_global_rng(call_seed, device), evaluating(generator):
            return run(n, labels)

    return sample


@contextlib.contextmanager
def _seeded_global_rng(seed: int, device: torch.device) -> Iterator[None]:
    """The global CPU RNG (and ``device``'s, on CUDA) seeded with ``seed`` inside, restored after."""
    cuda = device.type == "cuda"
    index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
    with torch.random.fork_rng(devices=[index] if cuda else []):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
