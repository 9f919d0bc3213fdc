"""Classifier two-sample test (C2ST): can a CNN tell real images from generated ones?

Half of each sample trains a small CNN to separate real from generated; its accuracy
on the held-out halves is the statistic. 0.5 means the two samples are
indistinguishable to the network, 1.0 means perfectly separable.
"""
from __future__ import annotations

import torch

from effgan.metrics.training import accuracy, train_small_classifier


def classifier_two_sample_test(real: torch.Tensor, fake: torch.Tensor, *, steps: int = 200,
                               test_fraction: float = 0.5, seed: int = 0, width: int = 16,
                               device: torch.device | str = "cpu") -> dict[str, float]:
    """{"c2st_accuracy": held-out accuracy, "c2st_n_test": number of held-out images}.

    Both samples are cut to the smaller one's size so that chance level is exactly 0.5.
    """
    for arg, value in (("real", real), ("fake", fake)):
        if not isinstance(value, torch.Tensor) or value.dim() != 4:
            raise ValueError(f"{arg} must be an (N, C, H, W) tensor")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real and fake image shapes differ: {tuple(real.shape[1:])} vs {tuple(fake.shape[1:])}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n = min(real.shape[0], fake.shape[0])
    n_test = int(round(n * test_fraction))
    if n_test < 1 or n - n_test < 2:
        raise ValueError(f"need more images for a C2ST: {n} per sample with test_fraction {test_fraction}")

    generator = torch.Generator().manual_seed(seed)
    real = real[torch.randperm(real.shape[0], generator=generator)[:n]].float().cpu()
    fake = fake[torch.randperm(fake.shape[0], generator=generator)[:n]].float().cpu()
    train_images = torch.cat([real[n_test:], fake[n_test:]])
    train_labels = torch.cat([torch.ones(n - n_test), torch.zeros(n - n_test)]).long()
    test_images = torch.cat([real[:n_test], fake[:n_test]])
    test_labels = torch.cat([torch.ones(n_test), torch.zeros(n_test)]).long()

    classifier = train_small_classifier(train_images, train_labels, 2, steps=steps, seed=seed, width=width,
                                        device=device)
    return {"c2st_accuracy": accuracy(classifier, test_images, test_labels, device=device),
            "c2st_n_test": float(2 * n_test)}
