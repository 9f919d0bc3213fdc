"""Triton kernels for DiffAugment (color, translation, cutout) as one linear map per sample.

With the sampled parameters fixed, the whole policy is linear in x. For an output pixel (h, w) of
sample n that survives cutout and whose translation source (h + dh, w + dw) lies inside the image:

    y[c, h, w] = a * x[c, sh, sw] + k * cm[sh, sw] + m0          (0 elsewhere)
    a = contrast * saturation,  k = contrast - a,  m0 = (1 - contrast) * mean(x) + brightness

where cm is the per-pixel channel mean of x and mean(x) the per-sample mean (saturation keeps the
per-pixel channel mean, so the contrast mean is mean(x) + brightness). Without color a = 1, k = m0 = 0.

Forward:  one reduction pass over x for the per-sample sums (color only; partial sums per (n, split),
          reduced in a fixed order by the next kernel: deterministic), one gather pass writing y.
Backward: the transpose. One reduction pass over dy for the per-sample sum over surviving outputs
          (color only), one pass writing dx[c, h', w'] = keep * (a * dy[c, h, w] + k * mean_c dy[:, h, w])
          + (1 - contrast) * sum_kept(dy) / (C * H * W), with (h, w) = (h' - dh, w' - dw).

A program owns all channels of BLOCK_P pixels of one sample; element (n, c, h, w) sits at
n*stride_n + c*stride_c + h*stride_h + w*stride_w (NCHW or channels_last, no copies), in int64.
"""
import torch
import triton
import triton.language as tl

from effgan import _alloc

from ._launch import (
    MAX_GRID_YZ,
    MAX_SPLITS,
    _sm_count,
    cdiv,
    check_plane_size,
    next_pow2,
    on_tensor_device,
    split_chunks,
    torch_acc_dtype,
    triton_acc_dtype,
)


@triton.jit
def _keep_and_source(n, h, w, H, W, pmask, SHIFT, CUT, CUT_H, CUT_W, TRANS: tl.constexpr, CUTOUT: tl.constexpr):
    """For output pixels (h, w): whether they survive, and the input pixel they read (out of bounds -> masked)."""
    keep = pmask
    if CUTOUT:
        top = tl.load(CUT + 2 * n, mask=n >= 0, other=0)
        left = tl.load(CUT + 2 * n + 1, mask=n >= 0, other=0)
        inside = (h >= top) & (h < top + CUT_H) & (w >= left) & (w < left + CUT_W)
        keep = keep & (inside == 0)
    sh = h
    sw = w
    if TRANS:
        sh = h + tl.load(SHIFT + 2 * n, mask=n >= 0, other=0)
        sw = w + tl.load(SHIFT + 2 * n + 1, mask=n >= 0, other=0)
        keep = keep & (sh >= 0) & (sh < H) & (sw >= 0) & (sw < W)
    return keep, sh, sw


@triton.jit
def _sample_partial_sum_kernel(
    X,  # (N, C, H, W) input (forward) or output gradient (backward)
    SHIFT,  # (N, 2) int32 translation (dh, dw), or a dummy
    CUT,  # (N, 2) int32 top-left corner of the cutout square, or a dummy
    PSUM,  # (N, S) partial sums, accumulation dtype
    C, H, W, CHUNK, S, CUT_H, CUT_W,
    stride_n, stride_c, stride_h, stride_w,
    KEEP_ONLY: tl.constexpr, TRANS: tl.constexpr, CUTOUT: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(0)
    s = tl.program_id(1)
    HW = H * W
    c = tl.arange(0, BLOCK_C)
    cmask = c < C
    base = X + n.to(tl.int64) * stride_n + c.to(tl.int64)[:, None] * stride_c
    acc = tl.zeros((BLOCK_C, BLOCK_P), ACC)
    for off in range(0, CHUNK, BLOCK_P):
        p = s * CHUNK + off + tl.arange(0, BLOCK_P)
        pmask = p < HW
        h = p // W
        w = p % W
        if KEEP_ONLY:
            # Backward: only outputs that survive translation and cutout carry gradient to the mean.
            keep, sh, sw = _keep_and_source(n, h, w, H, W, pmask, SHIFT, CUT, CUT_H, CUT_W, TRANS, CUTOUT)
        else:
            keep = pmask
        m = cmask[:, None] & keep[None, :]
        idx = h.to(tl.int64)[None, :] * stride_h + w.to(tl.int64)[None, :] * stride_w
        acc += tl.load(base + idx, mask=m, other=0.0).to(ACC)
    total = tl.sum(tl.sum(acc, axis=1), axis=0)
    tl.store(PSUM + n * S + s, total, mask=s < S)


@triton.jit
def _color_coefficients(n, PSUM, S, numel, SAT, CON, BLOCK_S: tl.constexpr, ACC: tl.constexpr):
    """(a, k, contrast, per-sample sum / numel) of sample n, the partial sums reduced in a fixed order."""
    sidx = tl.arange(0, BLOCK_S)
    mean = tl.sum(tl.load(PSUM + n * S + sidx, mask=sidx < S, other=0.0), axis=0) / numel.to(ACC)
    sat = tl.load(SAT + n, mask=n >= 0, other=1.0).to(ACC)
    con = tl.load(CON + n, mask=n >= 0, other=1.0).to(ACC)
    a = con * sat
    return a, con - a, con, mean


@triton.jit(do_not_specialize=["numel"])
def _augment_fwd_kernel(
    X,  # (N, C, H, W) input
    Y,  # (N, C, H, W) output, same strides as X
    BR, SAT, CON,  # (N,) float32 brightness, saturation, contrast factors, or dummies
    SHIFT,  # (N, 2) int32 translation, or a dummy
    CUT,  # (N, 2) int32 cutout corner, or a dummy
    PSUM,  # (N, S) partial sums of x per sample, or a dummy
    C, H, W, S, numel, CUT_H, CUT_W,
    stride_n, stride_c, stride_h, stride_w,
    COLOR: tl.constexpr, TRANS: tl.constexpr, CUTOUT: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_S: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(1)  # samples on axis 1, pixel blocks on axis 0 (CUDA's axes 1 and 2 stop at 65535)
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)
    pmask = p < H * W
    h = p // W
    w = p % W
    c = tl.arange(0, BLOCK_C)
    cmask = c < C
    keep, sh, sw = _keep_and_source(n, h, w, H, W, pmask, SHIFT, CUT, CUT_H, CUT_W, TRANS, CUTOUT)
    sample = n.to(tl.int64) * stride_n + c.to(tl.int64)[:, None] * stride_c
    src = sample + sh.to(tl.int64)[None, :] * stride_h + sw.to(tl.int64)[None, :] * stride_w
    dst = sample + h.to(tl.int64)[None, :] * stride_h + w.to(tl.int64)[None, :] * stride_w
    lmask = cmask[:, None] & keep[None, :]
    x = tl.load(X + src, mask=lmask, other=0.0).to(ACC)
    if COLOR:
        a, k, con, mean = _color_coefficients(n, PSUM, S, numel, SAT, CON, BLOCK_S, ACC)
        m0 = (1.0 - con) * mean + tl.load(BR + n, mask=n >= 0, other=0.0).to(ACC)
        cm = tl.sum(x, axis=0) / C
        y = a * x + (k * cm + m0)[None, :]
        y = tl.where(lmask, y, 0.0)
    else:
        y = x
    tl.store(Y + dst, y.to(Y.dtype.element_ty), mask=cmask[:, None] & pmask[None, :])


@triton.jit(do_not_specialize=["numel"])
def _augment_bwd_kernel(
    DY,  # (N, C, H, W) output gradient, same strides as DX
    DX,  # (N, C, H, W) input gradient
    SAT, CON,  # (N,) float32 saturation and contrast factors, or dummies
    SHIFT,  # (N, 2) int32 translation, or a dummy
    CUT,  # (N, 2) int32 cutout corner, or a dummy
    PSUM,  # (N, S) partial sums of dy over surviving outputs, or a dummy
    C, H, W, S, numel, CUT_H, CUT_W,
    stride_n, stride_c, stride_h, stride_w,
    COLOR: tl.constexpr, TRANS: tl.constexpr, CUTOUT: tl.constexpr,
    BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_S: tl.constexpr, ACC: tl.constexpr,
):
    n = tl.program_id(1)  # as in _augment_fwd_kernel
    p = tl.program_id(0) * BLOCK_P + tl.arange(0, BLOCK_P)  # input pixels (h', w')
    pmask = p < H * W
    hi = p // W
    wi = p % W
    c = tl.arange(0, BLOCK_C)
    cmask = c < C
    # The output pixel that read (h', w'): translation is a bijection on the pixels it keeps.
    ho = hi
    wo = wi
    if TRANS:
        ho = hi - tl.load(SHIFT + 2 * n, mask=n >= 0, other=0)
        wo = wi - tl.load(SHIFT + 2 * n + 1, mask=n >= 0, other=0)
    keep, _, _ = _keep_and_source(n, ho, wo, H, W, pmask, SHIFT, CUT, CUT_H, CUT_W, TRANS, CUTOUT)
    inb = (ho >= 0) & (ho < H) & (wo >= 0) & (wo < W)
    keep = keep & inb
    sample = n.to(tl.int64) * stride_n + c.to(tl.int64)[:, None] * stride_c
    src = sample + ho.to(tl.int64)[None, :] * stride_h + wo.to(tl.int64)[None, :] * stride_w
    dst = sample + hi.to(tl.int64)[None, :] * stride_h + wi.to(tl.int64)[None, :] * stride_w
    lmask = cmask[:, None] & keep[None, :]
    dy = tl.load(DY + src, mask=lmask, other=0.0).to(ACC)
    if COLOR:
        a, k, con, mean_dy = _color_coefficients(n, PSUM, S, numel, SAT, CON, BLOCK_S, ACC)
        cm = tl.sum(dy, axis=0) / C
        dx = a * dy + (k * cm)[None, :]
        dx = tl.where(lmask, dx, 0.0) + (1.0 - con) * mean_dy
    else:
        dx = dy
    tl.store(DX + dst, dx.to(DX.dtype.element_ty), mask=cmask[:, None] & pmask[None, :])


# A program holds all channels of at least MIN_BLOCK_P pixels, and Triton refuses tensors of more than 2**20
# elements (a compiler error, not a clear message): this many channels at most.
MIN_BLOCK_P = 16
MAX_CHANNELS = 2**20 // MIN_BLOCK_P


def _geometry(x: torch.Tensor):
    N, C, H, W = x.shape
    HW = H * W
    check_plane_size(HW)
    if N > MAX_GRID_YZ:
        raise ValueError(f"x has a batch of {N}: the Triton kernels take at most {MAX_GRID_YZ} images a call")
    if C > MAX_CHANNELS:
        raise ValueError(f"x has {C} channels: the Triton DiffAugment kernels take at most {MAX_CHANNELS}")
    block_c = next_pow2(C)
    cap = 4096 if x.is_cuda else 8192
    block_p = max(MIN_BLOCK_P, min(next_pow2(HW), cap // block_c))
    num_warps = 8 if block_c * block_p >= 4096 else 4
    return N, C, H, W, HW, block_c, block_p, num_warps


def _sample_sums(t, shift, cut, cut_size, keep_only, trans, cutout, block_c, block_p, num_warps):
    """Per-sample partial sums of t: (N, S) with S programs per sample."""
    N, C, H, W = t.shape
    HW = H * W
    if t.is_cuda:
        idx = t.device.index if t.device.index is not None else torch.cuda.current_device()
        target = 4 * _sm_count(idx)
        s = max(1, min(MAX_SPLITS, cdiv(HW, block_p), cdiv(target, N)))
    else:
        s = min(2, cdiv(HW, block_p))  # the interpreter: few programs (still > 1 when possible)
    s, chunk = split_chunks(HW, s, block_p)
    psum = _alloc.empty((N, s), device=t.device, dtype=torch_acc_dtype(t.dtype))
    _sample_partial_sum_kernel[(N, s)](
        t, shift, cut, psum, C, H, W, chunk, s, cut_size[0], cut_size[1], *t.stride(),
        KEEP_ONLY=keep_only, TRANS=trans, CUTOUT=cutout,
        BLOCK_C=block_c, BLOCK_P=block_p, ACC=triton_acc_dtype(t.dtype), num_warps=num_warps,
    )
    return psum


@on_tensor_device
def forward(x, brightness, saturation, contrast, shift, cut, cut_h: int, cut_w: int,
            color: bool, translation: bool, cutout: bool):
    """y for a 4-D NCHW or channels_last ``x``; parameters validated, on x's device (see ops/diff_augment.py)."""
    N, C, H, W, HW, block_c, block_p, num_warps = _geometry(x)
    dummy = x.new_empty(1)
    shift = shift if translation else dummy
    cut = cut if cutout else dummy
    if color:
        psum = _sample_sums(x, shift, cut, (cut_h, cut_w), False, translation, cutout, block_c, block_p, num_warps)
    else:
        psum = dummy
    S = psum.shape[1] if color else 1
    y = _alloc.empty_like(x)
    _augment_fwd_kernel[(cdiv(HW, block_p), N)](
        x, y,
        brightness if color else dummy, saturation if color else dummy, contrast if color else dummy,
        shift, cut, psum, C, H, W, S, C * HW, cut_h, cut_w, *x.stride(),
        COLOR=color, TRANS=translation, CUTOUT=cutout,
        BLOCK_C=block_c, BLOCK_P=block_p, BLOCK_S=next_pow2(S), ACC=triton_acc_dtype(x.dtype),
        num_warps=num_warps,
    )
    return y


@on_tensor_device
def backward(dy, brightness, saturation, contrast, shift, cut, cut_h: int, cut_w: int,
             color: bool, translation: bool, cutout: bool):
    """dx for ``dy`` (same strides as the forward's x)."""
    N, C, H, W, HW, block_c, block_p, num_warps = _geometry(dy)
    dummy = dy.new_empty(1)
    shift = shift if translation else dummy
    cut = cut if cutout else dummy
    if color:
        psum = _sample_sums(dy, shift, cut, (cut_h, cut_w), True, translation, cutout, block_c, block_p, num_warps)
    else:
        psum = dummy
    S = psum.shape[1] if color else 1
    dx = _alloc.empty_like(dy)
    _augment_bwd_kernel[(cdiv(HW, block_p), N)](
        dy, dx,
        saturation if color else dummy, contrast if color else dummy,
        shift, cut, psum, C, H, W, S, C * HW, cut_h, cut_w, *dy.stride(),
        COLOR=color, TRANS=translation, CUTOUT=cutout,
        BLOCK_C=block_c, BLOCK_P=block_p, BLOCK_S=next_pow2(S), ACC=triton_acc_dtype(dy.dtype),
        num_warps=num_warps,
    )
    return dx
