"""MBConv construction shared by the effnet generators."""
from __future__ import annotations

from torch import nn

from .norm_act import check_impl

SE_RATIO = 0.25


def make_mbconv(in_channels: int, out_channels: int, *, kernel_size: int, stride: int = 1,
                expand_ratio: int, drop_path: float = 0.0, padding_mode: str = "zeros",
                fused: bool = True, impl: str = "auto") -> nn.Module:
    """An ``effgan.nn.MBConv`` (SE 0.25, SiLU, instance norm); ``fused`` picks its build."""
    check_impl(impl)
    # Imported here so that importing effgan.models never depends on the nn backends.
    from effgan.nn import MBConv

    return MBConv(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                  expand_ratio=expand_ratio, se_ratio=SE_RATIO, act="silu",
                  padding_mode=padding_mode, drop_path=drop_path, fused=fused,
                  impl=impl if fused else "ref")


def drop_path_rates(num_blocks: int, max_rate: float) -> list[float]:
    """Stochastic depth rising linearly from 0 at the first block to ``max_rate`` at the last."""
    if isinstance(max_rate, bool) or not isinstance(max_rate, (int, float)) or not 0.0 <= max_rate < 1.0:
        raise ValueError(f"drop_path_rate must be a number in [0, 1), got {max_rate!r}")
    if num_blocks <= 1:
        return [0.0] * num_blocks
    return [max_rate * i / (num_blocks - 1) for i in range(num_blocks)]
