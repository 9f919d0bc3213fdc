"""The CycleGAN ResNet generator: c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3.

Layer for layer the reference network (reflection padding, instance norm without affine, conv
bias on, ReLU, tanh output); with those defaults the 9-block model has 11,378,179 parameters and
the 6-block one 7,837,699. The ReLU after each norm and the residual add of each block live in
the norm module (see ``norm_act.py``), so ``fused=True`` runs them in effgan's fused kernel.
Reflection padding is the convolutions' ``padding_mode``, which pads exactly as a separate
``ReflectionPad2d`` would.
"""
from __future__ import annotations

import torch
from torch import nn

from .init import init_weights
from .norm_act import InstanceNormLayer, check_image_sides, check_positive_int, check_probability, resolve_norm_layer


class ResnetBlock(nn.Module):
    """x + IN(conv(pad(dropout(relu(IN(conv(pad(x)))))))), with the add fused into the norm."""

    def __init__(self, channels: int, norm_layer, *, dropout: float = 0.0,
                 padding_mode: str = "reflect"):
        super().__init__()
        bias = norm_layer.conv_bias
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding_mode,
                               bias=bias)
        self.norm1 = norm_layer(channels, act="relu")
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding_mode,
                               bias=bias)
        self.norm2 = norm_layer(channels, act="identity")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dropout(self.norm1(self.conv1(x)))
        return self.norm2(self.conv2(h), residual=x)


# Two stride-2 convs down, two transposed convs up: other sides come back rounded up.
TOTAL_STRIDE = 4


def min_side(padding_mode: str, *, kernel_size: int = 3, instance_norm: bool = True) -> int:
    """The smallest side the ResNet-style generators take, from what the 1/4 map needs: reflection
    padding of its k x k convs more than k // 2 pixels, instance norm more than one pixel."""
    quarter = max(kernel_size // 2 + 1 if padding_mode == "reflect" else 1, 2 if instance_norm else 1)
    return TOTAL_STRIDE * quarter


def conv_norm_act(conv: nn.Module, norm_layer, channels: int, act: str = "relu",
                  negative_slope: float = 0.01) -> nn.Sequential:
    """conv followed by the norm module that also applies ``act``."""
    return nn.Sequential(conv, norm_layer(channels, act=act, negative_slope=negative_slope))


def downsampling(in_ch: int, out_ch: int, norm_layer) -> nn.Sequential:
    """d-k: 3x3 stride-2 conv, norm, ReLU."""
    conv = nn.Conv2d(in_ch, out_ch, 3, stride=2, padding=1, bias=norm_layer.conv_bias)
    return conv_norm_act(conv, norm_layer, out_ch)


def upsampling(in_ch: int, out_ch: int, norm_layer) -> nn.Sequential:
    """u-k: 3x3 stride-1/2 transposed conv (doubles H and W exactly), norm, ReLU."""
    conv = nn.ConvTranspose2d(in_ch, out_ch, 3, stride=2, padding=1, output_padding=1,
                              bias=norm_layer.conv_bias)
    return conv_norm_act(conv, norm_layer, out_ch)


def stem(in_ch: int, out_ch: int, norm_layer, padding_mode: str) -> nn.Sequential:
    """c7s1-k: 7x7 conv on a 3-pixel reflection pad, norm, ReLU."""
    conv = nn.Conv2d(in_ch, out_ch, 7, padding=3, padding_mode=padding_mode,
                     bias=norm_layer.conv_bias)
    return conv_norm_act(conv, norm_layer, out_ch)


class ResnetGenerator(nn.Module):
    """CycleGAN's ResNet generator (registered as "resnet9" and "resnet6").

    Args:
        in_channels, out_channels: image channels in and out.
        ngf: filters of the first layer (the reference's 64); the blocks use 4 * ngf.
        n_blocks: residual blocks (9 for 256x256 training, 6 for 128x128).
        dropout: dropout rate inside the blocks (0.0: CycleGAN's default ``--no_dropout``).
        norm_layer: norm factory (default: instance norm built as ``fused``/``impl`` say).
        padding_mode: padding of the 7x7 and block convs ("reflect" in the reference).
        fused, impl: effgan's fused modules (True) or the plain-torch build (False).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64,
                 n_blocks: int = 9, *, dropout: float = 0.0, norm_layer=None,
                 padding_mode: str = "reflect", fused: bool = True, impl: str = "auto"):
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(out_channels, "out_channels")
        check_positive_int(ngf, "ngf")
        check_positive_int(n_blocks, "n_blocks", minimum=0)
        dropout = check_probability(dropout, "dropout")
        if padding_mode not in ("reflect", "replicate", "zeros"):
            raise ValueError("padding_mode must be 'reflect', 'replicate' or 'zeros', "
                             f"got {padding_mode!r}")
        norm_layer = resolve_norm_layer(norm_layer, fused=fused, impl=impl)
        width = 4 * ngf
        self.stem = stem(in_channels, ngf, norm_layer, padding_mode)
        self.down = nn.Sequential(downsampling(ngf, 2 * ngf, norm_layer),
                                  downsampling(2 * ngf, width, norm_layer))
        self.blocks = nn.Sequential(*[
            ResnetBlock(width, norm_layer, dropout=dropout, padding_mode=padding_mode)
            for _ in range(n_blocks)])
        self.up = nn.Sequential(upsampling(width, 2 * ngf, norm_layer),
                                upsampling(2 * ngf, ngf, norm_layer))
        self.head = nn.Conv2d(ngf, out_channels, 7, padding=3, padding_mode=padding_mode)
        self.min_side = min_side(padding_mode, instance_norm=isinstance(norm_layer, InstanceNormLayer))
        self.in_channels = in_channels
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_sides(x, TOTAL_STRIDE, self.min_side, self.in_channels)
        h = self.down(self.stem(x))
        h = self.blocks(h)
        return torch.tanh(self.head(self.up(h)))
