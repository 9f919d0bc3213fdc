"""A buffer of past generated images for the CycleGAN discriminators.

Showing the discriminator a mix of current and older fakes (Shrivastava et al., 2017) damps
oscillation between G and D. Until the pool is full every fake is stored and returned as is;
afterwards each fake is, with probability 1/2, swapped for a random stored one (which it replaces).

The pool draws its randomness from its own CPU ``torch.Generator`` so that its choices do not
depend on (or disturb) the global RNG streams, and its whole state, images and generator
included, round-trips through :meth:`state_dict` as tensors.
"""
from __future__ import annotations

from typing import Any

import torch


class ImagePool:
    def __init__(self, pool_size: int, seed: int = 0) -> None:
        if not isinstance(pool_size, int) or pool_size < 0:
            raise ValueError(f"pool_size must be a non-negative int, got {pool_size!r}")
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch the same shape as ``images``, mixing in stored fakes; stores detached copies."""
        if images.dim() < 1:
            raise ValueError(f"images must have a batch dimension, got shape {tuple(images.shape)}")
        if self.pool_size == 0:
            return images.detach()
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                out.append(image)
                continue
            swap = torch.rand((), generator=self.generator).item() > 0.5
            if swap:
                index = int(torch.randint(0, self.pool_size, (), generator=self.generator).item())
                old = self.images[index].clone()
                self.images[index] = image.clone()
                out.append(old.to(image.device))
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        return {
            "pool_size": self.pool_size,
            "images": [image.detach().cpu() for image in self.images],
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str | None = None) -> None:
        if state["pool_size"] != self.pool_size:
            raise ValueError(f"pool_size mismatch: checkpoint {state['pool_size']}, pool {self.pool_size}")
        self.images = [image.to(device) if device is not None else image for image in state["images"]]
        self.generator.set_state(state["generator"])
