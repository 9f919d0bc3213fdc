"""Feature sets tagged with the extractor that produced them, and FID/KID between them.

A FID or KID number means nothing without its feature extractor, so features carry
the extractor's name, metrics refuse to compare features from different extractors,
and every reported key names the extractor ("fid/<extractor>").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from effgan.metrics.frechet import frechet_distance_from_features
from effgan.metrics.kid import kernel_inception_distance


@dataclass(frozen=True)
class FeatureSet:
    """(N, D) features and the name of the extractor that computed them."""

    extractor: str
    features: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.extractor, str) or not self.extractor:
            raise TypeError("extractor must be a non-empty str")
        if not isinstance(self.features, np.ndarray) or self.features.ndim != 2:
            raise ValueError("features must be a 2-D numpy array")


def extractor_name(extractor: torch.nn.Module) -> str:
    name = getattr(extractor, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"extractor {type(extractor).__name__} needs a non-empty str attribute `name`")
    return name


@torch.no_grad()
def extract_features(extractor: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 64,
                     device: torch.device | str = "cpu") -> FeatureSet:
    """Run an eval-mode extractor over (N, C, H, W) images in [-1, 1], batched."""
    name = extractor_name(extractor)
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError("images must be an (N, C, H, W) tensor")
    extractor = extractor.to(device).eval()
    chunks = [extractor(images[i : i + batch_size].to(device)).double().cpu()
              for i in range(0, images.shape[0], batch_size)]
    return FeatureSet(name, torch.cat(chunks).numpy())


def _check_same_extractor(a: FeatureSet, b: FeatureSet) -> None:
    if a.extractor != b.extractor:
        raise ValueError(f"cannot compare features of different extractors: {a.extractor!r} vs {b.extractor!r}")


def fid(a: FeatureSet, b: FeatureSet) -> float:
    """Fréchet distance between the feature distributions (raises if the extractors differ)."""
    _check_same_extractor(a, b)
    return frechet_distance_from_features(a.features, b.features)


def kid(a: FeatureSet, b: FeatureSet, *, n_subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """(mean, std) KID between the feature distributions (raises if the extractors differ)."""
    _check_same_extractor(a, b)
    return kernel_inception_distance(a.features, b.features, n_subsets=n_subsets,
                                     subset_size=subset_size, seed=seed)


def distribution_metrics(real: FeatureSet, fake: FeatureSet, *, suffix: str = "", kid_subsets: int = 100,
                         kid_subset_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """{"fid<suffix>/<extractor>", "kid_mean<suffix>/<extractor>", "kid_std<suffix>/<extractor>"} as floats.

    `suffix` names the direction or sample, e.g. "_ab" for G_AB's outputs against real B.
    """
    kid_mean, kid_std = kid(real, fake, n_subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    name = real.extractor
    return {
        f"fid{suffix}/{name}": fid(real, fake),
        f"kid_mean{suffix}/{name}": kid_mean,
        f"kid_std{suffix}/{name}": kid_std,
    }


def metric_value(results: dict[str, float], metric: str) -> float:
    """Look up `metric` in a results dict: an exact key, or a bare name such as "fid_ab" that
    matches exactly one "fid_ab/<extractor>" key (so a caller choosing the best checkpoint
    need not know the extractor's name, yet never mixes two extractors)."""
    return comparable_values(results, results, metric)[0]


def comparable_values(results_a: dict[str, float], results_b: dict[str, float], metric: str) -> tuple[float, float]:
    """The values of `metric` in two results dicts, e.g. two checkpoints' evaluations.

    Raises ValueError when they were computed with different feature extractors
    (their keys name different extractors), since such numbers do not compare.
    """
    def key_of(results: dict[str, float]) -> str:
        if metric in results:
            return metric
        matches = [key for key in results if key.split("/", 1)[0] == metric]
        if len(matches) != 1:
            raise ValueError(f"metric {metric!r} matches {len(matches)} keys ({matches}); give the full key")
        return matches[0]

    key_a, key_b = key_of(results_a), key_of(results_b)
    if key_a != key_b:
        raise ValueError(f"cannot compare {key_a!r} with {key_b!r}: computed with different feature extractors")
    return results_a[key_a], results_b[key_b]


LOWER_IS_BETTER_PREFIXES = ("fid", "kid", "cycle_mae", "identity_mae", "paired_mae")


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of this metric key is better (FID, KID, MAEs) or larger (PSNR, SSIM, accuracy)."""
    base = metric.split("/", 1)[0]
    if base.startswith("c2st"):
        raise ValueError("c2st_accuracy is best at 0.5, neither higher nor lower; compare |acc - 0.5|")
    return base.startswith(LOWER_IS_BETTER_PREFIXES)
