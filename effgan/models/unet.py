"""The pix2pix / CycleGAN U-Net generator ("unet128": 7 downsamplings, "unet256": 8).

Computes exactly what the reference's nested skip-connection blocks compute, written as an
encoder list and a decoder list (decoder listed innermost first, so parameters come in the
reference's order):

* down path: 4x4 stride-2 convs, instance norm, LeakyReLU 0.2; the outermost and the innermost
  convs have no norm;
* up path: ReLU, 4x4 stride-2 transposed conv, norm, dropout 0.5 in the inner ngf*8 blocks
  (not the innermost one); the outermost up conv has no norm and ends in tanh;
* each level concatenates [skip, upsampled] along channels.

The reference applies its LeakyReLU in place to the tensor it also concatenates, so the skip
it carries is LeakyReLU(features); the up path's ReLU then sees ReLU(LeakyReLU(f)) = ReLU(f).
Here the LeakyReLU is fused into the down-path norm and the ReLU into the up-path norm
(ReLU commutes with dropout's non-negative scaling), so the concatenation only needs a ReLU
on its skip half.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .init import init_weights
from .norm_act import check_image_sides, check_positive_int, check_probability, resolve_norm_layer

LEAKY_SLOPE = 0.2


def _level_width(ngf: int, level: int) -> int:
    """Channels at the output of down-path level ``level`` (0 = outermost)."""
    return ngf * min(2 ** level, 8)


class UnetGenerator(nn.Module):
    """U-Net generator with ``num_downs`` stride-2 levels (input sides divisible by 2**num_downs).

    Args:
        in_channels, out_channels: image channels.
        num_downs: downsamplings (7 for 128x128, 8 for 256x256); at least 5.
        ngf: filters of the outermost layer.
        dropout: dropout rate of the inner ngf*8 up blocks (0.5 in pix2pix; 0 disables).
        norm_layer: norm factory (default instance norm built as ``fused``/``impl`` say).
        fused, impl: effgan's fused norm modules (True) or the plain-torch build (False).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, num_downs: int = 8,
                 ngf: int = 64, *, dropout: float = 0.5, norm_layer=None, fused: bool = True,
                 impl: str = "auto"):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        check_positive_int(num_downs, "num_downs", minimum=5)
        check_positive_int(ngf, "ngf")
        dropout = check_probability(dropout, "dropout")
        norm_layer = resolve_norm_layer(norm_layer, fused=fused, impl=impl)
        bias = norm_layer.conv_bias
        self.num_downs = num_downs

        widths = [_level_width(ngf, level) for level in range(num_downs)]
        encoder = [nn.Conv2d(in_channels, widths[0], 4, stride=2, padding=1, bias=bias)]
        for level in range(1, num_downs - 1):
            conv = nn.Conv2d(widths[level - 1], widths[level], 4, stride=2, padding=1, bias=bias)
            encoder.append(nn.Sequential(
                conv, norm_layer(widths[level], act="leaky_relu", negative_slope=LEAKY_SLOPE)))
        encoder.append(nn.Conv2d(widths[-2], widths[-1], 4, stride=2, padding=1, bias=bias))
        self.encoder = nn.ModuleList(encoder)

        decoder = []
        for level in range(num_downs - 1, 0, -1):
            # The innermost level's input is its own conv output; the others get [skip, up].
            in_ch = widths[level] if level == num_downs - 1 else 2 * widths[level]
            layers = [nn.ConvTranspose2d(in_ch, widths[level - 1], 4, stride=2, padding=1,
                                         bias=bias),
                      norm_layer(widths[level - 1], act="relu")]
            inner_ngf8 = 4 <= level < num_downs - 1
            if inner_ngf8 and dropout > 0:
                layers.append(nn.Dropout(dropout))
            decoder.append(nn.Sequential(*layers))
        decoder.append(nn.ConvTranspose2d(2 * widths[0], out_channels, 4, stride=2, padding=1))
        self.decoder = nn.ModuleList(decoder)
        self.in_channels = in_channels
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_sides(x, 2 ** self.num_downs, channels=self.in_channels)
        h = F.leaky_relu(self.encoder[0](x), LEAKY_SLOPE)
        skips = [h]
        for level in self.encoder[1:-1]:
            h = level(h)
            skips.append(h)
        h = F.relu(self.encoder[-1](h))
        for level in self.decoder[:-1]:
            h = torch.cat([F.relu(skips.pop()), level(h)], dim=1)
        return torch.tanh(self.decoder[-1](h))
