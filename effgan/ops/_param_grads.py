"""Per-channel parameter gradients from the kernels' per-(sample, channel) sums."""
from __future__ import annotations

import torch


def batch_sum(per_sample: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(N, C) sums -> the (C,) gradient of a parameter shared over the batch, in ``dtype``.

    At batch 1 (a CycleGAN step) that is a view of the only row: no reduction kernel to launch,
    which on a GPU is host time per call, and one node fewer in a captured graph.
    """
    total = per_sample.view(-1) if per_sample.shape[0] == 1 else per_sample.sum(0)
    return total.to(dtype)
