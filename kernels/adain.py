"""Triton kernels for the StyleGAN layer epilogue (AdaIN), forward and backward.

    u = x + noise[n] * noise_weight[c] + bias[c];  h = act(u);  y = instance_norm(h) * scale[n, c] + shift_[n, c]

u and h are never stored: every pass recomputes them from x and the (N, 1, H, W) noise image.

Layout (as kernels/instance_norm_act.py): one program owns BLOCK_C channels of one sample and a
contiguous chunk of the H*W positions; a plane may be split over S programs, whose partial sums go
through (N*C, S) buffers that later passes reduce in a fixed order (deterministic, no atomics).

Forward:  pass 1 reads x, noise for shifted sums of h; pass 2 reads them again and writes y.
Backward: pass 1 reads x, noise, dy for sum(dy) and sum(dy * hhat) (the style gradients, and the
instance-norm backward's two means); pass 2 reads them again, writes dx (= du) and per-program
partial sums of du * noise and du (the noise-weight and bias gradients, reduced in torch).

Resident path (``_launch.resident_plane``, as in kernels/instance_norm_act.py): where a plane tile
fits in registers and the planes occupy every SM, one program per tile does both passes on values
it loaded once: one kernel per direction, each tensor read once.

Indexing: x element (n, c, hw) sits at n*stride_n + c*stride_c + hw*stride_hw (NCHW or
channels_last, no copies); noise element (n, hw) at n*noise_stride_n + hw*noise_stride_hw, so a
noise image shared over the batch (stride 0) needs no copy either. Offsets are int64.
"""
import torch
import triton
import triton.language as tl

from effgan import _alloc

from ._activation import act_backward, apply_act
from ._launch import (cdiv, constexpr_slope, on_tensor_device, plane_split, resident_plane, torch_acc_dtype,
                      triton_acc_dtype)
from ._shift import SHIFT_SAMPLE, sample_mean, sample_tile


@triton.jit
def _load_noise(NOISE, noise_idx, hw_mask, HAS_NOISE: tl.constexpr, ACC: tl.constexpr):
    """One (BLOCK_HW,) row of the noise image (zeros without noise), shared by the tile's channels."""
    if HAS_NOISE:
        z = tl.load(NOISE + noise_idx, mask=hw_mask, other=0.0).to(ACC)
    else:
        z = tl.zeros(noise_idx.shape, ACC)
    return z


@triton.jit
def _pre_act(X, x_idx, m, z, nw, b, HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr, ACC: tl.constexpr):
    """u for a (BLOCK_C, BLOCK_HW) tile, given the tile's noise row z."""
    u = tl.load(X + x_idx, mask=m, other=0.0).to(ACC)
    if HAS_NOISE:
        u += z[None, :] * nw[:, None]
    if HAS_BIAS:
        u += b[:, None]
    return u


@triton.jit
def _channel_params(NW, B, c, cmask, HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_C: tl.constexpr,
                    ACC: tl.constexpr):
    if HAS_NOISE:
        nw = tl.load(NW + c, mask=cmask, other=0.0).to(ACC)
    else:
        nw = tl.zeros((BLOCK_C,), ACC)
    if HAS_BIAS:
        b = tl.load(B + c, mask=cmask, other=0.0).to(ACC)
    else:
        b = tl.zeros((BLOCK_C,), ACC)
    return nw, b


@triton.jit
def _fwd_partial_stats_kernel(
    X,  # (N, C, H, W) input
    NOISE,  # (N, H*W) noise image (any strides) or dummy
    NW,  # (C,) noise weight or dummy
    B,  # (C,) bias or dummy
    SHIFT,  # (N*C,) the mean of the plane's first values of h, the shift of the sums below
    PSUM,  # (N*C, S) partial sums of (h - shift), accumulation dtype
    PSQ,  # (N*C, S) partial sums of (h - shift)^2
    C, HW, CHUNK, S,
    stride_n, stride_c, stride_hw, noise_stride_n, noise_stride_hw,
    HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, SAMPLE_HW: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.program_id(2)
    cmask = c < C
    offs = n * stride_n + c.to(tl.int64) * stride_c  # (BLOCK_C,) plane starts
    noise_row = n * noise_stride_n
    nw, b = _channel_params(NW, B, c, cmask, HAS_NOISE, HAS_BIAS, BLOCK_C, ACC)

    # Shifted sums keep the sum of squares accurate when |mean(h)| >> std(h); the shift is the mean
    # of the plane's first values of h (kernels/_shift.py). Every program of the plane computes the
    # same value with the same code; program 0 publishes it so the later passes use exactly this one.
    sample = tl.zeros((BLOCK_C, SAMPLE_HW), ACC)
    for off0 in range(0, SHIFT_SAMPLE, SAMPLE_HW):
        hw0, in_sample = sample_tile(off0, HW, SAMPLE_HW)
        pos0 = hw0.to(tl.int64)
        m0 = cmask[:, None] & in_sample[None, :]
        z0 = _load_noise(NOISE, noise_row + pos0 * noise_stride_hw, in_sample, HAS_NOISE, ACC)
        u0 = _pre_act(X, offs[:, None] + pos0[None, :] * stride_hw, m0, z0, nw, b, HAS_NOISE, HAS_BIAS, ACC)
        sample += tl.where(m0, apply_act(u0, ACT, SLOPE), 0.0)
    shift = sample_mean(sample, HW)
    rows = n * C + c
    if s == 0:
        tl.store(SHIFT + rows, shift, mask=cmask)

    acc_s = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    acc_q = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    start = s.to(tl.int64) * CHUNK
    for off in range(0, CHUNK, BLOCK_HW):
        hw = start + off + tl.arange(0, BLOCK_HW)
        hw_mask = hw < HW
        m = cmask[:, None] & hw_mask[None, :]
        z = _load_noise(NOISE, noise_row + hw * noise_stride_hw, hw_mask, HAS_NOISE, ACC)
        u = _pre_act(X, offs[:, None] + hw[None, :] * stride_hw, m, z, nw, b, HAS_NOISE, HAS_BIAS, ACC)
        d = tl.where(m, apply_act(u, ACT, SLOPE) - shift[:, None], 0.0)
        acc_s += d
        acc_q += d * d
    prow = rows * S + s
    tl.store(PSUM + prow, tl.sum(acc_s, axis=1), mask=cmask)
    tl.store(PSQ + prow, tl.sum(acc_q, axis=1), mask=cmask)


@triton.jit
def _fwd_norm_style_kernel(
    X,  # (N, C, H, W) input
    Y,  # (N, C, H, W) output, same strides as X
    NOISE,  # (N, H*W) noise image or dummy
    NW, B,  # (C,) noise weight and bias, or dummies
    SCALE, SBIAS,  # (N*C,) style scale and style bias, contiguous
    SHIFT,  # (N*C,) from _fwd_partial_stats_kernel
    PSUM, PSQ,  # (N*C, S) partial sums from _fwd_partial_stats_kernel
    MEAN, RSTD,  # (N*C,) saved statistics: mean(h) - shift, 1/std(h)
    C, HW, CHUNK, S, eps,
    stride_n, stride_c, stride_hw, noise_stride_n, noise_stride_hw,
    HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, BLOCK_S: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.program_id(2)
    cmask = c < C
    offs = n * stride_n + c.to(tl.int64) * stride_c
    noise_row = n * noise_stride_n
    rows = n * C + c
    nw, b = _channel_params(NW, B, c, cmask, HAS_NOISE, HAS_BIAS, BLOCK_C, ACC)
    shift = tl.load(SHIFT + rows, mask=cmask, other=0.0)

    sidx = tl.arange(0, BLOCK_S)
    pm = cmask[:, None] & (sidx[None, :] < S)
    pidx = rows[:, None] * S + sidx[None, :]
    mean_d = tl.sum(tl.load(PSUM + pidx, mask=pm, other=0.0), axis=1) / HW
    var = tl.maximum(tl.sum(tl.load(PSQ + pidx, mask=pm, other=0.0), axis=1) / HW - mean_d * mean_d, 0.0)
    rstd = 1.0 / tl.sqrt(var + eps)
    if s == 0:
        tl.store(MEAN + rows, mean_d, mask=cmask)
        tl.store(RSTD + rows, rstd, mask=cmask)

    k = rstd * tl.load(SCALE + rows, mask=cmask, other=0.0).to(ACC)
    sb = tl.load(SBIAS + rows, mask=cmask, other=0.0).to(ACC)
    start = s.to(tl.int64) * CHUNK
    for off in range(0, CHUNK, BLOCK_HW):
        hw = start + off + tl.arange(0, BLOCK_HW)
        hw_mask = hw < HW
        m = cmask[:, None] & hw_mask[None, :]
        idx = offs[:, None] + hw[None, :] * stride_hw
        z = _load_noise(NOISE, noise_row + hw * noise_stride_hw, hw_mask, HAS_NOISE, ACC)
        u = _pre_act(X, idx, m, z, nw, b, HAS_NOISE, HAS_BIAS, ACC)
        y = ((apply_act(u, ACT, SLOPE) - shift[:, None]) - mean_d[:, None]) * k[:, None] + sb[:, None]
        tl.store(Y + idx, y.to(Y.dtype.element_ty), mask=m)


@triton.jit
def _bwd_partial_sums_kernel(
    X, DY,  # (N, C, H, W) input and output gradient, same strides
    NOISE,  # (N, H*W) noise image or dummy
    NW, B,  # (C,) noise weight and bias, or dummies
    SHIFT, MEAN, RSTD,  # (N*C,) saved statistics
    PDY, PDYH,  # (N*C, S) partial sums of dy and dy * hhat
    C, HW, CHUNK, S,
    stride_n, stride_c, stride_hw, noise_stride_n, noise_stride_hw,
    HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.program_id(2)
    cmask = c < C
    offs = n * stride_n + c.to(tl.int64) * stride_c
    noise_row = n * noise_stride_n
    rows = n * C + c
    nw, b = _channel_params(NW, B, c, cmask, HAS_NOISE, HAS_BIAS, BLOCK_C, ACC)
    shift = tl.load(SHIFT + rows, mask=cmask, other=0.0)
    mean_d = tl.load(MEAN + rows, mask=cmask, other=0.0)
    rstd = tl.load(RSTD + rows, mask=cmask, other=0.0)

    acc_dy = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    acc_dyh = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    start = s.to(tl.int64) * CHUNK
    for off in range(0, CHUNK, BLOCK_HW):
        hw = start + off + tl.arange(0, BLOCK_HW)
        hw_mask = hw < HW
        m = cmask[:, None] & hw_mask[None, :]
        idx = offs[:, None] + hw[None, :] * stride_hw
        z = _load_noise(NOISE, noise_row + hw * noise_stride_hw, hw_mask, HAS_NOISE, ACC)
        u = _pre_act(X, idx, m, z, nw, b, HAS_NOISE, HAS_BIAS, ACC)
        hhat = ((apply_act(u, ACT, SLOPE) - shift[:, None]) - mean_d[:, None]) * rstd[:, None]
        dy = tl.load(DY + idx, mask=m, other=0.0).to(ACC)  # 0 where masked
        acc_dy += dy
        acc_dyh += dy * hhat
    prow = rows * S + s
    tl.store(PDY + prow, tl.sum(acc_dy, axis=1), mask=cmask)
    tl.store(PDYH + prow, tl.sum(acc_dyh, axis=1), mask=cmask)


@triton.jit
def _bwd_input_grad_kernel(
    X, DY, DX,  # (N, C, H, W) input, output gradient, input gradient; same strides
    NOISE,  # (N, H*W) noise image or dummy
    NW, B,  # (C,) noise weight and bias, or dummies
    SCALE,  # (N*C,) style scale, contiguous
    SHIFT, MEAN, RSTD,  # (N*C,) saved statistics
    PDY, PDYH,  # (N*C, S) partial sums from _bwd_partial_sums_kernel
    SUM_DY, SUM_DYH,  # (N*C,) per-plane totals, for the style gradients
    PDUZ, PDU,  # (N*C, S) partial sums of du * noise (zeros without noise) and du
    C, HW, CHUNK, S,
    stride_n, stride_c, stride_hw, noise_stride_n, noise_stride_hw,
    HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, BLOCK_S: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.program_id(2)
    cmask = c < C
    offs = n * stride_n + c.to(tl.int64) * stride_c
    noise_row = n * noise_stride_n
    rows = n * C + c
    nw, b = _channel_params(NW, B, c, cmask, HAS_NOISE, HAS_BIAS, BLOCK_C, ACC)
    shift = tl.load(SHIFT + rows, mask=cmask, other=0.0)
    mean_d = tl.load(MEAN + rows, mask=cmask, other=0.0)
    rstd = tl.load(RSTD + rows, mask=cmask, other=0.0)

    sidx = tl.arange(0, BLOCK_S)
    pm = cmask[:, None] & (sidx[None, :] < S)
    pidx = rows[:, None] * S + sidx[None, :]
    sum_dy = tl.sum(tl.load(PDY + pidx, mask=pm, other=0.0), axis=1)
    sum_dyh = tl.sum(tl.load(PDYH + pidx, mask=pm, other=0.0), axis=1)
    if s == 0:
        tl.store(SUM_DY + rows, sum_dy, mask=cmask)
        tl.store(SUM_DYH + rows, sum_dyh, mask=cmask)
    # With dhhat = dy * scale: dh = rstd * (dhhat - mean(dhhat) - hhat * mean(dhhat * hhat)),
    # and scale is constant over the plane, so it factors out of both means.
    k = rstd * tl.load(SCALE + rows, mask=cmask, other=0.0).to(ACC)
    mean_dy = sum_dy / HW
    mean_dyh = sum_dyh / HW

    acc_duz = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    acc_du = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    start = s.to(tl.int64) * CHUNK
    for off in range(0, CHUNK, BLOCK_HW):
        hw = start + off + tl.arange(0, BLOCK_HW)
        hw_mask = hw < HW
        m = cmask[:, None] & hw_mask[None, :]
        idx = offs[:, None] + hw[None, :] * stride_hw
        z = _load_noise(NOISE, noise_row + hw * noise_stride_hw, hw_mask, HAS_NOISE, ACC)
        u = _pre_act(X, idx, m, z, nw, b, HAS_NOISE, HAS_BIAS, ACC)
        hhat = ((apply_act(u, ACT, SLOPE) - shift[:, None]) - mean_d[:, None]) * rstd[:, None]
        dy = tl.load(DY + idx, mask=m, other=0.0).to(ACC)
        du = k[:, None] * (dy - mean_dy[:, None] - hhat * mean_dyh[:, None])
        if ACT != 0:
            du = act_backward(du, u, ACT, SLOPE)
        tl.store(DX + idx, du.to(DX.dtype.element_ty), mask=m)
        du = tl.where(m, du, 0.0)
        acc_du += du
        if HAS_NOISE:
            acc_duz += du * z[None, :]
    prow = rows * S + s
    tl.store(PDUZ + prow, tl.sum(acc_duz, axis=1), mask=cmask)
    tl.store(PDU + prow, tl.sum(acc_du, axis=1), mask=cmask)


@triton.jit
def _resident_tile(X, NOISE, NW, B, C, HW, stride_n, stride_c, stride_hw, noise_stride_n, noise_stride_hw,
                   HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr,
                   ACC: tl.constexpr):
    """A resident program's whole tile: (rows, cmask, m, idx, noise row z, u)."""
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = c < C
    hw = tl.arange(0, BLOCK_HW)
    hw_mask = hw < HW
    m = cmask[:, None] & hw_mask[None, :]
    idx = (n * stride_n + c.to(tl.int64) * stride_c)[:, None] + hw[None, :].to(tl.int64) * stride_hw
    nw, b = _channel_params(NW, B, c, cmask, HAS_NOISE, HAS_BIAS, BLOCK_C, ACC)
    z = _load_noise(NOISE, n * noise_stride_n + hw.to(tl.int64) * noise_stride_hw, hw_mask, HAS_NOISE, ACC)
    u = _pre_act(X, idx, m, z, nw, b, HAS_NOISE, HAS_BIAS, ACC)
    return n * C + c, cmask, m, idx, z, u


@triton.jit
def _resident_fwd_kernel(
    X, Y, NOISE, NW, B, SCALE, SBIAS,  # as _fwd_norm_style_kernel
    SHIFT, MEAN, RSTD,  # (N*C,) saved statistics, in the convention of the two-kernel path
    C, HW, eps,
    stride_n, stride_c, stride_hw, noise_stride_n, noise_stride_hw,
    HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, ACC: tl.constexpr,
):
    """One program per (sample, channel tile), the whole plane in registers: x and noise read once."""
    rows, cmask, m, idx, z, u = _resident_tile(X, NOISE, NW, B, C, HW, stride_n, stride_c, stride_hw,
                                               noise_stride_n, noise_stride_hw, HAS_NOISE, HAS_BIAS, BLOCK_C,
                                               BLOCK_HW, ACC)
    h = apply_act(u, ACT, SLOPE)
    # The exact two-pass variance below needs no particular shift: h at the plane's first position
    # (a sum with one nonzero term, exact in any order).
    first = tl.arange(0, BLOCK_HW)[None, :] == 0
    shift = tl.sum(tl.where(first, h, 0.0), axis=1)
    d = tl.where(m, h - shift[:, None], 0.0)
    mean_d = tl.sum(d, axis=1) / HW
    centred = tl.where(m, d - mean_d[:, None], 0.0)  # exact two-pass variance from registers
    rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, axis=1) / HW + eps)
    tl.store(SHIFT + rows, shift, mask=cmask)
    tl.store(MEAN + rows, mean_d, mask=cmask)
    tl.store(RSTD + rows, rstd, mask=cmask)
    k = rstd * tl.load(SCALE + rows, mask=cmask, other=0.0).to(ACC)
    sb = tl.load(SBIAS + rows, mask=cmask, other=0.0).to(ACC)
    y = centred * k[:, None] + sb[:, None]
    tl.store(Y + idx, y.to(Y.dtype.element_ty), mask=m)


@triton.jit
def _resident_bwd_kernel(
    X, DY, DX, NOISE, NW, B, SCALE,  # as _bwd_input_grad_kernel
    SHIFT, MEAN, RSTD,  # (N*C,) saved statistics
    SUM_DY, SUM_DYH, SUM_DUZ, SUM_DU,  # (N*C,) per-plane sums of dy, dy * hhat, du * noise, du
    C, HW,
    stride_n, stride_c, stride_hw, noise_stride_n, noise_stride_hw,
    HAS_NOISE: tl.constexpr, HAS_BIAS: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, ACC: tl.constexpr,
):
    """One program per (sample, channel tile), the plane's x, noise and dy in registers: each read once."""
    rows, cmask, m, idx, z, u = _resident_tile(X, NOISE, NW, B, C, HW, stride_n, stride_c, stride_hw,
                                               noise_stride_n, noise_stride_hw, HAS_NOISE, HAS_BIAS, BLOCK_C,
                                               BLOCK_HW, ACC)
    shift = tl.load(SHIFT + rows, mask=cmask, other=0.0)
    mean_d = tl.load(MEAN + rows, mask=cmask, other=0.0)
    rstd = tl.load(RSTD + rows, mask=cmask, other=0.0)
    hhat = ((apply_act(u, ACT, SLOPE) - shift[:, None]) - mean_d[:, None]) * rstd[:, None]
    dy = tl.load(DY + idx, mask=m, other=0.0).to(ACC)  # 0 where masked
    sum_dy = tl.sum(dy, axis=1)
    sum_dyh = tl.sum(dy * hhat, axis=1)
    tl.store(SUM_DY + rows, sum_dy, mask=cmask)
    tl.store(SUM_DYH + rows, sum_dyh, mask=cmask)
    k = rstd * tl.load(SCALE + rows, mask=cmask, other=0.0).to(ACC)
    du = k[:, None] * (dy - (sum_dy / HW)[:, None] - hhat * (sum_dyh / HW)[:, None])
    if ACT != 0:
        du = act_backward(du, u, ACT, SLOPE)
    tl.store(DX + idx, du.to(DX.dtype.element_ty), mask=m)
    du = tl.where(m, du, 0.0)
    tl.store(SUM_DU + rows, tl.sum(du, axis=1), mask=cmask)
    if HAS_NOISE:
        tl.store(SUM_DUZ + rows, tl.sum(du * z[None, :], axis=1), mask=cmask)
    else:
        tl.store(SUM_DUZ + rows, tl.zeros((BLOCK_C,), ACC), mask=cmask)


def _dummy(x: torch.Tensor) -> torch.Tensor:
    return x.new_empty(1)


def _noise_2d(noise, x):
    """(N, H*W) view of the (N, 1, H, W) noise (a copy only if H and W cannot be merged), or a dummy."""
    if noise is None:
        return _dummy(x), (0, 0)
    N, _, H, W = noise.shape
    z = noise.reshape(N, H * W)
    return z, (z.stride(0), z.stride(1))


@on_tensor_device
def forward(x, style_scale, style_bias, noise, noise_weight, bias, eps: float, act: int, slope: float):
    """y and the saved statistics for contiguous or channels_last ``x`` (operands validated).

    ``style_scale``/``style_bias`` are contiguous (N, C); the statistics (shift, mean - shift,
    1 / std) of h per plane, each (N, C), are backend-internal values that only ``backward`` reads.
    """
    N, C, H, W = x.shape
    HW = H * W
    slope = constexpr_slope(act, slope)
    acc = torch_acc_dtype(x.dtype)
    y = _alloc.empty_like(x)
    shift = _alloc.empty((N, C), device=x.device, dtype=acc)
    mean = _alloc.empty_like(shift)
    rstd = _alloc.empty_like(shift)
    z, zstrides = _noise_2d(noise, x)
    nw = noise_weight if noise_weight is not None else _dummy(x)
    b = bias if bias is not None else _dummy(x)
    resident = resident_plane(x, N, C, HW)
    if resident is not None:
        _resident_fwd_kernel[(N, cdiv(C, resident.BLOCK_C))](
            x, y, z, nw, b, style_scale, style_bias, shift, mean, rstd, C, HW, eps,
            x.stride(0), x.stride(1), x.stride(3), *zstrides,
            HAS_NOISE=noise is not None, HAS_BIAS=bias is not None, ACT=act, SLOPE=slope,
            BLOCK_C=resident.BLOCK_C, BLOCK_HW=resident.BLOCK_HW, ACC=triton_acc_dtype(x.dtype),
            num_warps=resident.num_warps,
        )
        return y, shift, mean, rstd
    split = plane_split(x, N, C, HW)
    psum = _alloc.empty((N * C, split.S), device=x.device, dtype=acc)
    psq = _alloc.empty_like(psum)
    grid = (N, cdiv(C, split.BLOCK_C), split.S)
    strides = (x.stride(0), x.stride(1), x.stride(3), *zstrides)
    flags = dict(HAS_NOISE=noise is not None, HAS_BIAS=bias is not None, ACT=act, SLOPE=slope,
                 BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW, ACC=triton_acc_dtype(x.dtype),
                 num_warps=split.num_warps)
    _fwd_partial_stats_kernel[grid](
        x, z, nw, b, shift, psum, psq, C, HW, split.CHUNK, split.S, *strides, SAMPLE_HW=split.SAMPLE_HW, **flags,
    )
    _fwd_norm_style_kernel[grid](
        x, y, z, nw, b, style_scale, style_bias, shift, psum, psq, mean, rstd,
        C, HW, split.CHUNK, split.S, eps, *strides, BLOCK_S=split.BLOCK_S, **flags,
    )
    return y, shift, mean, rstd


@on_tensor_device
def backward(dy, x, style_scale, noise, noise_weight, bias, shift, mean, rstd, act: int, slope: float):
    """dx (= du) and four (N, C) per-plane sums: dy, dy * hhat, du * noise (zeros without noise), du.

    The first two are the style-bias and style-scale gradients; the last two, summed over the
    batch, the noise-weight and bias gradients.
    """
    N, C, H, W = x.shape
    HW = H * W
    slope = constexpr_slope(act, slope)
    acc = mean.dtype
    dx = _alloc.empty_like(x)
    sum_dy = _alloc.empty((N, C), device=x.device, dtype=acc)
    sum_dyh = _alloc.empty_like(sum_dy)
    z, zstrides = _noise_2d(noise, x)
    nw = noise_weight if noise_weight is not None else _dummy(x)
    b = bias if bias is not None else _dummy(x)
    # The forward chose its path from x alone; the same choice here reads its statistics.
    resident = resident_plane(x, N, C, HW)
    if resident is not None:
        sum_duz = _alloc.empty_like(sum_dy)
        sum_du = _alloc.empty_like(sum_dy)
        _resident_bwd_kernel[(N, cdiv(C, resident.BLOCK_C))](
            x, dy, dx, z, nw, b, style_scale, shift, mean, rstd, sum_dy, sum_dyh, sum_duz, sum_du, C, HW,
            x.stride(0), x.stride(1), x.stride(3), *zstrides,
            HAS_NOISE=noise is not None, HAS_BIAS=bias is not None, ACT=act, SLOPE=slope,
            BLOCK_C=resident.BLOCK_C, BLOCK_HW=resident.BLOCK_HW, ACC=triton_acc_dtype(x.dtype),
            num_warps=resident.num_warps,
        )
        return dx, sum_dy, sum_dyh, sum_duz, sum_du
    split = plane_split(x, N, C, HW)
    pdy = _alloc.empty((N * C, split.S), device=x.device, dtype=acc)
    pdyh = _alloc.empty_like(pdy)
    pduz = _alloc.empty_like(pdy)
    pdu = _alloc.empty_like(pdy)
    grid = (N, cdiv(C, split.BLOCK_C), split.S)
    strides = (x.stride(0), x.stride(1), x.stride(3), *zstrides)
    flags = dict(HAS_NOISE=noise is not None, HAS_BIAS=bias is not None, ACT=act, SLOPE=slope,
                 BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW, ACC=triton_acc_dtype(x.dtype),
                 num_warps=split.num_warps)
    _bwd_partial_sums_kernel[grid](
        x, dy, z, nw, b, shift, mean, rstd, pdy, pdyh, C, HW, split.CHUNK, split.S, *strides, **flags,
    )
    _bwd_input_grad_kernel[grid](
        x, dy, dx, z, nw, b, style_scale, shift, mean, rstd, pdy, pdyh, sum_dy, sum_dyh, pduz, pdu,
        C, HW, split.CHUNK, split.S, *strides, BLOCK_S=split.BLOCK_S, **flags,
    )
    # The S programs of a plane are summed in a fixed order: deterministic.
    sum_duz = pduz.view(N, C, split.S).sum(2)
    sum_du = pdu.view(N, C, split.S).sum(2)
    return dx, sum_dy, sum_dyh, sum_duz, sum_du
