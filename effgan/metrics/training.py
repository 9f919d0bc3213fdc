"""Short, seeded supervised training of the metric networks, and batched inference.

Every random choice (initial weights, batch order) comes from the given seed, and the
caller's global RNG state is left as it was, so a metric never perturbs a training run
that calls it.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from effgan.metrics.small_cnn import SmallCNN


def build_seeded(factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Call factory() with the global torch RNG seeded, restoring the caller's RNG state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory()


def fit_classifier(
    model: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    augment: Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> nn.Module:
    """Train `model` with Adam on cross-entropy for `steps` minibatches; returns it in eval mode.

    images: (N, C, H, W) float tensor; targets: (N,) int64 class indices.
    `augment(batch, targets, generator) -> (batch, targets)` may rewrite each minibatch
    (the self-supervised feature net makes its rotation targets this way).
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if targets.shape != (images.shape[0],):
        raise ValueError(f"targets must have shape ({images.shape[0]},), got {tuple(targets.shape)}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an int >= 2, got {batch_size!r}")
    generator = torch.Generator().manual_seed(seed)
    model = model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    n = images.shape[0]
    order = torch.randperm(n, generator=generator)
    position = 0
    for _ in range(steps):
        if position + batch_size > n:
            order = torch.randperm(n, generator=generator)
            position = 0
        index = order[position : position + batch_size]
        position += batch_size
        batch, batch_targets = images[index], targets[index]
        if augment is not None:
            batch, batch_targets = augment(batch, batch_targets, generator)
        loss = F.cross_entropy(model(batch.to(device)), batch_targets.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, *, batch_size: int = 256,
                   device: torch.device | str = "cpu") -> torch.Tensor:
    """Logits of an eval-mode model over images, batched, returned on the CPU."""
    model = model.to(device).eval()
    outputs = [model(images[i : i + batch_size].to(device)).cpu() for i in range(0, images.shape[0], batch_size)]
    return torch.cat(outputs) if outputs else torch.empty(0)


def train_small_classifier(
    images: torch.Tensor, targets: torch.Tensor, num_classes: int, *, steps: int, seed: int = 0,
    width: int = 32, batch_size: int = 64, device: torch.device | str = "cpu",
) -> SmallCNN:
    """A seeded SmallCNN trained as a classifier of `images` into `num_classes` classes."""
    model = build_seeded(lambda: SmallCNN(images.shape[1], num_classes, width=width), seed)
    return fit_classifier(model, images, targets, steps=steps, batch_size=min(batch_size, images.shape[0]),
                          seed=seed, device=device)


def accuracy(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, *, device="cpu") -> float:
    """Fraction of images whose argmax logit equals the target."""
    if images.shape[0] == 0:
        raise ValueError("images is empty")
    if tuple(targets.shape) != (images.shape[0],):  # an (N, 1) target would broadcast against (N,)
        raise ValueError(f"targets must have shape ({images.shape[0]},), got {tuple(targets.shape)}")
    predictions = predict_logits(model, images, device=device).argmax(dim=1)
    return float((predictions == targets.cpu()).double().mean())
