"""Launch geometry shared by the per-plane kernels (instance norm, AdaIN, ...)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

# Upper bound on programs per plane: the second pass reduces the S partial sums of a plane in
# one vector load, and beyond this the partial buffers only add traffic.
MAX_SPLITS = 64


@dataclass(frozen=True)
class PlaneSplit:
    BLOCK_C: int  # channels per program
    BLOCK_HW: int  # positions per loop step
    S: int  # programs per plane
    CHUNK: int  # positions per program, a multiple of BLOCK_HW
    BLOCK_S: int  # next power of two >= S
    num_warps: int


@functools.cache
def _sm_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def is_channels_last(x: torch.Tensor) -> bool:
    return x.stride(1) == 1 and x.shape[1] > 1


def plane_split(x: torch.Tensor, N: int, C: int, HW: int) -> PlaneSplit:
    if HW >= 2**31:
        raise ValueError(f"planes of {HW} elements (H*W >= 2**31) are not supported")
    if is_channels_last(x):
        # Channels are the contiguous axis: a wide channel tile keeps loads coalesced.
        block_c = min(64, triton.next_power_of_2(C))
        block_hw = max(1, min(triton.next_power_of_2(HW), 4096 // block_c))
    else:
        block_c = 1
        block_hw = min(triton.next_power_of_2(HW), 2048 if x.is_cuda else 4096)
    n_cblocks = triton.cdiv(C, block_c)
    max_s = min(MAX_SPLITS, triton.cdiv(HW, block_hw))
    if x.is_cuda:
        # Aim for ~4 programs per SM so batch-1 layers with few planes still fill the GPU.
        target = 4 * _sm_count(x.device.index if x.device.index is not None else torch.cuda.current_device())
        s = max(1, min(max_s, triton.cdiv(target, N * n_cblocks)))
    else:
        s = 1  # the interpreter runs programs one after another: fewer, larger ones are faster
    chunk = triton.cdiv(triton.cdiv(HW, s), block_hw) * block_hw
    s = triton.cdiv(HW, chunk)
    tile = block_c * block_hw
    num_warps = 8 if tile >= 4096 else 4 if tile >= 1024 else 2
    return PlaneSplit(block_c, block_hw, s, chunk, triton.next_power_of_2(s), num_warps)


def torch_acc_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 inputs accumulate in float64 (for gradcheck); everything else in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def triton_acc_dtype(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


LEAKY_RELU = 2  # activation code, see kernels/_activation.py


def constexpr_slope(act: int, slope: float) -> float:
    """The slope is a compile-time constant (full precision in float64 kernels); normalising it for
    activations that ignore it avoids compiling one kernel per unused value."""
    return float(slope) if act == LEAKY_RELU else 0.0
