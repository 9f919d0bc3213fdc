"""The classic DCGAN generator and discriminator, with configurable image size and optional labels.

At 64x64 this is the reference DCGAN: G maps z (nz=100) through a 4x4 transposed conv to
ngf*8 x 4 x 4 and four 4x4 stride-2 transposed convs to the image (BatchNorm + ReLU between,
tanh at the end, no conv biases); D mirrors it with 4x4 stride-2 convs, BatchNorm (not on the
first layer), LeakyReLU 0.2 and a final 4x4 valid conv to one logit.

Other sizes change the number of stride-2 layers: 32 (3), 64 (4), 128 (5), 256 (6), each
starting from 4x4; 28 (MNIST-like) starts from 7x7 (a 7x7 first/last kernel) with 2 layers.
Widths double per layer from ngf (ndf), capped at ``max_mult`` times it.

``num_classes=k`` makes them conditional (CGAN): G concatenates a learned label embedding of
``label_dim`` (default k) to z; D appends a learned H x W label plane as an extra input channel.
"""
from __future__ import annotations

import torch
from torch import nn

from .conditioning import LabelChannel, NoiseLabelConcat, check_conditioning, check_labels
from .init import init_weights
from .norm_act import BatchNormLayer, check_positive_int, resolve_norm_layer

LEAKY_SLOPE = 0.2

# image size -> (side of the first feature map, number of stride-2 layers)
_SIZE_PLAN = {28: (7, 2), 32: (4, 3), 64: (4, 4), 128: (4, 5), 256: (4, 6)}
IMAGE_SIZES = tuple(sorted(_SIZE_PLAN))


def _plan(image_size: int) -> tuple[int, int]:
    if image_size not in _SIZE_PLAN:
        raise ValueError(f"image_size must be one of {sorted(_SIZE_PLAN)}, got {image_size!r}")
    return _SIZE_PLAN[image_size]


class DCGANGenerator(nn.Module):
    """z (N, nz) or (N, nz, 1, 1) [+ labels (N,)] -> image (N, out_channels, size, size) in [-1, 1]."""

    def __init__(self, nz: int = 100, out_channels: int = 3, ngf: int = 64, image_size: int = 64,
                 *, max_mult: int = 8, num_classes: int | None = None, label_dim: int | None = None,
                 norm_layer=None, fused: bool = True, impl: str = "auto"):
        super().__init__()
        for value, name in ((nz, "nz"), (out_channels, "out_channels"), (ngf, "ngf"),
                            (max_mult, "max_mult")):
            check_positive_int(value, name)
        check_conditioning(num_classes, label_dim)
        first_side, n_up = _plan(image_size)
        # Batch norm is the reference's choice; fused/impl only matter for instance norm.
        norm_layer = resolve_norm_layer(norm_layer, fused=fused, impl=impl,
                                        default=BatchNormLayer())
        bias = norm_layer.conv_bias
        self.nz, self.image_size, self.num_classes = nz, image_size, num_classes
        self.condition = None
        in_ch = nz
        if num_classes is not None:
            label_dim = label_dim or num_classes
            self.condition = NoiseLabelConcat(num_classes, label_dim)
            in_ch = nz + label_dim
        widths = [ngf * min(2 ** i, max_mult) for i in range(n_up)]
        layers = [nn.ConvTranspose2d(in_ch, widths[-1], first_side, 1, 0, bias=bias),
                  norm_layer(widths[-1], act="relu")]
        for i in range(n_up - 1, 0, -1):
            layers += [nn.ConvTranspose2d(widths[i], widths[i - 1], 4, 2, 1, bias=bias),
                       norm_layer(widths[i - 1], act="relu")]
        layers.append(nn.ConvTranspose2d(widths[0], out_channels, 4, 2, 1, bias=False))
        self.main = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if z.dim() == 4 and z.shape[2:] == (1, 1):
            z = z.flatten(1)
        if z.dim() != 2 or z.shape[1] != self.nz:
            raise ValueError(f"z must be (N, {self.nz}) or (N, {self.nz}, 1, 1), "
                             f"got {tuple(z.shape)}")
        check_labels(labels, self.num_classes, z.shape[0])
        if self.condition is not None:
            z = self.condition(z, labels)
        return torch.tanh(self.main(z[:, :, None, None]))


class DCGANDiscriminator(nn.Module):
    """image [+ labels] -> one logit per image, (N, 1); ``sigmoid=True`` returns probabilities.

    The reference ends in a sigmoid for BCELoss; the default here returns logits, which
    BCEWithLogitsLoss and the hinge / least-squares losses want.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, image_size: int = 64, *,
                 max_mult: int = 8, num_classes: int | None = None, sigmoid: bool = False,
                 norm_layer=None, fused: bool = True, impl: str = "auto"):
        super().__init__()
        for value, name in ((in_channels, "in_channels"), (ndf, "ndf"), (max_mult, "max_mult")):
            check_positive_int(value, name)
        check_conditioning(num_classes, None)
        last_side, n_down = _plan(image_size)
        norm_layer = resolve_norm_layer(norm_layer, fused=fused, impl=impl,
                                        default=BatchNormLayer())
        bias = norm_layer.conv_bias
        self.in_channels, self.image_size, self.num_classes = in_channels, image_size, num_classes
        self.sigmoid = bool(sigmoid)
        self.condition = None
        in_ch = in_channels
        if num_classes is not None:
            self.condition = LabelChannel(num_classes, image_size)
            in_ch += 1
        widths = [ndf * min(2 ** i, max_mult) for i in range(n_down)]
        layers = [nn.Conv2d(in_ch, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(LEAKY_SLOPE)]
        for i in range(1, n_down):
            layers += [nn.Conv2d(widths[i - 1], widths[i], 4, 2, 1, bias=bias),
                       norm_layer(widths[i], act="leaky_relu", negative_slope=LEAKY_SLOPE)]
        layers.append(nn.Conv2d(widths[-1], 1, last_side, 1, 0, bias=False))
        self.main = nn.Sequential(*layers)
        init_weights(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"x must be (N, {', '.join(map(str, expected))}), "
                             f"got {tuple(x.shape)}")
        check_labels(labels, self.num_classes, x.shape[0])
        if self.condition is not None:
            x = self.condition(x, labels)
        logits = self.main(x).flatten(1)
        return torch.sigmoid(logits) if self.sigmoid else logits
