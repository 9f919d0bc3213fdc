"""A guard around torch's F.instance_norm for a batch of one on the CPU.

torch 2.13's CPU F.instance_norm returns a wrong input gradient when the batch holds one sample and
the gradient arriving at its output is channels_last (off by O(1): a channels_last model trained at
batch 1, the CycleGAN default, would learn from it). It views (1, C, H, W) as the (1, N*C, H, W)
batch norm input, and for N = 1 that view keeps the gradient's channels_last strides, which
native_batch_norm_backward then misreads; with N > 1 the reshape copies and the result is right.
The guard hands F.instance_norm's backward a contiguous gradient instead. Seen on the CPU only
(CUDA not checked); inside torch.compile inductor lowers the norm itself, so nothing is needed there.
"""
from __future__ import annotations

import torch


def _contiguous(grad: torch.Tensor | None) -> torch.Tensor | None:
    return None if grad is None else grad.contiguous()  # None: an output no gradient reached


def guard_single_sample_grad(y: torch.Tensor) -> torch.Tensor:
    """y (F.instance_norm's output) with a hook that makes its incoming gradient contiguous when
    the bug above could bite: a CPU tensor holding one sample (4-D with N = 1, or 3-D unbatched)
    that autograd will differentiate, in plain eager mode."""
    if (y.requires_grad and y.device.type == "cpu" and (y.dim() == 3 or y.shape[0] == 1)
            and not torch.compiler.is_compiling()):
        y.register_hook(_contiguous)
    return y
