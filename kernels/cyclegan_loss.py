"""Triton kernels for the fused GAN + L1 loss terms of CycleGAN (generator and discriminator side).

A loss is a list of terms, each a weighted mean over one tensor (or one pair of tensors):
  KIND 0 (lsgan):   weight * mean((p - target)^2)
  KIND 1 (vanilla): weight * mean(BCE-with-logits(p, target)), computed stably
  KIND 2 (l1):      weight * mean(|x - y|)
Tensors are read in their dense storage order (NCHW or channels_last alike; a pair shares strides),
since a mean does not depend on the order of its elements.

Forward: one pass per term. Every term is launched on the same G programs; program g reduces a
contiguous chunk of the term into PART[term, g] (already scaled by weight / numel), and a one-program
finalize kernel sums each row in a fixed order, then the rows, into (per-term losses, total).
Deterministic: no atomics, a fixed reduction tree.
Backward: one pass per term that recomputes the elementwise derivative from the inputs (rather than
storing it in the forward: the same memory traffic, and no full-size buffer held between the passes)
and writes it scaled by the upstream gradient, read from device memory (no host sync); for an L1 pair
both dx and dy = -dx come out of the same pass.
"""
import struct

import torch
import triton
import triton.language as tl

from effgan import _alloc

from ._launch import _sm_count, triton_acc_dtype

LSGAN, VANILLA, L1 = 0, 1, 2


@triton.jit
def _log1p_small(e):
    # log(1 + e) for e in (0, 1], accurate when e is tiny (no libdevice log1p in the interpreter):
    # the rounding of u = 1 + e cancels in log(u) * e / (u - 1).
    u = 1.0 + e
    d = u - 1.0
    return tl.where(d == 0.0, e, tl.log(u) * (e / tl.where(d == 0.0, 1.0, d)))


@triton.jit
def _term_value(x, y, target, KIND: tl.constexpr):
    if KIND == 0:
        d = x - target
        v = d * d
    elif KIND == 1:
        # max(x, 0) - x * t + log(1 + exp(-|x|)): no overflow for any logit.
        v = tl.maximum(x, 0.0) - x * target + _log1p_small(tl.exp(-tl.abs(x)))
    else:
        v = tl.abs(x - y)
    return v


@triton.jit
def _term_grad(x, y, target, KIND: tl.constexpr):
    """d(term value)/dx, before the weight / numel scale."""
    if KIND == 0:
        g = 2.0 * (x - target)
    elif KIND == 1:
        e = tl.exp(-tl.abs(x))
        sig = tl.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        g = sig - target
    else:
        d = x - y
        # sign(0) = 0, as torch's L1 gradient.
        g = tl.where(d > 0, 1.0, tl.where(d < 0, -1.0, 0.0))
    return g


# Scalars used in masks or casts stay runtime values (Triton would turn an argument equal to 1 into a
# constant otherwise).
@triton.jit(do_not_specialize=["numel", "CHUNK", "G"])
def _term_fwd_kernel(
    X,  # (numel,) logits, or the first tensor of an L1 pair, dense storage order
    Y,  # (numel,) second tensor of an L1 pair (same strides as X), or a dummy
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
        if KIND == 2:
            y = tl.load(Y + idx, mask=m, other=0.0).to(ACC)
        else:
            y = x
        acc += tl.where(m, _term_value(x, y, target, KIND), 0.0)
    scale = (tl.cast(W_HI, ACC) + tl.cast(W_LO, ACC)) / numel.to(ACC)
    tl.store(PART + ROW * G + pid, tl.sum(acc, axis=0) * scale, mask=pid < G)


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


@triton.jit(do_not_specialize=["numel", "CHUNK", "ROW", "T"])
def _term_bwd_kernel(
    X,  # (numel,) logits or first tensor of an L1 pair
    Y,  # (numel,) second tensor of an L1 pair, or a dummy
    DLOSS,  # (T + 1,) upstream gradient of (per-term losses, total)
    DX,  # (numel,) gradient for X (same strides), or a dummy
    DY,  # (numel,) gradient for Y (same strides), or a dummy
    numel, CHUNK, ROW, T,
    T_HI, T_LO, W_HI, W_LO,  # target and weight as float32 (hi, lo) pairs
    KIND: tl.constexpr,
    HAS_DX: tl.constexpr, HAS_DY: tl.constexpr, BLOCK: tl.constexpr, ACC: tl.constexpr,
):
    pid = tl.program_id(0)
    # The term enters the output twice: as itself and inside the total.
    g = tl.load(DLOSS + ROW, mask=ROW >= 0, other=0.0).to(ACC) + tl.load(DLOSS + T, mask=T >= 0, other=0.0).to(ACC)
    target = tl.cast(T_HI, ACC) + tl.cast(T_LO, ACC)
    scale = g * ((tl.cast(W_HI, ACC) + tl.cast(W_LO, ACC)) / numel.to(ACC))
    start = pid.to(tl.int64) * CHUNK
    for off in range(0, CHUNK, BLOCK):
        idx = start + off + tl.arange(0, BLOCK).to(tl.int64)
        m = idx < numel
        x = tl.load(X + idx, mask=m, other=0.0).to(ACC)
        if KIND == 2:
            y = tl.load(Y + idx, mask=m, other=0.0).to(ACC)
        else:
            y = x
        dx = _term_grad(x, y, target, KIND) * scale
        if HAS_DX:
            tl.store(DX + idx, dx.to(DX.dtype.element_ty), mask=m)
        if HAS_DY:
            tl.store(DY + idx, (-dx).to(DY.dtype.element_ty), mask=m)


# Elements per loop step: 8 per thread at num_warps=4, so loads vectorise on the GPU.
BLOCK = 1024


def _programs(numel: int, device: torch.device, block: int) -> int:
    n = triton.cdiv(numel, block)
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
    return triton.cdiv(triton.cdiv(numel, programs), block) * block


def _acc_dtype(tensors) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _terms(preds, targets, pred_weights, gan_mode, xs, ys, l1_weights):
    """(kind, x, y or None, target, weight) per term: GAN terms first, then L1 pairs."""
    terms = [(gan_mode, p, None, float(t), float(w)) for p, t, w in zip(preds, targets, pred_weights)]
    terms += [(L1, x, y, 0.0, float(w)) for x, y, w in zip(xs, ys, l1_weights)]
    return terms


def forward(preds, targets, pred_weights, xs, ys, l1_weights, gan_mode: int):
    """(T + 1,) tensor: the T weighted term losses (GAN terms, then L1 pairs) and their total.

    Operands are validated and dense; each pair (xs[i], ys[i]) shares strides.
    """
    terms = _terms(preds, targets, pred_weights, gan_mode, xs, ys, l1_weights)
    device = terms[0][1].device
    acc = _acc_dtype([t[1] for t in terms])
    ACC = triton_acc_dtype(acc)
    T = len(terms)
    G = max(_programs(t[1].numel(), device, BLOCK) for t in terms)
    part = _alloc.empty((T, G), device=device, dtype=acc)
    out = _alloc.empty((T + 1,), device=device, dtype=acc)
    for row, (kind, x, y, target, weight) in enumerate(terms):
        block = BLOCK
        chunk = _chunk(x.numel(), G, block)
        _term_fwd_kernel[(G,)](
            x, y if y is not None else x, part, x.numel(), chunk, row, G, *_split(target), *_split(weight),
            KIND=kind, BLOCK=block, ACC=ACC, num_warps=4,
        )
    _finalize_kernel[(1,)](
        part, out, T, G,
        BLOCK_T=triton.next_power_of_2(T), BLOCK_G=min(triton.next_power_of_2(G), 256), ACC=ACC, num_warps=4,
    )
    return out


def backward(dloss, preds, targets, pred_weights, xs, ys, l1_weights, gan_mode: int,
             need_pred, need_x, need_y):
    """Gradients of the needed inputs, in order: preds (where needed), then per pair dx, dy (where needed)."""
    terms = _terms(preds, targets, pred_weights, gan_mode, xs, ys, l1_weights)
    device = terms[0][1].device
    ACC = triton_acc_dtype(_acc_dtype([t[1] for t in terms]))
    needs = [(n, False) for n in need_pred] + list(zip(need_x, need_y))
    T = len(terms)
    grads = []
    for row, ((kind, x, y, target, weight), (has_dx, has_dy)) in enumerate(zip(terms, needs)):
        if not (has_dx or has_dy):
            continue
        dx = _alloc.empty_like(x) if has_dx else None
        dy = _alloc.empty_like(y) if has_dy else None
        block = BLOCK
        programs = triton.cdiv(x.numel(), block) if device.type == "cuda" else _programs(x.numel(), device, block)
        chunk = _chunk(x.numel(), programs, block)
        _term_bwd_kernel[(programs,)](
            x, y if y is not None else x, dloss,
            dx if dx is not None else x, dy if dy is not None else x,
            x.numel(), chunk, row, T, *_split(target), *_split(weight),
            KIND=kind, HAS_DX=has_dx, HAS_DY=has_dy,
            BLOCK=block, ACC=ACC, num_warps=4,
        )
        grads += [g for g in (dx, dy) if g is not None]
    return grads
