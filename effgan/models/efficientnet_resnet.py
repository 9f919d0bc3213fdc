"""effnet-resnet-b{phi}: the CycleGAN ResNet generator with MBConv blocks as its transformer.

Stem (c7s1), two stride-2 downsamplings and two upsamplings are the ResNet generator's
(instance norm, ReLU, reflection padding, tanh). The nine residual blocks become MBConv blocks
(1x1 expand by 6, depthwise 3x3, squeeze-excite 0.25, SiLU, 1x1 project, residual), and the
network is compound-scaled: channels ``round_channels(c, 1.1**phi)`` for every width, blocks
``ceil(9 * 1.2**phi)``, recommended resolution ``scaled_resolution(phi)``.
"""
from __future__ import annotations

import torch
from torch import nn

from .efficientnet_blocks import drop_path_rates, make_mbconv
from .efficientnet_scaling import (depth_multiplier, round_channels, round_repeats,
                                   scaled_resolution, width_multiplier)
from .init import init_weights
from .norm_act import check_image_sides, check_positive_int, resolve_norm_layer
from .resnet import TOTAL_STRIDE, downsampling, min_side, stem, upsampling

BASE_BLOCKS = 9
BASE_NGF = 64


class EfficientNetResnetGenerator(nn.Module):
    """ResNet generator whose residual blocks are MBConv, scaled by the compound coefficient phi.

    Args:
        phi: compound coefficient (0..3 are the registered "effnet-resnet-b0".."-b3").
        in_channels, out_channels: image channels.
        ngf: unscaled width of the first layer (64 as in the ResNet generator); every width
            is a multiple of it scaled by 1.1**phi and rounded to a multiple of 8.
        kernel_size: depthwise kernel of the MBConv blocks (3 or 5).
        expand_ratio: MBConv expansion (6 as in EfficientNet's MBConv6).
        drop_path_rate: stochastic depth of the last block (linear from 0).
        padding_mode: padding of the stem, head and depthwise convs ("reflect" as in CycleGAN).
        norm_layer: norm factory for stem / down / up (default instance norm per ``fused``).
        fused, impl: effgan's fused modules (True) or the plain-torch build (False).
    """

    def __init__(self, phi: int = 0, in_channels: int = 3, out_channels: int = 3,
                 ngf: int = BASE_NGF, *, kernel_size: int = 3, expand_ratio: int = 6,
                 drop_path_rate: float = 0.0,
                 padding_mode: str = "reflect", norm_layer=None, fused: bool = True,
                 impl: str = "auto"):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        check_positive_int(ngf, "ngf")
        check_positive_int(expand_ratio, "expand_ratio")
        if kernel_size not in (3, 5):
            raise ValueError(f"kernel_size must be 3 or 5, got {kernel_size!r}")
        norm_layer = resolve_norm_layer(norm_layer, fused=fused, impl=impl)
        width = width_multiplier(phi)
        ngf, ngf2, ngf4 = (round_channels(m * ngf, width) for m in (1, 2, 4))
        num_blocks = round_repeats(BASE_BLOCKS, depth_multiplier(phi))
        self.phi = phi
        self.resolution = scaled_resolution(phi)
        self.stem = stem(in_channels, ngf, norm_layer, padding_mode)
        self.down = nn.Sequential(downsampling(ngf, ngf2, norm_layer),
                                  downsampling(ngf2, ngf4, norm_layer))
        self.blocks = nn.Sequential(*[
            make_mbconv(ngf4, ngf4, kernel_size=kernel_size, expand_ratio=expand_ratio,
                        drop_path=rate, padding_mode=padding_mode, fused=fused, impl=impl)
            for rate in drop_path_rates(num_blocks, drop_path_rate)])
        self.up = nn.Sequential(upsampling(ngf4, ngf2, norm_layer),
                                upsampling(ngf2, ngf, norm_layer))
        self.head = nn.Conv2d(ngf, out_channels, 7, padding=3, padding_mode=padding_mode)
        self.min_side = min_side(padding_mode, kernel_size=kernel_size)  # the MBConv blocks norm by instance
        self.in_channels = in_channels
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_sides(x, TOTAL_STRIDE, self.min_side, self.in_channels)
        h = self.blocks(self.down(self.stem(x)))
        return torch.tanh(self.head(self.up(h)))
