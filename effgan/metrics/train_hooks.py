"""Evaluation hooks for effgan.train: `train(config, metrics_fn=hook)` calls them at each checkpoint.

Their float results are logged with the losses and can select best.pt through the
config's best_metric, e.g. "paired_ssim_ab" (best_mode max) or "fid_ab/<extractor
name>" (best_mode min; the hook's `extractor.name` gives the exact key). Build the
extractor and classifier once (build_extractor, train_score_classifier) and hand
them in, so each checkpoint only pays for inference.
"""
from __future__ import annotations

import torch.nn as nn

from effgan.metrics.cyclegan_eval import evaluate_cyclegan
from effgan.metrics.generator_eval import evaluate_generator, evaluate_labelled_generator
from effgan.metrics.kid import KID_SUBSET_SIZE, KID_SUBSETS
from effgan.metrics.samplers import latent_sampler


class CycleGANEvalHook:
    """evaluate_cyclegan of the family's G_A (A -> B) and G_B (B -> A) on a held-out set."""

    def __init__(self, dataset, *, max_items: int = 50, extractor: nn.Module | None = None, kid_subsets: int = KID_SUBSETS,
                 kid_subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> None:
        self.dataset, self.max_items, self.extractor = dataset, max_items, extractor
        self.kid_args = dict(kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)

    def __call__(self, family) -> dict[str, float]:
        generators = family.sample_modules()
        return evaluate_cyclegan(generators["G_A"], generators["G_B"], self.dataset, device=family.runtime.device,
                                 max_items=self.max_items, extractor=self.extractor, **self.kid_args)


class LatentGeneratorEvalHook:
    """FID/KID (with an extractor), classifier score (cgan, with a classifier) of the family's G."""

    def __init__(self, dataset, *, max_items: int = 500, extractor: nn.Module | None = None,
                 classifier: nn.Module | None = None, kid_subsets: int = KID_SUBSETS, kid_subset_size: int = KID_SUBSET_SIZE,
                 seed: int = 0) -> None:
        self.dataset, self.max_items = dataset, max_items
        self.extractor, self.classifier, self.seed = extractor, classifier, seed
        self.kid_args = dict(kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)

    def __call__(self, family) -> dict[str, float]:
        num_classes = getattr(family, "num_classes", None)
        device = family.runtime.device
        # The same seed at every checkpoint: the same latents, so changes come from the weights.
        sampler = latent_sampler(_sampling_generator(family), family.config.latent_dim, device=device,
                                 seed=self.seed, conditional=num_classes is not None)
        if num_classes is not None:
            return evaluate_labelled_generator(sampler, self.dataset, device=device, max_items=self.max_items,
                                               extractor=self.extractor, classifier=self.classifier,
                                               num_classes=num_classes, **self.kid_args)
        return evaluate_generator(sampler, self.dataset, device=device, max_items=self.max_items,
                                  extractor=self.extractor, **self.kid_args)


def _sampling_generator(family) -> nn.Module:
    """The network that makes the family's samples: its EMA copy where it keeps one (stylegan's G_ema), else G."""
    modules = family.sample_modules()
    return modules["G_ema"] if "G_ema" in modules else modules["G"]
