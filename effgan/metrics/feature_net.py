"""A small feature extractor trained by effgan on the real data, for FID/KID without Inception weights.

Used when no local FID Inception weights are given. It is a SmallCNN trained briefly
either as a classifier (when labels exist) or self-supervised by predicting which of
four 90-degree rotations was applied. Its pooled conv features (4 * width dims) play
the role of Inception's 2048-d pool features.

Its numbers are only comparable with numbers from the same trained network, so the
extractor's name carries a digest of everything that determined its weights (the
training images, labels, seed, steps and width): "featnet-<mode>-<digest>".
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from effgan._paths import create_temp_file
from effgan.metrics.small_cnn import SmallCNN
from effgan.metrics.training import build_seeded, fit_classifier

MODES = ("classifier", "rotation")
NUM_ROTATIONS = 4


@dataclass(frozen=True)
class FeatureNetConfig:
    mode: str
    in_channels: int
    num_outputs: int
    width: int
    steps: int
    seed: int
    data_digest: str

    @property
    def name(self) -> str:
        config_digest = hashlib.sha256(repr(sorted(asdict(self).items())).encode()).hexdigest()
        return f"featnet-{self.mode}-{config_digest[:10]}"


class FeatureNet(nn.Module):
    """Images (N, C, H, W) in [-1, 1] -> (N, feature_dim) features; `name` identifies the trained weights."""

    def __init__(self, config: FeatureNetConfig):
        super().__init__()
        if config.mode not in MODES:
            raise ValueError(f"config.mode must be one of {MODES}, got {config.mode!r}")
        self.config = config
        self.network = SmallCNN(config.in_channels, config.num_outputs, width=config.width)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def feature_dim(self) -> int:
        return self.network.feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network.features(images)


def data_digest(images: torch.Tensor, labels: torch.Tensor | None) -> str:
    """Hash of the training data, so a net trained on other data gets another name."""
    hasher = hashlib.sha256()
    hasher.update(str(tuple(images.shape)).encode())
    hasher.update(np.ascontiguousarray(images.detach().cpu().float().numpy()).tobytes())
    if labels is not None:
        hasher.update(np.ascontiguousarray(labels.detach().cpu().long().numpy()).tobytes())
    return hasher.hexdigest()[:16]


def _random_rotations(batch: torch.Tensor, _targets: torch.Tensor, generator: torch.Generator):
    """Rotate each image by k * 90 degrees with k drawn from `generator`; k is the target."""
    quarter_turns = torch.randint(0, NUM_ROTATIONS, (batch.shape[0],), generator=generator)
    rotated = torch.empty_like(batch)
    for k in range(NUM_ROTATIONS):
        chosen = quarter_turns == k
        rotated[chosen] = torch.rot90(batch[chosen], k, dims=(2, 3))
    return rotated, quarter_turns


def train_feature_net(images: torch.Tensor, labels: torch.Tensor | None = None, *, num_classes: int | None = None,
                      steps: int = 300, seed: int = 0, width: int = 32, batch_size: int = 64,
                      device: torch.device | str = "cpu") -> FeatureNet:
    """Train a FeatureNet on real images (N, C, H, W) in [-1, 1]; deterministic for a given seed.

    With labels (N,) it learns to classify them (num_classes defaults to max label + 1);
    without, it learns to predict rotations, which needs square images.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise ValueError("images must be an (N, C, H, W) tensor")
    if labels is None:
        if images.shape[2] != images.shape[3]:
            raise ValueError(f"rotation training needs square images, got {images.shape[2]}x{images.shape[3]}")
        # Targets are placeholders: _random_rotations replaces them with each batch's rotations.
        mode, num_outputs, augment = "rotation", NUM_ROTATIONS, _random_rotations
        targets = torch.zeros(images.shape[0], dtype=torch.long)
    else:
        targets = torch.as_tensor(labels).long()
        if targets.shape != (images.shape[0],):
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(targets.shape)}")
        mode, augment = "classifier", None
        num_outputs = int(targets.max()) + 1 if num_classes is None else num_classes
        if num_outputs < 2:
            # cross-entropy over a single logit is 0 whatever the weights: nothing would be learned
            raise ValueError(f"labels of {num_outputs} class cannot train a classifier; pass labels=None "
                             f"to train on rotations instead")
        if int(targets.min()) < 0 or int(targets.max()) >= num_outputs:
            raise ValueError(f"labels must lie in [0, {num_outputs}), got {int(targets.min())}..{int(targets.max())}")
    config = FeatureNetConfig(mode=mode, in_channels=images.shape[1], num_outputs=num_outputs, width=width,
                              steps=steps, seed=seed, data_digest=data_digest(images, labels))
    net = build_seeded(lambda: FeatureNet(config), seed)
    fit_classifier(net.network, images, targets, steps=steps, batch_size=min(batch_size, images.shape[0]),
                   seed=seed, device=device, augment=augment)
    return net.eval()


def save_feature_net(net: FeatureNet, path: str | os.PathLike) -> None:
    torch.save({"config": asdict(net.config), "state_dict": net.state_dict()}, path)


def load_feature_net(path: str | os.PathLike, *, device: torch.device | str = "cpu") -> FeatureNet:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    net = FeatureNet(FeatureNetConfig(**payload["config"]))
    net.load_state_dict(payload["state_dict"])
    return net.to(device).eval()


def load_or_train_feature_net(cache_dir: str | os.PathLike, images: torch.Tensor, labels: torch.Tensor | None = None,
                              **train_kwargs) -> FeatureNet:
    """The FeatureNet for this data and settings from `cache_dir` if trained before, else train and cache it.

    The cache file is named by the data digest and settings, so changed data or
    settings never reuse stale weights.
    """
    device = train_kwargs.get("device", "cpu")
    key_parts = {k: train_kwargs.get(k) for k in ("num_classes", "steps", "seed", "width", "batch_size")}
    key = hashlib.sha256(repr((data_digest(images, labels), sorted(key_parts.items()))).encode()).hexdigest()[:16]
    path = Path(cache_dir) / f"feature_net_{key}.pt"
    if path.is_file():
        return load_feature_net(path, device=device)
    net = train_feature_net(images, labels, **train_kwargs)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a temp file of this writer's own: two processes caching the same network at once would
        # otherwise write into one file, and the rename could publish a torn network
        handle, tmp_name = create_temp_file(path.parent, prefix=f"{path.stem}.", suffix=".tmp")
        os.close(handle)
        tmp = Path(tmp_name)
        save_feature_net(net, tmp)
        os.replace(tmp, path)  # atomic, so a concurrent reader never sees half a file
    except OSError as error:
        # a folder that cannot be written (a run on a read-only share, a full disk) costs only the
        # cache: the network is the same trained again next time
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        warnings.warn(f"{os.fspath(cache_dir)}: {error.strerror or error}; the feature network was not cached "
                      f"and will be trained again next time", stacklevel=2)
    return net
