"""Seeded samplers that turn a latent-variable generator into the callables the metrics take."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn


def latent_sampler(generator: nn.Module, latent_dim: int, *, device: torch.device | str, seed: int = 0,
                   conditional: bool) -> Callable:
    """(n, labels) -> images for a conditional G(z, labels), (n) -> images otherwise; z ~ N(0, I) seeded.

    The noise comes from the sampler's own generator, so evaluating never touches the
    global RNG and the same seed gives the same samples.
    """
    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}")
    noise = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def sample(n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        z = torch.randn(n, latent_dim, generator=noise).to(device)
        if conditional:
            if labels is None:
                raise ValueError("a conditional generator needs labels")
            return generator(z, labels.to(device)).float().cpu()
        return generator(z).float().cpu()

    return sample
