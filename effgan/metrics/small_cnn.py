"""A small convolutional network shared by the learned metrics (feature net, classifier score, C2ST).

Three stride-2 conv stages and a global average pool give a (N, 4 * width) feature
vector for any input size; a linear head maps it to class logits. BatchNorm keeps
training short and stable on the small data sets the metrics are trained on.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def _stage(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """(N, in_channels, H, W) images -> logits (N, num_outputs); `features` gives (N, 4 * width)."""

    def __init__(self, in_channels: int, num_outputs: int, *, width: int = 32):
        super().__init__()
        for arg, value in (("in_channels", in_channels), ("num_outputs", num_outputs), ("width", width)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{arg} must be a positive int, got {value!r}")
        self.in_channels = in_channels
        self.num_outputs = num_outputs
        self.width = width
        self.body = nn.Sequential(
            _stage(in_channels, width),
            _stage(width, 2 * width),
            _stage(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, num_outputs)

    @property
    def feature_dim(self) -> int:
        return 4 * self.width

    def features(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(f"images must be (N, {self.in_channels}, H, W), got shape {tuple(images.shape)}")
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))
