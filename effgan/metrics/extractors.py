"""Choosing the feature extractor for FID/KID: the standard Inception when its weights are given, else a FeatureNet.

Nothing is downloaded: the Inception weights come from a local file the user names;
without one, effgan trains its own small network on the real data (cached when a
cache folder is given, e.g. the run directory).
"""
from __future__ import annotations

import os

import torch
import torch.nn as nn

from effgan.metrics.classifier_score import train_score_classifier
from effgan.metrics.feature_net import FeatureNet, load_or_train_feature_net, train_feature_net
from effgan.metrics.inception import load_fid_inception


def build_extractor(*, fid_weights: str | os.PathLike | None = None, real_images: torch.Tensor | None = None,
                    real_labels: torch.Tensor | None = None, num_classes: int | None = None,
                    cache_dir: str | os.PathLike | None = None, steps: int = 300, seed: int = 0, width: int = 32,
                    device: torch.device | str = "cpu") -> nn.Module:
    """The FID InceptionV3 from `fid_weights`, or a FeatureNet trained on `real_images` (and labels if any).

    num_classes: the labels' class count (the model's, not the largest label seen: a labelled
    FeatureNet is also the classifier score's network, which must have an output per class). With
    fewer than two classes the labels are not used: the FeatureNet learns rotations instead.

    The returned module has a `name` (it tags every FID/KID number) and maps images in
    [-1, 1] to (N, D) features.
    """
    if fid_weights is not None:
        return load_fid_inception(fid_weights, device=device)
    if real_images is None:
        raise ValueError("real_images is required to train a feature net when no fid_weights are given")
    kwargs = dict(steps=steps, seed=seed, width=width, device=device)
    if real_labels is not None:
        classes = num_classes if num_classes is not None else int(torch.as_tensor(real_labels).max()) + 1
        if classes < 2:
            real_labels = None  # one class (a plain image folder) teaches a classifier nothing: rotations
        elif num_classes is not None:
            kwargs["num_classes"] = num_classes
    if cache_dir is None:
        return train_feature_net(real_images, real_labels, **kwargs)
    return load_or_train_feature_net(cache_dir, real_images, real_labels, **kwargs)


def build_score_classifier(real_images: torch.Tensor, real_labels: torch.Tensor, *, extractor: nn.Module | None = None,
                           num_classes: int | None = None, cache_dir: str | os.PathLike | None = None,
                           steps: int = 400, seed: int = 0, width: int = 32,
                           device: torch.device | str = "cpu") -> nn.Module:
    """The classifier-score network for labelled `real_images`: the extractor's own network when that is a
    FeatureNet trained on the labels, else a small classifier trained on them (cached when cache_dir is given).
    """
    if isinstance(extractor, FeatureNet) and extractor.config.mode == "classifier":
        return extractor.network  # a FeatureNet trained on the labels is already the score classifier
    if cache_dir is None:
        return train_score_classifier(real_images, real_labels, num_classes=num_classes, steps=steps, seed=seed,
                                      width=width, device=device)
    # A classifier-mode FeatureNet is the same seeded SmallCNN trained the same way, and its file cache
    # is keyed by the data and settings, so it serves as the classifier's cache.
    net = load_or_train_feature_net(cache_dir, real_images, torch.as_tensor(real_labels).long(),
                                    num_classes=num_classes, steps=steps, seed=seed, width=width, device=device)
    return net.network
