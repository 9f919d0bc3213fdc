"""Launch geometry shared by the per-plane kernels (instance norm, AdaIN, ...)."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from ._shift import SHIFT_SAMPLE

# Upper bound on programs per plane: the second pass reduces the S partial sums of a plane in
# one vector load, and beyond this the partial buffers only add traffic.
MAX_SPLITS = 64

# The kernels index positions inside a plane in int32 (start + offset + lane, start = split *
# CHUNK), so every split's chunk must end at or below 2**31: planes are limited to leave room for a
# last block's rounding (the largest block is 8192 positions, DiffAugment's in the interpreter),
# see split_chunks.
MAX_PLANE = 2**31 - 8192

# CUDA caps launch grid axes 1 and 2 at 65535 programs (axis 0 at 2**31 - 1).
MAX_GRID_YZ = 65535


def _first_tensor(args) -> torch.Tensor | None:
    """The first tensor among ``args``, looking one level into lists and tuples (the loss's terms)."""
    for a in args:
        if isinstance(a, torch.Tensor):
            return a
        if isinstance(a, (list, tuple)):
            for b in a:
                if isinstance(b, torch.Tensor):
                    return b
    return None


def on_tensor_device(launcher):
    """Run a host launcher with its tensors' CUDA device current.

    Triton launches on the current CUDA device and that device's current stream, not on the device of
    the tensors it is handed: with cuda:1 tensors while cuda:0 is current (``--device cuda:1``
    without ``torch.cuda.set_device``), the launch is refused ("cannot be accessed from Triton") or
    runs unordered with torch's work on cuda:1. torch's own ops switch devices themselves; the
    launchers do it here, at the cost of one device query when the device is already current.
    """

    @functools.wraps(launcher)
    def run(*args, **kwargs):
        t = _first_tensor(args)
        if t is not None and t.is_cuda and t.device.index != torch.cuda.current_device():
            with torch.cuda.device(t.device):
                return launcher(*args, **kwargs)
        return launcher(*args, **kwargs)

    run.on_tensor_device = True
    return run


def cdiv(a: int, b: int) -> int:
    """ceil(a / b) for launch geometry on the host. Plain Python: ``triton.cdiv`` is a constexpr
    function whose wrapper costs microseconds a call, paid on every launch."""
    return -(-a // b)


def next_pow2(n: int) -> int:
    """The smallest power of two >= n (as ``triton.next_power_of_2``, without its wrapper's cost)."""
    return 1 << (n - 1).bit_length() if n > 0 else 0


@dataclass(frozen=True)
class PlaneSplit:
    BLOCK_C: int  # channels per program
    BLOCK_HW: int  # positions per loop step
    S: int  # programs per plane
    CHUNK: int  # positions per program, a multiple of BLOCK_HW
    BLOCK_S: int  # next power of two >= S
    num_warps: int

    @property
    def SAMPLE_HW(self) -> int:
        """Positions per step over the shift's sample (kernels/_shift.py): a tile no larger than the
        loop's, and no wider than the sample (a wider one would compute values only to mask them)."""
        return min(self.BLOCK_HW, SHIFT_SAMPLE.value)


@functools.cache
def _sm_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def is_channels_last(x: torch.Tensor) -> bool:
    return x.stride(1) == 1 and x.shape[1] > 1


def check_plane_size(HW: int) -> None:
    if HW > MAX_PLANE:
        raise ValueError(f"planes of {HW} elements are not supported by the Triton kernels (H*W at most {MAX_PLANE})")


def check_channel_blocks(C: int, block_c: int) -> None:
    """The per-plane kernels launch (N, C / block_c, S) programs: axis 1 must stay within CUDA's limit."""
    if cdiv(C, block_c) > MAX_GRID_YZ:
        raise ValueError(f"x has {C} channels: the Triton kernels take at most {MAX_GRID_YZ * block_c} in this "
                         f"layout ({MAX_GRID_YZ} launch blocks of {block_c})")


def split_chunks(size: int, s: int, block: int) -> tuple[int, int]:
    """(S, CHUNK): ``size`` positions over about ``s`` programs, CHUNK a multiple of ``block``.

    Rounding CHUNK up can make S * CHUNK pass 2**31 for a plane just under MAX_PLANE, which would
    wrap the kernels' int32 position index; fewer splits are taken then (one split always fits).
    """
    while True:
        chunk = cdiv(cdiv(size, s), block) * block
        splits = cdiv(size, chunk)
        if splits * chunk <= 2**31 or s == 1:
            return splits, chunk
        s = max(1, s // 2)


def plane_split(x: torch.Tensor, N: int, C: int, HW: int, programs_per_sm: int = 4) -> PlaneSplit:
    check_plane_size(HW)
    if is_channels_last(x):
        # Channels are the contiguous axis: a wide channel tile keeps loads coalesced.
        block_c = min(64, next_pow2(C))
        block_hw = max(1, min(next_pow2(HW), 4096 // block_c))
    else:
        block_c = 1
        block_hw = min(next_pow2(HW), 2048 if x.is_cuda else 4096)
    check_channel_blocks(C, block_c)
    n_cblocks = cdiv(C, block_c)
    max_s = min(MAX_SPLITS, cdiv(HW, block_hw))
    if x.is_cuda:
        # Aim for ~4 programs per SM so batch-1 layers with few planes still fill the GPU.
        target = programs_per_sm * _sm_count(x.device.index if x.device.index is not None else torch.cuda.current_device())
        s = max(1, min(max_s, cdiv(target, N * n_cblocks)))
    else:
        s = 1  # the interpreter runs programs one after another: fewer, larger ones are faster
    s, chunk = split_chunks(HW, s, block_hw)
    tile = block_c * block_hw
    num_warps = 8 if tile >= 4096 else 4 if tile >= 1024 else 2
    return PlaneSplit(block_c, block_hw, s, chunk, next_pow2(s), num_warps)


# A resident program holds its whole (BLOCK_C, H*W) tile in registers: this many bytes of the
# accumulation dtype per loaded tensor (16384 float32 elements). A backward holds two, x and dy:
# 64 values a thread at 16 warps, about 115 registers with the rest (cuobjdump, sm_90), no spills.
RESIDENT_MAX_BYTES = 64 * 1024


def resident_plane(x: torch.Tensor, N: int, C: int, HW: int) -> PlaneSplit | None:
    """The geometry for one program per plane tile that loads it once, or None where that does not pay.

    When each plane fits in registers and there are enough planes to give every SM a program, one
    kernel per direction reads x (and dy) once from memory, computes the statistics and writes the
    result, instead of two kernels that each read it (the second from DRAM once the tensor outgrows
    L2), and one launch instead of two. Used on CUDA only: the interpreter gains nothing from it
    (the tests force it on the CPU to cover it).
    """
    if not x.is_cuda:
        return None
    return resident_geometry(x, N, C, HW, min_programs=_sm_count(
        x.device.index if x.device.index is not None else torch.cuda.current_device()))


def resident_geometry(x: torch.Tensor, N: int, C: int, HW: int, min_programs: int = 1) -> PlaneSplit | None:
    block_hw = next_pow2(HW)
    acc_bytes = 8 if x.dtype == torch.float64 else 4
    max_tile = RESIDENT_MAX_BYTES // acc_bytes
    if is_channels_last(x):
        # Channels are the contiguous axis: at least 16 of them per tile keeps loads coalesced.
        block_c = min(64, next_pow2(C), max(1, max_tile // block_hw))
        if block_c < min(16, next_pow2(C)):
            return None
    else:
        block_c = 1
    if block_c * block_hw > max_tile or N * cdiv(C, block_c) < min_programs or cdiv(C, block_c) > MAX_GRID_YZ:
        return None
    tile = block_c * block_hw
    num_warps = max(1, min(16, tile // 512))
    return PlaneSplit(block_c, block_hw, 1, block_hw, 1, num_warps)


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
