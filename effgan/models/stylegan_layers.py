"""StyleGAN's equalized-learning-rate layers, pixel norm and the mapping network.

Equalized learning rate: weights are stored as N(0, 1) / lr_mul and multiplied at every
forward by ``gain * lr_mul / sqrt(fan_in)`` (biases by ``lr_mul``). Adam then moves every
layer at the same relative speed, and ``lr_mul = 0.01`` slows the mapping network 100x.
The layers subclass nn.Linear / nn.Conv2d (same state_dict, and FLOP counters see them); they
set ``equalized_lr = True`` so ``init_weights`` leaves their N(0, 1) weights alone.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .norm_act import check_positive_int

LEAKY_SLOPE = 0.2
RELU_GAIN = math.sqrt(2.0)


class EqualLinear(nn.Linear):
    equalized_lr = True

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 lr_mul: float = 1.0, gain: float = 1.0, bias_init: float = 0.0):
        super().__init__(in_features, out_features, bias=bias)
        if not lr_mul > 0:
            raise ValueError(f"lr_mul must be > 0, got {lr_mul!r}")
        self.lr_mul = float(lr_mul)
        self.weight_gain = gain * lr_mul / math.sqrt(in_features)
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0 / lr_mul)
            if self.bias is not None:
                self.bias.fill_(bias_init / lr_mul)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.linear(x, self.weight * self.weight_gain, bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, lr_mul={self.lr_mul}"


class EqualConv2d(nn.Conv2d):
    equalized_lr = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 bias: bool = True, gain: float = 1.0):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2,
                         bias=bias)
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        with torch.no_grad():
            self.weight.normal_(0.0, 1.0)
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight * self.weight_gain, self.bias)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """x / rms(x) over the feature dimension: puts every z on the same sphere."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


class MappingNetwork(nn.Module):
    """z -> w: pixel norm, then ``num_layers`` equalized-lr linear layers with LeakyReLU 0.2."""

    def __init__(self, z_dim: int = 512, w_dim: int = 512, num_layers: int = 8, *,
                 lr_mul: float = 0.01):
        super().__init__()
        check_positive_int(z_dim, "z_dim")
        check_positive_int(w_dim, "w_dim")
        check_positive_int(num_layers, "mapping_layers")
        self.z_dim, self.w_dim = z_dim, w_dim
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.ModuleList(
            EqualLinear(dims[i], dims[i + 1], lr_mul=lr_mul, gain=RELU_GAIN)
            for i in range(num_layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must be (N, {self.z_dim}), got {tuple(z.shape)}")
        h = pixel_norm(z)
        for layer in self.layers:
            h = F.leaky_relu(layer(h), LEAKY_SLOPE)
        return h
