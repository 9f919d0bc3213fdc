"""Evaluation of image generators against a real set: FID/KID, classifier score, C2ST.

A labelled generator is a callable (n, labels (n,)) -> images (n, C, H, W) in [-1, 1]; an
unconditional one is (n) -> images. The learned metric networks (extractor,
classifier) are arguments so that a training loop builds them once and reuses them at
every evaluation; C2ST trains a fresh network per call and is off unless c2st_steps > 0.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from effgan.metrics.c2st import classifier_two_sample_test
from effgan.metrics.classifier_score import balanced_counts, generate_balanced, score_generated
from effgan.models.modes import evaluating
from effgan.metrics.features import distribution_metrics, extract_features
from effgan.metrics.image_sources import collect_images


def _distribution_and_c2st(real: torch.Tensor, fake: torch.Tensor, *, extractor, device, kid_subsets,
                           kid_subset_size, seed, c2st_steps) -> dict[str, float]:
    results: dict[str, float] = {}
    if extractor is not None:
        with evaluating(extractor):
            real_features = extract_features(extractor, real, device=device)
            fake_features = extract_features(extractor, fake, device=device)
        results.update(distribution_metrics(real_features, fake_features, kid_subsets=kid_subsets,
                                            kid_subset_size=kid_subset_size, seed=seed))
    if c2st_steps > 0:
        results.update(classifier_two_sample_test(real, fake, steps=c2st_steps, seed=seed, device=device))
    return results


def evaluate_labelled_generator(generator: Callable[[int, torch.Tensor], torch.Tensor], loader_or_dataset, *,
                                device: torch.device | str = "cpu", max_items: int | None = 1000,
                                extractor: nn.Module | None = None, classifier: nn.Module | None = None,
                                num_classes: int | None = None, kid_subsets: int = 100,
                                kid_subset_size: int = 1000, c2st_steps: int = 0, seed: int = 0) -> dict[str, float]:
    """Metrics of a class-conditional generator against a real labelled (test) set, as plain floats.

    Generates as many images as real ones are read, balanced over classes (at least one of each
    class, so more when fewer real images than classes are read).
    Keys: classifier_acc/* (with a classifier), fid|kid_mean|kid_std/<extractor> (with an
    extractor), c2st_accuracy (with c2st_steps > 0).
    """
    real, labels = collect_images(loader_or_dataset, max_items=max_items, with_labels=True)
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    modules = [m for m in (generator,) if isinstance(m, nn.Module)]
    with evaluating(*modules):
        fake, fake_labels = generate_balanced(generator, num_classes, balanced_counts(real.shape[0], num_classes))
    results: dict[str, float] = {}
    if classifier is not None:
        with evaluating(classifier):
            results.update(score_generated(classifier, fake, fake_labels, num_classes=num_classes,
                                           real_test_images=real, real_test_labels=labels, device=device))
    results.update(_distribution_and_c2st(real, fake, extractor=extractor, device=device, kid_subsets=kid_subsets,
                                          kid_subset_size=kid_subset_size, seed=seed, c2st_steps=c2st_steps))
    return results


def evaluate_generator(sample: Callable[[int], torch.Tensor], loader_or_dataset, *,
                       device: torch.device | str = "cpu", max_items: int | None = 1000,
                       extractor: nn.Module | None = None, kid_subsets: int = 100, kid_subset_size: int = 1000,
                       c2st_steps: int = 0, batch_size: int = 256, seed: int = 0) -> dict[str, float]:
    """FID/KID (with an extractor) and C2ST (c2st_steps > 0) of an unconditional sampler (n) -> images."""
    real = collect_images(loader_or_dataset, max_items=max_items)
    modules = [m for m in (sample,) if isinstance(m, nn.Module)]
    with evaluating(*modules):
        chunks = []
        for start in range(0, real.shape[0], batch_size):
            n = min(batch_size, real.shape[0] - start)
            chunks.append(sample(n).detach().float().cpu())
    fake = torch.cat(chunks)
    return _distribution_and_c2st(real, fake, extractor=extractor, device=device, kid_subsets=kid_subsets,
                                  kid_subset_size=kid_subset_size, seed=seed, c2st_steps=c2st_steps)
