"""effnet-b{phi}: a full EfficientNet-B{phi} encoder with a mirrored MBConv decoder.

Encoder: the EfficientNet stem (3x3 stride-2 conv, instance norm, SiLU) and the seven scaled
B0 stages of MBConv blocks (``efficientnet_scaling.stage_list``); total stride 32, so input
sides must be multiples of 32 (and at least 64, so the 1/32 map has more than one pixel for
instance norm). Decoder: the stages in reverse, each first doubling the resolution (nearest
neighbour) where its encoder stage halved it, optionally concatenating the encoder feature of
that resolution (``skip=True``, a U-Net), then MBConv blocks (same kernel, expansion and repeats
as the mirrored stage) down to the previous stage's width. A last 2x upsampling, a 3x3
conv + norm + SiLU at stem width and a 3x3 conv to the image channels with tanh end it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .efficientnet_blocks import drop_path_rates, make_mbconv
from .efficientnet_scaling import preset
from .init import init_weights
from .norm_act import check_image_sides, check_positive_int, resolve_norm_layer

TOTAL_STRIDE = 32


class DecoderStage(nn.Module):
    """[upsample x2] -> [concat skip] -> MBConv blocks from ``in_channels`` to ``out_channels``."""

    def __init__(self, blocks: list[nn.Module], upsample: bool):
        super().__init__()
        self.upsample = upsample
        self.blocks = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if skip is not None:
            x = torch.cat([x, skip], dim=1)
        return self.blocks(x)


class EfficientNetUnetGenerator(nn.Module):
    """EfficientNet-B{phi} encoder + mirrored decoder (registered as "effnet-b0".."effnet-b3").

    Args:
        phi: compound coefficient; sets widths, repeats and ``self.resolution``.
        in_channels, out_channels: image channels.
        skip: concatenate encoder features into the decoder (U-Net); False is a plain
            encoder-decoder.
        width_scale: extra width factor on top of 1.1**phi (1.0 is the preset).
        drop_path_rate: stochastic depth of the deepest block (linear over encoder + decoder).
        norm_layer: norm factory of the stem and the output conv (default instance norm).
        fused, impl: effgan's fused modules (True) or the plain-torch build (False).
    """

    def __init__(self, phi: int = 0, in_channels: int = 3, out_channels: int = 3, *,
                 skip: bool = True, width_scale: float = 1.0, drop_path_rate: float = 0.0,
                 norm_layer=None,
                 fused: bool = True, impl: str = "auto"):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        if not isinstance(skip, bool):
            raise TypeError(f"skip must be a bool, got {type(skip).__name__}")
        norm_layer = resolve_norm_layer(norm_layer, fused=fused, impl=impl)
        spec = preset(phi, width_scale=width_scale)
        self.phi, self.resolution, self.skip = phi, spec.resolution, skip
        stages = spec.stages
        widths = [spec.stem_channels] + [s.channels for s in stages]  # widths[i]: input of stage i

        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, spec.stem_channels, 3, stride=2, padding=1,
                      bias=norm_layer.conv_bias),
            norm_layer(spec.stem_channels, act="silu"))

        total_blocks = 2 * sum(s.repeats for s in stages)
        rates = iter(drop_path_rates(total_blocks, drop_path_rate))
        encoder = []
        for i, s in enumerate(stages):
            blocks = [make_mbconv(widths[i] if r == 0 else s.channels, s.channels,
                                  kernel_size=s.kernel_size, stride=s.stride if r == 0 else 1,
                                  expand_ratio=s.expand_ratio, drop_path=next(rates),
                                  fused=fused, impl=impl)
                      for r in range(s.repeats)]
            encoder.append(nn.Sequential(*blocks))
        self.encoder = nn.ModuleList(encoder)

        decoder = []
        for i in reversed(range(len(stages))):
            s = stages[i]
            # Stage i read widths[i]; the decoder brings it back to widths[i] from s.channels,
            # concatenating the feature stage i read (stem output for i == 0).
            first_in = s.channels + (widths[i] if skip else 0)
            blocks = [make_mbconv(first_in if r == 0 else widths[i], widths[i],
                                  kernel_size=s.kernel_size, expand_ratio=s.expand_ratio,
                                  drop_path=next(rates), fused=fused, impl=impl)
                      for r in range(s.repeats)]
            decoder.append(DecoderStage(blocks, upsample=s.stride == 2))
        self.decoder = nn.ModuleList(decoder)

        self.head = nn.Sequential(
            nn.Conv2d(spec.stem_channels, spec.stem_channels, 3, padding=1,
                      bias=norm_layer.conv_bias),
            norm_layer(spec.stem_channels, act="silu"),
            nn.Conv2d(spec.stem_channels, out_channels, 3, padding=1))
        self.in_channels = in_channels
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_sides(x, TOTAL_STRIDE, 2 * TOTAL_STRIDE, self.in_channels)
        h = self.stem(x)
        features = []
        for stage in self.encoder:
            features.append(h)  # what this stage read: the decoder's skip at this resolution
            h = stage(h)
        for stage in self.decoder:
            skip = features.pop()
            h = stage(h, skip if self.skip else None)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        return torch.tanh(self.head(h))
