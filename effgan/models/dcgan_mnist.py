"""The 28x28 (MNIST-like) "shallow" and "deep" DCGANs: a dense projection to 7x7 plus 5x5 convs.

shallow (the well-known two-layer 28x28 DCGAN):
  G: z -> Linear(7*7*256, no bias), BN, LeakyReLU -> 5x5 transposed convs to 128 (stride 1),
     64 (stride 2), 1 channel (stride 2) -> tanh; BN + LeakyReLU between, no conv biases.
  D: 5x5 stride-2 convs to 64 and 128 filters, each LeakyReLU + dropout 0.3, no norm,
     then Linear(128*7*7, 1). Its LeakyReLU slope is 0.3 (that reference's default).
deep (four conv layers, 32 to 256 filters, the last two with stride 1):
  D: 5x5 convs to 32 (s2), 64 (s2), 128 (s1), 256 (s1), BN on all but the first, LeakyReLU 0.2,
     then Linear(256*7*7, 1).
  G: the mirror: Linear(7*7*256), then 5x5 transposed convs to 128 (s1), 64 (s1), 32 (s2),
     1 channel (s2), BN + LeakyReLU 0.2 between, tanh.

Both take ``num_classes=`` for the conditional (CGAN) version, as the classic DCGAN does.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .conditioning import LabelChannel, NoiseLabelConcat, check_conditioning, check_labels
from .init import init_weights
from .norm_act import (BatchNormLayer, NoNormLayer, check_positive_int, check_probability,
                       resolve_norm_layer)

IMAGE_SIZE = 28
PROJECTION_SIDE = 7
PROJECTION_WIDTH = 256


@dataclass(frozen=True)
class ConvSpec:
    """One 5x5 layer: output channels and stride (1 keeps the side, 2 doubles / halves it)."""

    channels: int
    stride: int


SHALLOW_G = (ConvSpec(128, 1), ConvSpec(64, 2))
SHALLOW_D = (ConvSpec(64, 2), ConvSpec(128, 2))
DEEP_G = (ConvSpec(128, 1), ConvSpec(64, 1), ConvSpec(32, 2))
DEEP_D = (ConvSpec(32, 2), ConvSpec(64, 2), ConvSpec(128, 1), ConvSpec(256, 1))


def _conv_transpose(in_ch: int, out_ch: int, stride: int, bias: bool) -> nn.ConvTranspose2d:
    # padding 2 + output_padding (stride - 1) makes the output side exactly stride * input side.
    return nn.ConvTranspose2d(in_ch, out_ch, 5, stride=stride, padding=2,
                              output_padding=stride - 1, bias=bias)


class MnistDCGANGenerator(nn.Module):
    """z (N, nz) [+ labels (N,)] -> (N, out_channels, 28, 28) in [-1, 1].

    ``layers`` are the hidden transposed convs after the 7x7x256 projection; a last 5x5
    stride-2 transposed conv makes the image. ``SHALLOW_G`` and ``DEEP_G`` are the presets.
    """

    def __init__(self, layers: tuple[ConvSpec, ...] = SHALLOW_G, nz: int = 100,
                 out_channels: int = 1, *, negative_slope: float = 0.3,
                 num_classes: int | None = None, label_dim: int | None = None,
                 norm_layer=None, fused: bool = True, impl: str = "auto"):
        super().__init__()
        check_positive_int(nz, "nz")
        check_positive_int(out_channels, "out_channels")
        check_conditioning(num_classes, label_dim)
        _check_layers(layers, final_stride=2)
        norm_layer = resolve_norm_layer(norm_layer, fused=fused, impl=impl,
                                        default=BatchNormLayer())
        bias = norm_layer.conv_bias
        self.nz, self.num_classes = nz, num_classes
        self.condition = None
        in_features = nz
        if num_classes is not None:
            label_dim = label_dim or num_classes
            self.condition = NoiseLabelConcat(num_classes, label_dim)
            in_features += label_dim
        projected = PROJECTION_WIDTH * PROJECTION_SIDE ** 2
        # The reference normalises the dense projection per feature (BatchNorm1d); any other
        # norm_layer normalises it as the 7x7x256 planes it becomes (none for NoNormLayer).
        self.project_norm = None
        if isinstance(norm_layer, BatchNormLayer):
            self.project = nn.Sequential(nn.Linear(in_features, projected, bias=False),
                                         nn.BatchNorm1d(projected), nn.LeakyReLU(negative_slope))
        else:
            self.project = nn.Sequential(nn.Linear(in_features, projected, bias=norm_layer.conv_bias))
            self.project_norm = norm_layer(PROJECTION_WIDTH, act="leaky_relu", negative_slope=negative_slope)
        convs, width = [], PROJECTION_WIDTH
        for spec in layers:
            convs += [_conv_transpose(width, spec.channels, spec.stride, bias),
                      norm_layer(spec.channels, act="leaky_relu", negative_slope=negative_slope)]
            width = spec.channels
        convs.append(_conv_transpose(width, out_channels, 2, bias=False))
        self.convs = nn.Sequential(*convs)
        init_weights(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z must be (N, {self.nz}), got {tuple(z.shape)}")
        check_labels(labels, self.num_classes, z.shape[0])
        if self.condition is not None:
            z = self.condition(z, labels)
        h = self.project(z).view(-1, PROJECTION_WIDTH, PROJECTION_SIDE, PROJECTION_SIDE)
        if self.project_norm is not None:
            h = self.project_norm(h)
        return torch.tanh(self.convs(h))


class MnistDCGANDiscriminator(nn.Module):
    """(N, in_channels, 28, 28) [+ labels] -> one logit per image, (N, 1).

    ``layers`` are 5x5 convs (their strides must reduce 28 to 7); the first has no norm.
    """

    def __init__(self, layers: tuple[ConvSpec, ...] = SHALLOW_D, in_channels: int = 1, *,
                 negative_slope: float = 0.3, dropout: float = 0.3,
                 num_classes: int | None = None, norm_layer=None, fused: bool = True,
                 impl: str = "auto"):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        dropout = check_probability(dropout, "dropout")
        _check_layers(layers, final_stride=1)
        norm_layer = resolve_norm_layer(norm_layer, fused=fused, impl=impl,
                                        default=NoNormLayer())
        self.in_channels, self.num_classes = in_channels, num_classes
        self.condition = None
        width = in_channels
        if num_classes is not None:
            check_positive_int(num_classes, "num_classes")
            self.condition = LabelChannel(num_classes, IMAGE_SIZE)
            width += 1
        convs = []
        for i, spec in enumerate(layers):
            first = i == 0
            convs.append(nn.Conv2d(width, spec.channels, 5, stride=spec.stride, padding=2,
                                   bias=first or norm_layer.conv_bias))
            if first:
                convs.append(nn.LeakyReLU(negative_slope))
            else:
                convs.append(norm_layer(spec.channels, act="leaky_relu",
                                        negative_slope=negative_slope))
            if dropout > 0:
                convs.append(nn.Dropout(dropout))
            width = spec.channels
        self.convs = nn.Sequential(*convs)
        self.classify = nn.Linear(width * PROJECTION_SIDE ** 2, 1)
        init_weights(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(f"x must be (N, {self.in_channels}, {IMAGE_SIZE}, {IMAGE_SIZE}), "
                             f"got {tuple(x.shape)}")
        check_labels(labels, self.num_classes, x.shape[0])
        if self.condition is not None:
            x = self.condition(x, labels)
        return self.classify(self.convs(x).flatten(1))


def _check_layers(layers, final_stride: int) -> None:
    """The strides (plus the generator's final stride-2 layer) must connect 7x7 and 28x28."""
    if not layers or not all(isinstance(s, ConvSpec) for s in layers):
        raise TypeError("layers must be a non-empty tuple of ConvSpec")
    scale = final_stride
    for spec in layers:
        if spec.stride not in (1, 2):
            raise ValueError(f"layers strides must be 1 or 2, got {spec.stride}")
        check_positive_int(spec.channels, "layers channels")
        scale *= spec.stride
    if scale != IMAGE_SIZE // PROJECTION_SIDE:
        raise ValueError("layers strides must multiply to "
                         f"{IMAGE_SIZE // PROJECTION_SIDE // final_stride}, got {scale // final_stride}")
