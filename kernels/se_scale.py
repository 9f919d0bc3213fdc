"""Triton kernels for the squeeze-excitation rescale y = x * sigmoid(gate[n, c]).

Layout as in kernels/instance_norm_act.py: a program owns BLOCK_C channels of one sample and a
chunk of the H*W positions (flat index hw, stride_hw covering NCHW and channels_last).

Forward:  one pass, reads x, writes y.
Backward: one pass, reads x and dy, writes dx = dy * sigmoid(gate) and per-program partial sums of
          dy * x; the host reduces the (N*C, S) partials in a fixed order (deterministic) and applies
          dgate = sum(dy * x) * sigmoid'(gate) on the (N, C) result. Where one program owns a whole
          plane (S = 1, the usual case once there are as many planes as SMs) the kernel writes dgate
          itself: one launch instead of one plus five small torch ops, whose host time dominates
          this op's backward at the sizes of an EfficientNet block.
"""
import torch
import triton
import triton.language as tl

from effgan import _alloc

from ._launch import cdiv, on_tensor_device, plane_split, torch_acc_dtype, triton_acc_dtype


@triton.jit
def _se_scale_fwd_kernel(
    X,  # (N, C, H, W) input
    G,  # (N*C,) gate logits
    Y,  # (N, C, H, W) output, same strides as X
    C, HW, CHUNK,
    stride_n, stride_c, stride_hw,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.program_id(2)
    cmask = c < C
    offs = n * stride_n + c.to(tl.int64) * stride_c
    gate = tl.sigmoid(tl.load(G + n * C + c, mask=cmask, other=0.0).to(ACC))
    start = s * CHUNK
    for off in range(0, CHUNK, BLOCK_HW):
        hw = start + off + tl.arange(0, BLOCK_HW)
        m = cmask[:, None] & (hw[None, :] < HW)
        idx = offs[:, None] + hw[None, :].to(tl.int64) * stride_hw
        x = tl.load(X + idx, mask=m, other=0.0).to(ACC)
        tl.store(Y + idx, (x * gate[:, None]).to(Y.dtype.element_ty), mask=m)


@triton.jit
def _se_scale_bwd_kernel(
    X, DY, DX,  # (N, C, H, W) input, output gradient, input gradient; same strides
    G,  # (N*C,) gate logits
    PSUM,  # (N*C, S) partial sums of dy * x; with FINISH (S == 1) the (N*C,) gate gradient
    C, HW, CHUNK, S,
    stride_n, stride_c, stride_hw,
    FINISH: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.program_id(2)
    cmask = c < C
    offs = n * stride_n + c.to(tl.int64) * stride_c
    gate = tl.sigmoid(tl.load(G + n * C + c, mask=cmask, other=0.0).to(ACC))
    acc = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    start = s * CHUNK
    for off in range(0, CHUNK, BLOCK_HW):
        hw = start + off + tl.arange(0, BLOCK_HW)
        m = cmask[:, None] & (hw[None, :] < HW)
        idx = offs[:, None] + hw[None, :].to(tl.int64) * stride_hw
        x = tl.load(X + idx, mask=m, other=0.0).to(ACC)
        dy = tl.load(DY + idx, mask=m, other=0.0).to(ACC)
        tl.store(DX + idx, (dy * gate[:, None]).to(DX.dtype.element_ty), mask=m)
        acc += dy * x  # masked lanes load zeros
    if FINISH:
        dgate = tl.sum(acc, axis=1) * gate * (1.0 - gate)
        tl.store(PSUM + n * C + c, dgate.to(PSUM.dtype.element_ty), mask=cmask)
    else:
        tl.store(PSUM + (n * C + c) * S + s, tl.sum(acc, axis=1), mask=cmask)


def _geometry(x):
    N, C, H, W = x.shape
    # One pass each way, so nothing is re-read: one program per SM suffices to fill the GPU, and
    # one program per plane lets the backward finish dgate in the kernel.
    split = plane_split(x, N, C, H * W, programs_per_sm=1)
    grid = (N, cdiv(C, split.BLOCK_C), split.S)
    return split, grid, (x.stride(0), x.stride(1), x.stride(3))


@on_tensor_device
def forward(x, gate):
    """y = x * sigmoid(gate) for contiguous or channels_last ``x`` and contiguous (N, C) ``gate``."""
    N, C, H, W = x.shape
    split, grid, strides = _geometry(x)
    y = _alloc.empty_like(x)
    _se_scale_fwd_kernel[grid](
        x, gate, y, C, H * W, split.CHUNK, *strides,
        BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW, ACC=triton_acc_dtype(x.dtype), num_warps=split.num_warps,
    )
    return y


@on_tensor_device
def backward(dy, x, gate):
    """(dx, dgate); ``dy`` has exactly x's strides."""
    N, C, H, W = x.shape
    split, grid, strides = _geometry(x)
    acc = torch_acc_dtype(x.dtype)
    dx = _alloc.empty_like(x)
    finish = split.S == 1
    psum = _alloc.empty((N, C), device=x.device, dtype=gate.dtype) if finish else \
        _alloc.empty((N * C, split.S), device=x.device, dtype=acc)
    _se_scale_bwd_kernel[grid](
        x, dy, dx, gate, psum, C, H * W, split.CHUNK, split.S, *strides, FINISH=finish,
        BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW, ACC=triton_acc_dtype(x.dtype), num_warps=split.num_warps,
    )
    if finish:
        return dx, psum
    sig = torch.sigmoid(gate.to(acc))
    dgate = (psum.sum(dim=1).view(N, C) * sig * (1.0 - sig)).to(gate.dtype)
    return dx, dgate
