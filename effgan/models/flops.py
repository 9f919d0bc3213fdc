"""Counting a model's FLOPs with forward hooks: 2 x multiply-accumulates of convs and linears.

Only nn.Conv{1,2,3}d, nn.ConvTranspose{1,2,3}d and nn.Linear (and subclasses) are counted, and
only for the forward calls they actually receive; norms, activations, additions, biases and
resampling are left out, as in the usual FLOP tables. Layers whose weights a fused op uses
without calling the module's own forward are invisible to hooks, so count the ``fused=False``
build of a model (same architecture, plain modules).
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _macs(module: nn.Module, inputs: tuple, output) -> int:
    if isinstance(module, _TRANSPOSED):
        # Every input element is scattered through (out_channels / groups) x kernel taps.
        x = inputs[0]
        per_input = module.out_channels // module.groups * math.prod(module.kernel_size)
        return x.numel() * per_input
    if isinstance(module, _CONVS):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
        return output.numel() * per_output
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def count_flops(model: nn.Module, input_shape: tuple[int, ...], *, device: str | torch.device = "meta",
                forward_kwargs: dict | None = None) -> int:
    """FLOPs (2 x MACs of conv / linear layers) of one forward on an input of ``input_shape``.

    The model is deep-copied onto ``device`` ("meta" by default: shapes only, no arithmetic, so
    even 256x256 inputs cost nothing) and run once in eval mode; ``model`` is left untouched.
    Models whose ops have no meta kernels can be counted on "cpu".
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(input_shape, (tuple, list)) or not all(
            isinstance(s, int) and s > 0 for s in input_shape):
        raise ValueError(f"input_shape must be a tuple of positive ints, got {input_shape!r}")
    counted = copy.deepcopy(model).to(device).eval()
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        total += _macs(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in counted.modules()
               if isinstance(m, _CONVS + _TRANSPOSED + (nn.Linear,))]
    try:
        with torch.no_grad():
            counted(torch.randn(tuple(input_shape), device=device), **(forward_kwargs or {}))
    finally:
        for handle in handles:
            handle.remove()
    return 2 * total
