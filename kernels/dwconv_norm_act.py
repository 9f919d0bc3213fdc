"""Triton kernels for depthwise conv -> instance norm (+affine) -> activation (+ the SE squeeze).

The conv output z is never stored: each pass recomputes it on the fly from K*K masked loads per
output tile (a depthwise conv costs K*K multiply-adds per output; the neighbouring loads hit the
cache). Layout as in kernels/instance_norm_act.py: one program owns BLOCK_C channels of one sample
and a chunk of the Ho*Wo output positions; a plane split over S programs goes through (N*C, S)
partial-sum buffers reduced in a fixed order (deterministic, no atomics).

Forward (reads x twice, writes y once):
  pass 1  z tiles -> per-plane shifted sums of z and z^2 (shift: the mean of the first z, _shift.py).
  pass 2  z tiles -> normalise, affine, act -> y; per-program partial sums of y, reduced on the
          host side by one deterministic sum into the squeeze y.mean((2, 3)).
Backward (dz = gradient before the norm, g = (dy + dsqueeze / (Ho*Wo)) * act'):
  pass 1  z tiles, dy -> per-plane sums of g and g * zhat.
  pass 2  z tiles, dy -> dz, written to an (N, C, Ho, Wo) accumulation-dtype buffer, and the
          weight-gradient partials sum(dz * x[tap]) per (sample, program, channel, tap).
  pass 3  dx as a gather through the transposed depthwise conv: for each input pixel, the taps
          whose output position lands on it (stride divisibility checked) read dz.
Zero padding is masked loads; reflect padding is done by the caller (valid conv here, PAD = 0).

Element (n, c, h, w) of every 4-D operand sits at n*s_n + c*s_c + h*s_h + w*s_w with its own
strides, so NCHW, channels_last and expanded gradients all work without copies. Offsets are int64.
"""
import torch
import triton
import triton.language as tl

from effgan import _alloc
from effgan.ops._checks import memory_format_of

from ._activation import act_backward, apply_act
from ._affine import affine_params
from ._launch import (PlaneSplit, cdiv, check_plane_size, constexpr_slope, is_channels_last, next_pow2,
                      on_tensor_device, plane_split, torch_acc_dtype, triton_acc_dtype)
from ._shift import SHIFT_SAMPLE, sample_mean, sample_tile


@triton.jit
def _tap_row(hi0, kh: tl.constexpr, H, sxh):
    """Validity and offset of input row hi0 + kh (hoisted out of the loop over kernel columns)."""
    hi = hi0 + kh
    return (hi >= 0) & (hi < H), hi.to(tl.int64) * sxh


@triton.jit
def _load_tap(XP, m, hok, hoff, wi0, kw: tl.constexpr, W, sxw, ACC: tl.constexpr):
    """x at (row of hoff, wi0 + kw) for a (BLOCK_C, BLOCK_HW) tile; XP = plane starts (BLOCK_C, 1)."""
    wi = wi0 + kw
    ok = hok & (wi >= 0) & (wi < W)
    return tl.load(XP + (hoff + wi.to(tl.int64) * sxw)[None, :], mask=m & ok[None, :], other=0.0).to(ACC)


@triton.jit
def _conv_tile(XP, WP, cmask, m, hi0, wi0, H, W, sxh, sxw, K: tl.constexpr, ACC: tl.constexpr):
    """The depthwise conv output z for a tile of output positions whose receptive fields start at
    (hi0, wi0); XP = plane starts (BLOCK_C, 1), WP = weight rows (BLOCK_C,)."""
    z = tl.zeros(m.shape, ACC)
    for kh in tl.static_range(K):
        hok, hoff = _tap_row(hi0, kh, H, sxh)
        for kw in tl.static_range(K):
            wv = tl.load(WP + (kh * K + kw), mask=cmask, other=0.0).to(ACC)
            z += _load_tap(XP, m, hok, hoff, wi0, kw, W, sxw, ACC) * wv[:, None]
    return z


@triton.jit
def _out_pos(hw, Wo, STRIDE: tl.constexpr, PAD: tl.constexpr):
    """Output row/column of flat output indices and the input origin of their receptive field."""
    ho = hw // Wo
    wo = hw - ho * Wo
    return ho, wo, ho * STRIDE - PAD, wo * STRIDE - PAD


@triton.jit
def _stats_kernel(
    X,  # (N, C, H, W) input
    WT,  # (C, K*K) conv weight
    PSUM, PSQ,  # (N*C, S) partial sums of (z - shift) and (z - shift)^2
    STATS,  # (3, N*C): shift, mean - shift, 1/std; this kernel writes the shift
    C, H, W, Wo, HWo, CHUNK, S, NC,
    sxn, sxc, sxh, sxw,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, SAMPLE_HW: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.program_id(2)
    cmask = c < C
    xoffs = n * sxn + c.to(tl.int64) * sxc
    XP = X + xoffs[:, None]
    WP = WT + c * (K * K)
    rows = n * C + c
    # Shifted sums keep the sum of squares accurate when |mean| >> std; the shift is the mean of the
    # plane's first conv outputs (kernels/_shift.py), the same in every program of the plane.
    # Names distinct from the main loop's: the compiler treats a name assigned before and inside a
    # loop as loop-carried.
    sample = tl.zeros((BLOCK_C, SAMPLE_HW), ACC)
    for off0 in range(0, SHIFT_SAMPLE, SAMPLE_HW):
        hw_first, in_sample = sample_tile(off0, HWo, SAMPLE_HW)
        m_first = cmask[:, None] & in_sample[None, :]
        _ho_first, _wo_first, hi_first, wi_first = _out_pos(hw_first, Wo, STRIDE, PAD)
        sample += tl.where(m_first, _conv_tile(XP, WP, cmask, m_first, hi_first, wi_first, H, W, sxh, sxw, K, ACC),
                           0.0)
    shift = sample_mean(sample, HWo)
    if s == 0:
        tl.store(STATS + rows, shift, mask=cmask)
    acc_s = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    acc_q = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    start = s * CHUNK
    for off in range(0, CHUNK, BLOCK_HW):
        hw = start + off + tl.arange(0, BLOCK_HW)
        m = cmask[:, None] & (hw[None, :] < HWo)
        _, _, hi0, wi0 = _out_pos(hw, Wo, STRIDE, PAD)
        z = _conv_tile(XP, WP, cmask, m, hi0, wi0, H, W, sxh, sxw, K, ACC)
        d = tl.where(m, z - shift[:, None], 0.0)
        acc_s += d
        acc_q += d * d
    tl.store(PSUM + rows * S + s, tl.sum(acc_s, axis=1), mask=cmask)
    tl.store(PSQ + rows * S + s, tl.sum(acc_q, axis=1), mask=cmask)


@triton.jit
def _fwd_kernel(
    X,  # (N, C, H, W) input
    WT,  # (C, K*K) conv weight
    NW, NB,  # (C,) norm affine weight and bias, or dummies
    Y,  # (N, C, Ho, Wo) output
    PSUM, PSQ,  # (N*C, S) partial sums from _stats_kernel
    PSQZ,  # (N*C, S) partial sums of y, for the squeeze
    STATS,  # (3, N*C): reads the shift, writes mean - shift and 1/std
    C, H, W, Wo, HWo, CHUNK, S, NC, eps,
    sxn, sxc, sxh, sxw,
    syn, syc, syh, syw,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, BLOCK_S: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.program_id(2)
    cmask = c < C
    xoffs = n * sxn + c.to(tl.int64) * sxc
    XP = X + xoffs[:, None]
    WP = WT + c * (K * K)
    yoffs = n * syn + c.to(tl.int64) * syc
    rows = n * C + c
    shift = tl.load(STATS + rows, mask=cmask, other=0.0)

    sidx = tl.arange(0, BLOCK_S)
    pm = cmask[:, None] & (sidx[None, :] < S)
    pidx = rows[:, None] * S + sidx[None, :]
    mean_d = tl.sum(tl.load(PSUM + pidx, mask=pm, other=0.0), axis=1) / HWo
    var = tl.maximum(tl.sum(tl.load(PSQ + pidx, mask=pm, other=0.0), axis=1) / HWo - mean_d * mean_d, 0.0)
    rstd = 1.0 / tl.sqrt(var + eps)
    if s == 0:
        tl.store(STATS + NC + rows, mean_d, mask=cmask)
        tl.store(STATS + NC + (NC + rows), rstd, mask=cmask)  # int64: 2 * NC may pass 2**31
    scale = rstd
    if HAS_W:
        scale = scale * tl.load(NW + c, mask=cmask, other=1.0).to(ACC)
    if HAS_B:
        bias = tl.load(NB + c, mask=cmask, other=0.0).to(ACC)
    else:
        bias = tl.zeros((BLOCK_C,), ACC)

    acc_y = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    start = s * CHUNK
    for off in range(0, CHUNK, BLOCK_HW):
        hw = start + off + tl.arange(0, BLOCK_HW)
        m = cmask[:, None] & (hw[None, :] < HWo)
        ho, wo, hi0, wi0 = _out_pos(hw, Wo, STRIDE, PAD)
        z = _conv_tile(XP, WP, cmask, m, hi0, wi0, H, W, sxh, sxw, K, ACC)
        y = apply_act(((z - shift[:, None]) - mean_d[:, None]) * scale[:, None] + bias[:, None], ACT, SLOPE)
        ypos = ho.to(tl.int64) * syh + wo.to(tl.int64) * syw
        tl.store(Y + yoffs[:, None] + ypos[None, :], y.to(Y.dtype.element_ty), mask=m)
        acc_y += tl.where(m, y, 0.0)
    tl.store(PSQZ + rows * S + s, tl.sum(acc_y, axis=1), mask=cmask)


@triton.jit
def _act_input_grad(
    XP, WP, DY, yoffs, cmask, m, hw, gsq, shift, mean_d, rstd, w, b,
    H, W, Wo, sxh, sxw, syh, syw,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr,
    ACC: tl.constexpr,
):
    """zhat and g = (dy + dsqueeze / HWo) * act'(zhat * w + b) for a tile (g zero where masked)."""
    ho, wo, hi0, wi0 = _out_pos(hw, Wo, STRIDE, PAD)
    z = _conv_tile(XP, WP, cmask, m, hi0, wi0, H, W, sxh, sxw, K, ACC)
    zhat = ((z - shift[:, None]) - mean_d[:, None]) * rstd[:, None]
    ypos = ho.to(tl.int64) * syh + wo.to(tl.int64) * syw
    g = tl.load(DY + yoffs[:, None] + ypos[None, :], mask=m, other=0.0).to(ACC) + gsq[:, None]
    if ACT != 0:
        g = act_backward(g, zhat * w[:, None] + b[:, None], ACT, SLOPE)
    return zhat, tl.where(m, g, 0.0), ho, wo, hi0, wi0


@triton.jit
def _load_plane_params(STATS, NW, NB, DSQ, rows, c, cmask, NC, HWo,
                       HAS_W: tl.constexpr, HAS_B: tl.constexpr, BLOCK_C: tl.constexpr, ACC: tl.constexpr):
    shift = tl.load(STATS + rows, mask=cmask, other=0.0)
    mean_d = tl.load(STATS + NC + rows, mask=cmask, other=0.0)
    rstd = tl.load(STATS + NC + (NC + rows), mask=cmask, other=0.0)  # int64: 2 * NC may pass 2**31
    w, b = affine_params(NW, NB, c, cmask, HAS_W, HAS_B, BLOCK_C, ACC)
    # Every output position gets d(mean)/d(y) = 1 / HWo of the squeeze gradient.
    gsq = tl.load(DSQ + rows, mask=cmask, other=0.0).to(ACC) / HWo
    return shift, mean_d, rstd, w, b, gsq


@triton.jit
def _grad_sums_kernel(
    X,  # (N, C, H, W) input
    WT,  # (C, K*K) conv weight
    NW, NB,  # (C,) norm affine parameters or dummies
    DY,  # (N, C, Ho, Wo) gradient of y
    DSQ,  # (N*C,) gradient of the squeeze
    STATS,  # (3, N*C) forward statistics
    PG, PGZ,  # (N*C, S) partial sums of g and g * zhat
    C, H, W, Wo, HWo, CHUNK, S, NC,
    sxn, sxc, sxh, sxw,
    syn, syc, syh, syw,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.program_id(2)
    cmask = c < C
    xoffs = n * sxn + c.to(tl.int64) * sxc
    XP = X + xoffs[:, None]
    WP = WT + c * (K * K)
    yoffs = n * syn + c.to(tl.int64) * syc
    rows = n * C + c
    shift, mean_d, rstd, w, b, gsq = _load_plane_params(STATS, NW, NB, DSQ, rows, c, cmask, NC, HWo,
                                                        HAS_W, HAS_B, BLOCK_C, ACC)
    acc_g = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    acc_gz = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
    start = s * CHUNK
    for off in range(0, CHUNK, BLOCK_HW):
        hw = start + off + tl.arange(0, BLOCK_HW)
        m = cmask[:, None] & (hw[None, :] < HWo)
        zhat, g, _, _, _, _ = _act_input_grad(XP, WP, DY, yoffs, cmask, m, hw, gsq, shift, mean_d, rstd,
                                              w, b, H, W, Wo, sxh, sxw, syh, syw, K, STRIDE, PAD, ACT, SLOPE, ACC)
        acc_g += g
        acc_gz += g * zhat
    tl.store(PG + rows * S + s, tl.sum(acc_g, axis=1), mask=cmask)
    tl.store(PGZ + rows * S + s, tl.sum(acc_gz, axis=1), mask=cmask)


@triton.jit
def _pre_norm_grad_kernel(
    X,  # (N, C, H, W) input
    WT,  # (C, K*K) conv weight
    NW, NB,  # (C,) norm affine parameters or dummies
    DY,  # (N, C, Ho, Wo) gradient of y
    DSQ,  # (N*C,) gradient of the squeeze
    STATS,  # (3, N*C) forward statistics
    PG, PGZ,  # (N*C, S) partial sums from _grad_sums_kernel
    SUM_G, SUM_GZ,  # (N*C,) per-plane totals, for the norm's weight and bias gradients
    DZ,  # (N, C, Ho, Wo) gradient of the conv output, accumulation dtype
    PDW,  # (N, S, C, K*K) per-program partial sums of dz * x[tap]
    C, H, W, Wo, HWo, CHUNK, S, NC,
    sxn, sxc, sxh, sxw,
    syn, syc, syh, syw,
    szn, szc, szh, szw,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr, ACT: tl.constexpr, SLOPE: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_KK: tl.constexpr,
    ACC: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.program_id(2)
    cmask = c < C
    xoffs = n * sxn + c.to(tl.int64) * sxc
    XP = X + xoffs[:, None]
    WP = WT + c * (K * K)
    yoffs = n * syn + c.to(tl.int64) * syc
    zoffs = n * szn + c.to(tl.int64) * szc
    rows = n * C + c
    shift, mean_d, rstd, w, b, gsq = _load_plane_params(STATS, NW, NB, DSQ, rows, c, cmask, NC, HWo,
                                                        HAS_W, HAS_B, BLOCK_C, ACC)
    sidx = tl.arange(0, BLOCK_S)
    pm = cmask[:, None] & (sidx[None, :] < S)
    pidx = rows[:, None] * S + sidx[None, :]
    sum_g = tl.sum(tl.load(PG + pidx, mask=pm, other=0.0), axis=1)
    sum_gz = tl.sum(tl.load(PGZ + pidx, mask=pm, other=0.0), axis=1)
    if s == 0:
        tl.store(SUM_G + rows, sum_g, mask=cmask)
        tl.store(SUM_GZ + rows, sum_gz, mask=cmask)
    mean_g = sum_g / HWo
    mean_gz = sum_gz / HWo
    k = rstd * w

    taps = tl.arange(0, BLOCK_KK)
    acc_w = tl.zeros((BLOCK_C, BLOCK_KK), ACC)
    start = s * CHUNK
    for off in range(0, CHUNK, BLOCK_HW):
        hw = start + off + tl.arange(0, BLOCK_HW)
        m = cmask[:, None] & (hw[None, :] < HWo)
        zhat, g, ho, wo, hi0, wi0 = _act_input_grad(XP, WP, DY, yoffs, cmask, m, hw, gsq, shift, mean_d,
                                                    rstd, w, b, H, W, Wo, sxh, sxw, syh, syw, K, STRIDE, PAD, ACT,
                                                    SLOPE, ACC)
        dz = tl.where(m, k[:, None] * (g - mean_g[:, None] - zhat * mean_gz[:, None]), 0.0)
        zpos = ho.to(tl.int64) * szh + wo.to(tl.int64) * szw
        tl.store(DZ + zoffs[:, None] + zpos[None, :], dz.to(DZ.dtype.element_ty), mask=m)
        for kh in tl.static_range(K):
            hok, hoff = _tap_row(hi0, kh, H, sxh)
            for kw in tl.static_range(K):
                xv = _load_tap(XP, m, hok, hoff, wi0, kw, W, sxw, ACC)
                part = tl.sum(dz * xv, axis=1)
                acc_w += tl.where(taps[None, :] == kh * K + kw, part[:, None], 0.0)
    widx = ((n * S + s) * C + c.to(tl.int64))[:, None] * (K * K) + taps[None, :]
    tl.store(PDW + widx, acc_w, mask=cmask[:, None] & (taps[None, :] < K * K))


@triton.jit
def _input_grad_kernel(
    DZ,  # (N, C, Ho, Wo) gradient of the conv output
    WT,  # (C, K*K) conv weight
    DX,  # (N, C, H, W) input gradient
    C, H, W, Ho, Wo, HW, CHUNK,
    szn, szc, szh, szw,
    sdn, sdc, sdh, sdw,
    K: tl.constexpr, STRIDE: tl.constexpr, PAD: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_HW: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(0).to(tl.int64)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    s = tl.program_id(2)
    cmask = c < C
    zoffs = n * szn + c.to(tl.int64) * szc
    doffs = n * sdn + c.to(tl.int64) * sdc
    start = s * CHUNK
    for off in range(0, CHUNK, BLOCK_HW):
        hw = start + off + tl.arange(0, BLOCK_HW)
        m = cmask[:, None] & (hw[None, :] < HW)
        h = hw // W
        wi = hw - h * W
        acc = tl.zeros((BLOCK_C, BLOCK_HW), ACC)
        for kh in tl.static_range(K):
            th = h + PAD - kh  # = ho * STRIDE when output row ho reads input row h through tap kh
            ho = tl.where(th >= 0, th, 0) // STRIDE
            hok = (th >= 0) & (ho * STRIDE == th) & (ho < Ho)
            for kw in tl.static_range(K):
                tw = wi + PAD - kw
                wo = tl.where(tw >= 0, tw, 0) // STRIDE
                ok = hok & (tw >= 0) & (wo * STRIDE == tw) & (wo < Wo)
                wv = tl.load(WT + c * (K * K) + (kh * K + kw), mask=cmask, other=0.0).to(ACC)
                zpos = ho.to(tl.int64) * szh + wo.to(tl.int64) * szw
                g = tl.load(DZ + zoffs[:, None] + zpos[None, :], mask=m & ok[None, :], other=0.0).to(ACC)
                acc += g * wv[:, None]
        dpos = h.to(tl.int64) * sdh + wi.to(tl.int64) * sdw
        tl.store(DX + doffs[:, None] + dpos[None, :], acc.to(DX.dtype.element_ty), mask=m)


def _conv_split(split: PlaneSplit, channels_last: bool, per_thread: int | None = None) -> PlaneSplit:
    """NCHW: the shared plane geometry, narrowed to at most 4 tile elements a thread; channels_last:
    the shared geometry.

    Besides the tile's tensors, each element carries its K*K taps' offsets and masks. At the shared
    geometry's 16 elements a thread (a 2048-wide NCHW tile at 4 warps, a 64x64 channels_last tile
    at 8), Triton 3.6 spilled _pre_norm_grad_kernel and _input_grad_kernel at 255 registers, and
    every dwconv kernel ran at 2-3 programs per SM (ncu on the H100, 8x256x128x128 float32: the
    two spilling kernels took 70 % of the fwd+bwd time at 15-48 % of memory throughput). Up to 8
    warps come first (more warps than 8 would cap a thread at 128 registers, and the 5x5 kernels
    need more), then narrower tiles. CHUNK, a multiple of the old BLOCK_HW, stays a multiple of the
    new one, so S and the partial-sum buffers are unchanged. The cap of 4 won the side-by-side
    timing of benchmarks/ab_dwconv_tiles.py on the H100 (fwd+bwd replays, float32): 1.45x the shared
    geometry at 8x256x128x128, 1.08-1.67x at three smaller shapes, ahead of a cap of 8 at all four.
    With 5x5 kernels the two caps split two shapes (8x256x128x128: 8 at 1.13x the shared geometry,
    4 at 1.05x; 1x96x128x128: 4 at 1.57x, 8 at 1.39x); 4 stays, batch-1 layers being the
    generators' kind.
    In channels_last every cap was slower than the shared geometry (3x3, four shapes: a cap of 4 at
    1.35-1.84x its time; 5x5: 1.10x for 8, 1.93x for 4), which keeps it.
    tests/triton_compile_worker.py --resources reports the registers and spill stack of every sm_90
    build; per_thread other than the default is for that benchmark.
    """
    if per_thread is None:
        if channels_last:
            return split
        per_thread = 4
    tile = split.BLOCK_C * split.BLOCK_HW
    warps = max(split.num_warps, min(8, tile // 256))
    block_hw = split.BLOCK_HW
    while split.BLOCK_C * block_hw > per_thread * 32 * warps and block_hw > 1:
        block_hw //= 2
    if (block_hw, warps) == (split.BLOCK_HW, split.num_warps):
        return split
    # built directly: dataclasses.replace costs over 2 us, paid three times a fwd+bwd on the host
    return PlaneSplit(split.BLOCK_C, block_hw, split.S, split.CHUNK, split.BLOCK_S, warps)


def _dummy(x: torch.Tensor) -> torch.Tensor:
    return x.new_empty(1)


def _strides(t: torch.Tensor) -> tuple:
    return tuple(t.stride())


def _out_size(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


@on_tensor_device
def forward(x, weight, norm_weight, norm_bias, stride: int, pad: int, eps: float, act: int, slope: float):
    """(y, squeeze, stats) for contiguous or channels_last ``x`` and a contiguous (C, 1, K, K) weight.

    ``stats`` (3, N, C) holds the per-plane shift, mean - shift and 1/std: backend-internal values
    that only this module's backward consumes.
    """
    N, C, H, W = x.shape
    K = weight.shape[-1]
    Ho, Wo = _out_size(H, K, stride, pad), _out_size(W, K, stride, pad)
    HWo = Ho * Wo
    # the backward's input-gradient pass takes whole input planes: refused here, not after the forward
    check_plane_size(H * W)
    split = _conv_split(plane_split(x, N, C, HWo), is_channels_last(x))
    slope = constexpr_slope(act, slope)
    acc = torch_acc_dtype(x.dtype)
    y = _alloc.empty((N, C, Ho, Wo), device=x.device, dtype=x.dtype, memory_format=memory_format_of(x))
    psum = _alloc.empty((N * C, split.S), device=x.device, dtype=acc)
    psq = _alloc.empty_like(psum)
    psqz = _alloc.empty_like(psum)
    stats = _alloc.empty((3, N, C), device=x.device, dtype=acc)
    grid = (N, cdiv(C, split.BLOCK_C), split.S)
    geo = dict(K=K, STRIDE=stride, PAD=pad, BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW,
               ACC=triton_acc_dtype(x.dtype), num_warps=split.num_warps)
    _stats_kernel[grid](x, weight, psum, psq, stats, C, H, W, Wo, HWo, split.CHUNK, split.S, N * C,
                        *_strides(x), SAMPLE_HW=split.SAMPLE_HW, **geo)
    _fwd_kernel[grid](
        x, weight,
        norm_weight if norm_weight is not None else _dummy(x),
        norm_bias if norm_bias is not None else _dummy(x),
        y, psum, psq, psqz, stats, C, H, W, Wo, HWo, split.CHUNK, split.S, N * C, eps,
        *_strides(x), *_strides(y),
        HAS_W=norm_weight is not None, HAS_B=norm_bias is not None, ACT=act, SLOPE=slope, BLOCK_S=split.BLOCK_S,
        **geo,
    )
    # One fixed-order reduction of the (N*C, S) partials: deterministic.
    squeeze = (psqz.sum(dim=1) / HWo).view(N, C).to(x.dtype)
    return y, squeeze, stats


@on_tensor_device
def backward(dy, dsqueeze, x, weight, norm_weight, norm_bias, stats, stride: int, pad: int, act: int, slope: float):
    """(dx, dweight, sum_g, sum_gz): the input and conv-weight gradients, and per-plane (N, C) sums of
    the gradient after the activation (sum g, sum g * zhat) for the norm's bias and weight gradients."""
    N, C, H, W = x.shape
    K = weight.shape[-1]
    Ho, Wo = _out_size(H, K, stride, pad), _out_size(W, K, stride, pad)
    HWo = Ho * Wo
    split = _conv_split(plane_split(x, N, C, HWo), is_channels_last(x))
    slope = constexpr_slope(act, slope)
    acc = stats.dtype
    pg = _alloc.empty((N * C, split.S), device=x.device, dtype=acc)
    pgz = _alloc.empty_like(pg)
    sum_g = _alloc.empty((N, C), device=x.device, dtype=acc)
    sum_gz = _alloc.empty_like(sum_g)
    dz = _alloc.empty((N, C, Ho, Wo), device=x.device, dtype=acc, memory_format=memory_format_of(x))
    pdw = _alloc.empty((N, split.S, C, K * K), device=x.device, dtype=acc)
    grid = (N, cdiv(C, split.BLOCK_C), split.S)
    nw = norm_weight if norm_weight is not None else _dummy(x)
    nb = norm_bias if norm_bias is not None else _dummy(x)
    flags = dict(K=K, STRIDE=stride, PAD=pad, HAS_W=norm_weight is not None, HAS_B=norm_bias is not None,
                 ACT=act, SLOPE=slope, BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW,
                 ACC=triton_acc_dtype(x.dtype), num_warps=split.num_warps)
    common = (C, H, W, Wo, HWo, split.CHUNK, split.S, N * C, *_strides(x), *_strides(dy))
    _grad_sums_kernel[grid](x, weight, nw, nb, dy, dsqueeze, stats, pg, pgz, *common, **flags)
    _pre_norm_grad_kernel[grid](
        x, weight, nw, nb, dy, dsqueeze, stats, pg, pgz, sum_g, sum_gz, dz, pdw, *common, *_strides(dz),
        BLOCK_S=split.BLOCK_S, BLOCK_KK=next_pow2(K * K), **flags,
    )
    dweight = pdw.sum(dim=(0, 1)).view(C, 1, K, K).to(weight.dtype)

    dx = _alloc.empty_like(x)
    split_in = _conv_split(plane_split(x, N, C, H * W), is_channels_last(x))
    grid_in = (N, cdiv(C, split_in.BLOCK_C), split_in.S)
    _input_grad_kernel[grid_in](
        dz, weight, dx, C, H, W, Ho, Wo, H * W, split_in.CHUNK, *_strides(dz), *_strides(dx),
        K=K, STRIDE=stride, PAD=pad, BLOCK_C=split_in.BLOCK_C, BLOCK_HW=split_in.BLOCK_HW,
        ACC=triton_acc_dtype(x.dtype), num_warps=split_in.num_warps,
    )
    return dx, dweight, sum_g, sum_gz
