"""Triton kernels for the fused GAN + L1 loss terms of CycleGAN (generator and discriminator side).

A loss is a list of terms, each a weighted mean over one tensor (or one pair of tensors):
  KIND 0 (lsgan):   weight * mean((p - target)^2)
  KIND 1 (vanilla): weight * mean(BCE-with-logits(p, target)), computed stably
  L1 pair:          weight * mean(|x - y|)
Tensors are read in their dense storage order (NCHW or channels_last alike; a pair shares strides),
since a mean does not depend on the order of its elements.

Forward: every launch runs on the same G programs; program g reduces a contiguous chunk into
PART[term, g] (already scaled by weight / numel), and a one-program finalize kernel sums each row
in a fixed order, then the rows, into (per-term losses, total). Deterministic: no atomics, a fixed
reduction tree. Up to two L1 pairs that share their second tensor (CycleGAN: rec_a and idt_b
against real_a) are reduced in one launch that reads it once. When a backward will follow, each
pair's forward also writes the signs of x - y at two bits per value (layout: effgan/_signs.py).
Backward: a GAN term recomputes its derivative from the (small) logit map; an L1 pair's gradient
is its sign times a scale, expanded from the saved bits, so the images are not read again. The
upstream gradient is read from device memory (no host sync); dx and dy = -dx come out of one pass.
"""
import struct

import torch
import triton
import triton.language as tl

from effgan import _alloc
from effgan._signs import sign_bytes

from ._launch import _sm_count, cdiv, next_pow2, on_tensor_device, triton_acc_dtype

LSGAN, VANILLA = 0, 1


@triton.jit
def _to_store(v, PTR):
    """v in PTR's element type. A float64 accumulator (any float64 operand) goes to a 16-bit
    gradient through float32: a direct float64 -> bfloat16 cast returns garbage in the interpreter."""
    if PTR.dtype.element_ty != tl.float64 and PTR.dtype.element_ty != tl.float32:
        v = v.to(tl.float32)
    return v.to(PTR.dtype.element_ty)


@triton.jit
def _log1p_small(e):
    # log(1 + e) for e in (0, 1], accurate when e is tiny (no libdevice log1p in the interpreter):
    # the rounding of u = 1 + e cancels in log(u) * e / (u - 1).
    u = 1.0 + e
    d = u - 1.0
    return tl.where(d == 0.0, e, tl.log(u) * (e / tl.where(d == 0.0, 1.0, d)))


@triton.jit
def _gan_value(x, target, KIND: tl.constexpr):
    if KIND == 0:
        d = x - target
        v = d * d
    else:
        # max(x, 0) - x * t + log(1 + exp(-|x|)): no overflow for any logit.
        v = tl.maximum(x, 0.0) - x * target + _log1p_small(tl.exp(-tl.abs(x)))
    return v


@triton.jit
def _gan_grad(x, target, KIND: tl.constexpr):
    """d(term value)/dx, before the weight / numel scale."""
    if KIND == 0:
        g = 2.0 * (x - target)
    else:
        e = tl.exp(-tl.abs(x))
        sig = tl.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        g = sig - target
    return g


@triton.jit
def _weight(W_HI, W_LO, numel, ACC: tl.constexpr):
    return (tl.cast(W_HI, ACC) + tl.cast(W_LO, ACC)) / numel.to(ACC)


@triton.jit
def _sign_tile(base, numel, BLOCK: tl.constexpr):
    """The values base .. base + BLOCK (base a multiple of 8) as a (BLOCK // 8, 8) tile, one sign
    group a row: (groups, value indices, value mask, group mask, lane indices)."""
    lanes = tl.arange(0, 8)
    group = base // 8 + tl.arange(0, BLOCK // 8).to(tl.int64)
    idx = group[:, None] * 8 + lanes[None, :]
    return group, idx, idx < numel, group < (numel + 7) // 8, lanes


@triton.jit
def _pack_signs(SIGNS, d, group, gmask, lanes):
    """Store the signs of d, a (BLOCK // 8, 8) tile whose row r holds the values of sign group
    group[r]: byte 2g gets bit l where d > 0, byte 2g + 1 where d < 0 (effgan/_signs.py)."""
    bit = (1 << lanes)[None, :]
    pos = tl.sum(tl.where(d > 0, bit, 0), axis=1)
    neg = tl.sum(tl.where(d < 0, bit, 0), axis=1)
    tl.store(SIGNS + 2 * group, pos.to(tl.uint8), mask=gmask)
    tl.store(SIGNS + 2 * group + 1, neg.to(tl.uint8), mask=gmask)


# Scalars used in masks or casts stay runtime values (Triton would turn an argument equal to 1 into a
# constant otherwise).
@triton.jit(do_not_specialize=["numel", "CHUNK", "ROW", "G"])
def _gan_fwd_kernel(
    X,  # (numel,) logits, dense storage order
    PART,  # (T, G) partial losses, accumulation dtype; this launch fills row ROW
    numel, CHUNK, ROW, G,
    T_HI, T_LO, W_HI, W_LO,  # target and weight, each as a float32 pair (hi + lo) for float64 accuracy
    KIND: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    target = tl.cast(T_HI, ACC) + tl.cast(T_LO, ACC)
    start = pid.to(tl.int64) * CHUNK
    acc = tl.zeros((BLOCK,), ACC)
    for off in range(0, CHUNK, BLOCK):
        idx = start + off + tl.arange(0, BLOCK).to(tl.int64)
        m = idx < numel
        x = tl.load(X + idx, mask=m, other=0.0).to(ACC)
        acc += tl.where(m, _gan_value(x, target, KIND), 0.0)
    tl.store(PART + ROW * G + pid, tl.sum(acc, axis=0) * _weight(W_HI, W_LO, numel, ACC), mask=pid < G)


@triton.jit(do_not_specialize=["numel", "CHUNK", "ROW1", "ROW2", "G"])
def _l1_fwd_kernel(
    X1, X2,  # (numel,) first tensors of one or two pairs (X2 a dummy unless TWO), dense storage order
    Y,  # (numel,) their shared second tensor, same strides
    PART,  # (T, G) partial losses; this launch fills rows ROW1 (and ROW2)
    SIGNS1, SIGNS2,  # (2 * cdiv(numel, 8),) uint8 signs of X1 - Y and X2 - Y, or dummies
    numel, CHUNK, ROW1, ROW2, G,
    W1_HI, W1_LO, W2_HI, W2_LO,  # weights as float32 (hi, lo) pairs
    TWO: tl.constexpr, SAVE_SIGNS: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    start = pid.to(tl.int64) * CHUNK  # CHUNK is a multiple of BLOCK, hence of 8
    acc1 = tl.zeros((BLOCK // 8, 8), ACC)
    acc2 = tl.zeros((BLOCK // 8, 8), ACC)
    for off in range(0, CHUNK, BLOCK):
        group, idx, m, gmask, lanes = _sign_tile(start + off, numel, BLOCK)
        # Masked values read 0 from both tensors: d = 0, no sign bits and nothing summed.
        y = tl.load(Y + idx, mask=m, other=0.0).to(ACC)
        d1 = tl.load(X1 + idx, mask=m, other=0.0).to(ACC) - y
        acc1 += tl.abs(d1)
        if SAVE_SIGNS:
            _pack_signs(SIGNS1, d1, group, gmask, lanes)
        if TWO:
            d2 = tl.load(X2 + idx, mask=m, other=0.0).to(ACC) - y
            acc2 += tl.abs(d2)
            if SAVE_SIGNS:
                _pack_signs(SIGNS2, d2, group, gmask, lanes)
    live = pid < G
    tl.store(PART + ROW1 * G + pid, tl.sum(tl.sum(acc1, axis=1), axis=0) * _weight(W1_HI, W1_LO, numel, ACC),
             mask=live)
    if TWO:
        tl.store(PART + ROW2 * G + pid, tl.sum(tl.sum(acc2, axis=1), axis=0) * _weight(W2_HI, W2_LO, numel, ACC),
                 mask=live)


@triton.jit(do_not_specialize=["T", "G"])
def _finalize_kernel(
    PART,  # (T, G) partial losses
    OUT,  # (T + 1,) per-term losses, then their total
    T, G,
    BLOCK_T: tl.constexpr, BLOCK_G: tl.constexpr, ACC: tl.constexpr,
):
    rows = tl.arange(0, BLOCK_T)
    rmask = rows < T
    acc = tl.zeros((BLOCK_T, BLOCK_G), ACC)
    for g0 in range(0, G, BLOCK_G):
        cols = g0 + tl.arange(0, BLOCK_G)
        m = rmask[:, None] & (cols[None, :] < G)
        acc += tl.load(PART + rows[:, None] * G + cols[None, :], mask=m, other=0.0)
    per_term = tl.sum(acc, axis=1)
    tl.store(OUT + rows, per_term, mask=rmask)
    total = tl.sum(tl.where(rmask, per_term, 0.0), axis=0)
    tl.store(OUT + T, total, mask=T >= 0)


@triton.jit
def _upstream_scale(DLOSS, ROW, T, W_HI, W_LO, numel, ACC: tl.constexpr):
    # The term enters the output twice: as itself and inside the total.
    g = tl.load(DLOSS + ROW, mask=ROW >= 0, other=0.0).to(ACC) + tl.load(DLOSS + T, mask=T >= 0, other=0.0).to(ACC)
    return g * _weight(W_HI, W_LO, numel, ACC)


@triton.jit(do_not_specialize=["numel", "CHUNK", "ROW", "T"])
def _gan_bwd_kernel(
    X,  # (numel,) logits
    DLOSS,  # (T + 1,) upstream gradient of (per-term losses, total)
    DX,  # (numel,) gradient for X (same strides)
    numel, CHUNK, ROW, T,
    T_HI, T_LO, W_HI, W_LO,  # target and weight as float32 (hi, lo) pairs
    KIND: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    target = tl.cast(T_HI, ACC) + tl.cast(T_LO, ACC)
    scale = _upstream_scale(DLOSS, ROW, T, W_HI, W_LO, numel, ACC)
    start = pid.to(tl.int64) * CHUNK
    for off in range(0, CHUNK, BLOCK):
        idx = start + off + tl.arange(0, BLOCK).to(tl.int64)
        m = idx < numel
        x = tl.load(X + idx, mask=m, other=0.0).to(ACC)
        tl.store(DX + idx, _to_store(_gan_grad(x, target, KIND) * scale, DX), mask=m)


@triton.jit(do_not_specialize=["numel", "CHUNK", "ROW", "T"])
def _l1_bwd_kernel(
    SIGNS,  # (2 * cdiv(numel, 8),) uint8 signs of x - y from the forward
    DLOSS,  # (T + 1,) upstream gradient of (per-term losses, total)
    DX, DY,  # (numel,) gradients for x and y (x's strides), or dummies
    numel, CHUNK, ROW, T,
    W_HI, W_LO,  # weight as a float32 (hi, lo) pair
    HAS_DX: tl.constexpr, HAS_DY: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    scale = _upstream_scale(DLOSS, ROW, T, W_HI, W_LO, numel, ACC)
    start = pid.to(tl.int64) * CHUNK
    for off in range(0, CHUNK, BLOCK):
        group, idx, m, gmask, lanes = _sign_tile(start + off, numel, BLOCK)
        pos = tl.load(SIGNS + 2 * group, mask=gmask, other=0).to(tl.int32)
        neg = tl.load(SIGNS + 2 * group + 1, mask=gmask, other=0).to(tl.int32)
        is_pos = ((pos[:, None] >> lanes[None, :]) & 1) != 0
        is_neg = ((neg[:, None] >> lanes[None, :]) & 1) != 0
        # sign(0) = 0, as torch's L1 gradient.
        dx = tl.where(is_pos, scale, tl.where(is_neg, -scale, 0.0))
        if HAS_DX:
            tl.store(DX + idx, _to_store(dx, DX), mask=m)
        if HAS_DY:
            tl.store(DY + idx, _to_store(-dx, DY), mask=m)


# Elements per loop step: 8 per thread at num_warps=4, so loads vectorise on the GPU.
BLOCK = 1024


def _programs(numel: int, device: torch.device, block: int) -> int:
    n = cdiv(numel, block)
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        return max(1, min(n, 4 * _sm_count(idx)))
    # The interpreter runs programs one by one; a few still exercise the partial sums.
    return max(1, min(n, 4))


def _split(v: float) -> tuple[float, float]:
    """v as hi + lo, both float32-representable: scalar kernel arguments are float32, and the pair
    keeps ~48 bits for float64 kernels. Runtime values (not constexpr), so annealed lambdas or a
    changed label target never recompile a kernel."""
    hi = struct.unpack("f", struct.pack("f", v))[0]
    return hi, float(v - hi)


def _chunk(numel: int, programs: int, block: int) -> int:
    return cdiv(cdiv(numel, programs), block) * block


def _acc_dtype(tensors) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    return (a.data_ptr() == b.data_ptr() and a.dtype == b.dtype and a.shape == b.shape
            and a.stride() == b.stride())


def _l1_groups(ys) -> list[list[int]]:
    """Pair indices grouped by a shared second tensor, at most two per group, in order."""
    groups: list[list[int]] = []
    for i, y in enumerate(ys):
        for g in groups:
            if len(g) < 2 and _same_tensor(ys[g[0]], y):
                g.append(i)
                break
        else:
            groups.append([i])
    return groups


@on_tensor_device
def forward(preds, targets, pred_weights, xs, ys, l1_weights, gan_mode: int, save_signs: bool):
    """[losses (T + 1,): the T weighted term losses (GAN terms, then L1 pairs) and their total],
    followed, with save_signs, by each pair's signs of x - y (effgan/_signs.py).

    Operands are validated and dense; each pair (xs[i], ys[i]) shares strides.
    """
    tensors = list(preds) + list(xs)
    device = tensors[0].device
    acc = _acc_dtype(tensors)
    ACC = triton_acc_dtype(acc)
    P, T = len(preds), len(tensors)
    G = max(_programs(t.numel(), device, BLOCK) for t in tensors)
    part = _alloc.empty((T, G), device=device, dtype=acc)
    out = _alloc.empty((T + 1,), device=device, dtype=acc)
    signs = [_alloc.empty((sign_bytes(x.numel()),), device=device, dtype=torch.uint8) for x in xs] if save_signs \
        else []
    for row, (p, target, weight) in enumerate(zip(preds, targets, pred_weights)):
        _gan_fwd_kernel[(G,)](
            p, part, p.numel(), _chunk(p.numel(), G, BLOCK), row, G, *_split(float(target)), *_split(float(weight)),
            KIND=gan_mode, BLOCK=BLOCK, ACC=ACC, num_warps=4,
        )
    for group in _l1_groups(ys):
        i, j = group[0], group[-1]  # j == i for a lone pair
        y = ys[i]
        _l1_fwd_kernel[(G,)](
            xs[i], xs[j], y, part, signs[i] if signs else y, signs[j] if signs else y,
            y.numel(), _chunk(y.numel(), G, BLOCK), P + i, P + j, G,
            *_split(float(l1_weights[i])), *_split(float(l1_weights[j])),
            TWO=len(group) == 2, SAVE_SIGNS=save_signs, BLOCK=BLOCK, ACC=ACC, num_warps=4,
        )
    _finalize_kernel[(1,)](
        part, out, T, G,
        BLOCK_T=next_pow2(T), BLOCK_G=min(next_pow2(G), 256), ACC=ACC, num_warps=4,
    )
    return [out, *signs]


@on_tensor_device
def backward(dloss, preds, targets, pred_weights, xs, signs, l1_weights, gan_mode: int,
             need_pred, need_x, need_y):
    """Gradients of the needed inputs, in order: preds (where needed), then per pair dx, dy (where needed).
    A pair's gradients come from its forward signs; ``xs`` give only their shape, strides and dtype."""
    tensors = list(preds) + list(xs)
    device = tensors[0].device
    ACC = triton_acc_dtype(_acc_dtype(tensors))
    P, T = len(preds), len(tensors)

    def grid(numel):
        programs = cdiv(numel, BLOCK) if device.type == "cuda" else _programs(numel, device, BLOCK)
        return programs, _chunk(numel, programs, BLOCK)

    grads = []
    for row, (p, target, weight, needed) in enumerate(zip(preds, targets, pred_weights, need_pred)):
        if not needed:
            continue
        dp = _alloc.empty_like(p)
        programs, chunk = grid(p.numel())
        _gan_bwd_kernel[(programs,)](
            p, dloss, dp, p.numel(), chunk, row, T, *_split(float(target)), *_split(float(weight)),
            KIND=gan_mode, BLOCK=BLOCK, ACC=ACC, num_warps=4,
        )
        grads.append(dp)
    for i, (x, weight, has_dx, has_dy) in enumerate(zip(xs, l1_weights, need_x, need_y)):
        if not (has_dx or has_dy):
            continue
        dx = _alloc.empty_like(x) if has_dx else None
        dy = _alloc.empty_like(x) if has_dy else None  # y has the layout of x
        programs, chunk = grid(x.numel())
        _l1_bwd_kernel[(programs,)](
            signs[i], dloss, dx if dx is not None else x, dy if dy is not None else x,
            x.numel(), chunk, P + i, T, *_split(float(weight)),
            HAS_DX=has_dx, HAS_DY=has_dy, BLOCK=BLOCK, ACC=ACC, num_warps=4,
        )
        grads += [g for g in (dx, dy) if g is not None]
    return grads
