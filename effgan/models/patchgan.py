"""PatchGAN discriminators: the n-layer "70x70" PatchGAN and the 1x1 PixelGAN.

n_layers=3 is the reference 70x70 PatchGAN: C64 (no norm), C128, C256 with stride 2, C512 with
stride 1, then a 1-channel 4x4 conv; 4x4 kernels, padding 1, LeakyReLU 0.2. With instance norm
it has 2,764,737 parameters and maps a 256x256 image to a 30x30 grid of logits.

``heads=2`` gives two 1-channel output convs on the shared trunk (a dual-headed discriminator,
as used for Monet-painting CycleGANs) and returns a tuple of their maps.
"""
from __future__ import annotations

import torch
from torch import nn

from .init import init_weights
from .norm_act import check_positive_int, resolve_norm_layer

LEAKY_SLOPE = 0.2


class NLayerDiscriminator(nn.Module):
    """PatchGAN with ``n_layers`` stride-2 convs (registered as "patchgan").

    Args:
        in_channels: image channels.
        ndf: filters of the first conv; doubled per layer up to 8 * ndf.
        n_layers: stride-2 convs after the first (3: 70x70 receptive field).
        heads: output heads sharing the trunk; 1 returns a tensor, more return a tuple.
        norm_layer: norm factory (default instance norm built as ``fused``/``impl`` say).
        fused, impl: effgan's fused norm modules (True) or the plain-torch build (False).
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, *,
                 heads: int = 1, norm_layer=None, fused: bool = True, impl: str = "auto"):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(ndf, "ndf")
        check_positive_int(n_layers, "n_layers")
        check_positive_int(heads, "heads")
        norm_layer = resolve_norm_layer(norm_layer, fused=fused, impl=impl)
        bias = norm_layer.conv_bias
        layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1),
                  nn.LeakyReLU(LEAKY_SLOPE)]
        width = ndf
        for n in range(1, n_layers + 1):
            # The last trunk conv keeps the resolution (stride 1), the others halve it.
            stride = 2 if n < n_layers else 1
            next_width = ndf * min(2 ** n, 8)
            layers += [nn.Conv2d(width, next_width, 4, stride=stride, padding=1, bias=bias),
                       norm_layer(next_width, act="leaky_relu", negative_slope=LEAKY_SLOPE)]
            width = next_width
        self.trunk = nn.Sequential(*layers)
        self.heads = nn.ModuleList(nn.Conv2d(width, 1, 4, stride=1, padding=1)
                                   for _ in range(heads))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        h = self.trunk(x)
        outputs = tuple(head(h) for head in self.heads)
        return outputs[0] if len(outputs) == 1 else outputs


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN ("pixelgan"): classifies every pixel on its own.

    C64 (1x1, no norm), C128 (1x1, norm), 1x1 conv to one channel; LeakyReLU 0.2.
    """

    def __init__(self, in_channels: int = 3, ndf: int = 64, *, heads: int = 1,
                 norm_layer=None, fused: bool = True, impl: str = "auto"):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(ndf, "ndf")
        check_positive_int(heads, "heads")
        norm_layer = resolve_norm_layer(norm_layer, fused=fused, impl=impl)
        bias = norm_layer.conv_bias
        self.trunk = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Conv2d(ndf, 2 * ndf, 1, bias=bias),
            norm_layer(2 * ndf, act="leaky_relu", negative_slope=LEAKY_SLOPE))
        self.heads = nn.ModuleList(nn.Conv2d(2 * ndf, 1, 1, bias=bias) for _ in range(heads))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        h = self.trunk(x)
        outputs = tuple(head(h) for head in self.heads)
        return outputs[0] if len(outputs) == 1 else outputs
