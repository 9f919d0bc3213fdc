"""CycleGAN losses fused: the generator objective (GAN + cycle + identity terms) and the discriminator's.

Naming and defaults follow the reference CycleGAN: G_A maps A to B, G_B maps B to A, D_A judges
domain B (its input is fake_B = G_A(real_A)), D_B judges domain A. The generator objective is

    loss_G_A = gan(D_A(G_A(real_A)), target_real)            loss_G_B = gan(D_B(G_B(real_B)), target_real)
    cycle_A  = lambda_a * |rec_a - real_a|.mean()            cycle_B  = lambda_b * |rec_b - real_b|.mean()
    idt_A    = lambda_b * lambda_identity * |idt_a - real_b|.mean()   (idt_a = G_A(real_B))
    idt_B    = lambda_a * lambda_identity * |idt_b - real_a|.mean()   (idt_b = G_B(real_A))
    total    = loss_G_A + loss_G_B + cycle_A + cycle_B + idt_A + idt_B

with ``gan`` the mean squared error against the target ("lsgan") or binary cross-entropy with
logits ("vanilla"). ``target_real < 1`` is one-sided label smoothing. A discriminator with several
heads (a list/tuple of logit maps) contributes the mean of its heads' losses, so the loss keeps the
scale of a single-head discriminator and the lambdas keep their meaning.

Layers: ``kernels/cyclegan_loss.py`` (Triton) and ``csrc/cyclegan_loss.cpp`` (CPU), this file
(reference, torch.library ops, autograd, functional forms), ``effgan/nn/losses.py``.
Bytes: the forward reads each image once (real_a and real_b once for both pairs they appear in)
and, when a backward can follow, keeps the signs of every L1 difference at two bits per value
(``effgan/_signs.py``); the backward writes the gradients from those bits and the small logit
maps, without reading the images again: 6 image reads and 4 writes (+1/4 image of signs) for the
whole objective, where recomputing the gradients from the inputs would take 6 + 10.
The fused losses are accumulated and returned in float32 (float64 when an input is float64), as
autocast does for torch's own losses; gradients come back in each input's dtype.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Union

import torch
import torch.nn.functional as F

from effgan._backend import launcher_module, resolve_impl
from effgan._signs import sign_bytes
from effgan.ops._checks import check_finite, check_tensor, like_layout
from effgan.ops._double_backward import forbid_double_backward
from effgan.ops._eager import FusedOp, call_backward, save_for_backward

OP = "cyclegan_loss"
GAN_MODES = {"lsgan": 0, "vanilla": 1}

Preds = Union[torch.Tensor, Sequence[torch.Tensor]]


class CycleGANLosses(NamedTuple):
    """``total`` is differentiable; the parts are detached 0-d tensors, weighted as they enter it."""

    total: torch.Tensor
    loss_G_A: torch.Tensor
    loss_G_B: torch.Tensor
    cycle_A: torch.Tensor
    cycle_B: torch.Tensor
    idt_A: torch.Tensor
    idt_B: torch.Tensor


# ----------------------------------------------------------------------------------------------
# Reference: the eager composite of torch's losses.


def _gan_ref(preds: list[torch.Tensor], target: float, gan_mode: str) -> torch.Tensor:
    losses = []
    for p in preds:
        t = torch.full_like(p, target)
        if gan_mode == "lsgan":
            losses.append(F.mse_loss(p, t))
        else:
            losses.append(F.binary_cross_entropy_with_logits(p, t))
    return losses[0] if len(losses) == 1 else torch.stack(losses).mean()


def cyclegan_generator_loss_ref(
    pred_fake_b: Preds,
    pred_fake_a: Preds,
    rec_a: torch.Tensor,
    real_a: torch.Tensor,
    rec_b: torch.Tensor,
    real_b: torch.Tensor,
    idt_a: Optional[torch.Tensor] = None,
    idt_b: Optional[torch.Tensor] = None,
    *,
    gan_mode: str = "lsgan",
    lambda_a: float = 10.0,
    lambda_b: float = 10.0,
    lambda_identity: float = 0.5,
    target_real: float = 1.0,
) -> CycleGANLosses:
    """The reference CycleGAN generator objective from torch's MSE / BCE-with-logits / L1 losses."""
    loss_G_A = _gan_ref(_as_list(pred_fake_b), target_real, gan_mode)
    loss_G_B = _gan_ref(_as_list(pred_fake_a), target_real, gan_mode)
    cycle_A = F.l1_loss(rec_a, real_a) * lambda_a
    cycle_B = F.l1_loss(rec_b, real_b) * lambda_b
    total = loss_G_A + loss_G_B + cycle_A + cycle_B
    if idt_a is not None:
        idt_A = F.l1_loss(idt_a, real_b) * (lambda_b * lambda_identity)
        idt_B = F.l1_loss(idt_b, real_a) * (lambda_a * lambda_identity)
        total = total + idt_A + idt_B
    else:
        idt_A = idt_B = torch.zeros((), dtype=total.dtype, device=total.device)
    parts = [t.detach() for t in (loss_G_A, loss_G_B, cycle_A, cycle_B, idt_A, idt_B)]
    return CycleGANLosses(total, *parts)


def gan_loss_d_ref(
    pred_real: Preds, pred_fake: Preds, *, gan_mode: str = "lsgan", target_real: float = 1.0
) -> torch.Tensor:
    """0.5 * (gan(pred_real, target_real) + gan(pred_fake, 0)), the reference discriminator loss."""
    return 0.5 * (_gan_ref(_as_list(pred_real), target_real, gan_mode) + _gan_ref(_as_list(pred_fake), 0.0, gan_mode))


# ----------------------------------------------------------------------------------------------
# torch.library ops: a generic list of weighted GAN terms and L1 pairs.


def _kernels(impl: str):
    return launcher_module(impl, OP)


def _acc_dtype(tensors: list[torch.Tensor]) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _fwd_impl(
    preds: list[torch.Tensor],
    targets: list[float],
    pred_weights: list[float],
    xs: list[torch.Tensor],
    ys: list[torch.Tensor],
    l1_weights: list[float],
    gan_mode: int,
    save_signs: bool,
    impl: str,
) -> list[torch.Tensor]:
    return _kernels(impl).forward(preds, targets, pred_weights, xs, ys, l1_weights, gan_mode, save_signs)


_fwd = torch.library.custom_op("effgan::cyclegan_loss_fwd", _fwd_impl, mutates_args=())


@_fwd.register_fake
def _fwd_fake(preds, targets, pred_weights, xs, ys, l1_weights, gan_mode, save_signs, impl):
    tensors = list(preds) + list(xs)
    losses = tensors[0].new_empty((len(preds) + len(xs) + 1,), dtype=_acc_dtype(tensors))
    signs = [x.new_empty((sign_bytes(x.numel()),), dtype=torch.uint8) for x in xs] if save_signs else []
    return [losses, *signs]


def _bwd_impl(
    dloss: torch.Tensor,
    preds: list[torch.Tensor],
    targets: list[float],
    pred_weights: list[float],
    xs: list[torch.Tensor],
    signs: list[torch.Tensor],
    l1_weights: list[float],
    gan_mode: int,
    need_pred: list[bool],
    need_x: list[bool],
    need_y: list[bool],
    impl: str,
) -> list[torch.Tensor]:
    return _kernels(impl).backward(dloss, preds, targets, pred_weights, xs, signs, l1_weights, gan_mode,
                                   need_pred, need_x, need_y)


_bwd = torch.library.custom_op("effgan::cyclegan_loss_bwd", _bwd_impl, mutates_args=())


@_bwd.register_fake
def _bwd_fake(dloss, preds, targets, pred_weights, xs, signs, l1_weights, gan_mode, need_pred, need_x, need_y, impl):
    out = [torch.empty_like(p) for p, n in zip(preds, need_pred) if n]
    for x, nx, ny in zip(xs, need_x, need_y):
        out += [torch.empty_like(x)] if nx else []
        out += [torch.empty_like(x)] if ny else []  # y has the shape, dtype and strides of x
    return out


def _setup_context(ctx, inputs, output):
    preds, targets, pred_weights, xs, ys, l1_weights, gan_mode, save_signs, impl = inputs
    need = ([p.requires_grad for p in preds], [x.requires_grad for x in xs], [y.requires_grad for y in ys])
    signs = output[1:]
    if xs and (any(need[1]) or any(need[2])) and not signs:
        raise RuntimeError("effgan.cyclegan_loss: the forward ran with save_signs=False, so its L1 terms have "
                           "no backward; call it with save_signs=True when a gradient is needed")
    # xs are saved for their layout only: the pairs' gradients come from the signs.
    save_for_backward(ctx, *preds, *xs, *signs)
    ctx.counts = (len(preds), len(xs))
    ctx.need = need
    ctx.args = (targets, pred_weights, l1_weights, gan_mode, impl)


def _backward(ctx, output_grads):
    dloss = output_grads[0]  # the signs carry no gradient
    n_pred, n_pair = ctx.counts
    saved = ctx.saved_tensors
    preds, xs, signs = saved[:n_pred], saved[n_pred:n_pred + n_pair], saved[n_pred + n_pair:]
    need_pred, need_x, need_y = ctx.need
    targets, pred_weights, l1_weights, gan_mode, impl = ctx.args
    grads = iter(call_backward(_bwd, _bwd_impl, dloss.contiguous(), list(preds), targets, pred_weights, list(xs),
                               list(signs), l1_weights, gan_mode, need_pred, need_x, need_y, impl))
    dpreds = [next(grads) if n else None for n in need_pred]
    dxs, dys = [], []
    for x, nx, ny in zip(xs, need_x, need_y):
        dxs.append(next(grads) if nx else None)
        dys.append(next(grads) if ny else None)
    # A list of floats is one leaf for autograd's structure check, but an empty list is an empty node.
    no_grad = [] if not l1_weights else None
    return dpreds, None, None, dxs, dys, no_grad, None, None, None


torch.library.register_autograd("effgan::cyclegan_loss_fwd", _backward, setup_context=_setup_context)
_cyclegan_loss = FusedOp(OP, _fwd, _fwd_impl, _setup_context, _backward, list_args=(0, 3, 4), list_output=True)
forbid_double_backward(_bwd, OP)


# ----------------------------------------------------------------------------------------------
# Argument checks and the public functional forms.


def _as_list(preds: Preds) -> list[torch.Tensor]:
    return list(preds) if isinstance(preds, (list, tuple)) else [preds]


def _check_preds(preds: object, name: str, device: Optional[torch.device]) -> list[torch.Tensor]:
    if isinstance(preds, (list, tuple)):
        if len(preds) == 0:
            raise ValueError(f"{name} must be a tensor or a non-empty list/tuple of tensors")
        return [check_tensor(p, f"{name}[{i}]", device=device) for i, p in enumerate(preds)]
    return [check_tensor(preds, name, device=device)]


def _check_pair(x: object, name_x: str, y: torch.Tensor, name_y: str, device: torch.device) -> torch.Tensor:
    x = check_tensor(x, name_x, device=device)
    if x.shape != y.shape:
        raise ValueError(f"{name_x} must have the shape of {name_y} {tuple(y.shape)}, got {tuple(x.shape)}")
    if x.dtype != y.dtype:
        raise TypeError(f"{name_x} has dtype {x.dtype} but {name_y} has {y.dtype}; pass tensors of one dtype")
    return x


def _check_gan_mode(gan_mode: object) -> int:
    if not isinstance(gan_mode, str) or gan_mode not in GAN_MODES:
        raise ValueError(f"gan_mode must be one of {tuple(GAN_MODES)}, got {gan_mode!r}")
    return GAN_MODES[gan_mode]


def _check_target(target_real: object, gan_mode: str) -> float:
    t = check_finite(target_real, "target_real")
    if gan_mode == "vanilla" and not 0.0 <= t <= 1.0:
        raise ValueError(f"target_real must lie in [0, 1] for gan_mode='vanilla', got {t}")
    return t


def _check_weight(value: object, name: str) -> float:
    v = check_finite(value, name)
    if v < 0:
        raise ValueError(f"{name} must be >= 0, got {v}")
    return v


def _dense(t: torch.Tensor) -> torch.Tensor:
    """t itself when its elements fill its storage densely (NCHW, channels_last, ...), else a copy."""
    if t.is_contiguous() or (t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last)):
        return t
    return t.contiguous()


def _pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = _dense(x)
    return x, like_layout(y, x)


def cyclegan_generator_loss(
    pred_fake_b: Preds,
    pred_fake_a: Preds,
    rec_a: torch.Tensor,
    real_a: torch.Tensor,
    rec_b: torch.Tensor,
    real_b: torch.Tensor,
    idt_a: Optional[torch.Tensor] = None,
    idt_b: Optional[torch.Tensor] = None,
    *,
    gan_mode: str = "lsgan",
    lambda_a: float = 10.0,
    lambda_b: float = 10.0,
    lambda_identity: float = 0.5,
    target_real: float = 1.0,
    impl: str = "auto",
) -> CycleGANLosses:
    """The CycleGAN generator objective in one pass over each tensor (see the module docstring).

    ``pred_fake_b`` = D_A(G_A(real_A)) and ``pred_fake_a`` = D_B(G_B(real_B)) are logit maps of any
    shape, or lists/tuples of maps for multi-head discriminators (their losses are averaged).
    ``rec_a`` = G_B(G_A(real_A)), ``rec_b`` = G_A(G_B(real_B)); the optional identity outputs
    ``idt_a`` = G_A(real_B) and ``idt_b`` = G_B(real_A) are given together or not at all (without
    them idt_A = idt_B = 0, as the reference with lambda_identity = 0). Returns
    :class:`CycleGANLosses`; gradients reach every input that requires one, ``real_*`` included.
    """
    real_a = check_tensor(real_a, "real_a")
    device = real_a.device
    real_b = check_tensor(real_b, "real_b", device=device)
    rec_a = _check_pair(rec_a, "rec_a", real_a, "real_a", device)
    rec_b = _check_pair(rec_b, "rec_b", real_b, "real_b", device)
    if (idt_a is None) != (idt_b is None):
        raise ValueError("idt_a and idt_b must be given together (both identity outputs) or both be None")
    if idt_a is not None:
        idt_a = _check_pair(idt_a, "idt_a", real_b, "real_b", device)
        idt_b = _check_pair(idt_b, "idt_b", real_a, "real_a", device)
    preds_b = _check_preds(pred_fake_b, "pred_fake_b", device)
    preds_a = _check_preds(pred_fake_a, "pred_fake_a", device)
    mode = _check_gan_mode(gan_mode)
    lambda_a = _check_weight(lambda_a, "lambda_a")
    lambda_b = _check_weight(lambda_b, "lambda_b")
    lambda_identity = _check_weight(lambda_identity, "lambda_identity")
    target_real = _check_target(target_real, gan_mode)
    backend = resolve_impl(impl, device, OP)
    if backend == "ref":
        return cyclegan_generator_loss_ref(
            preds_b, preds_a, rec_a, real_a, rec_b, real_b, idt_a, idt_b, gan_mode=gan_mode,
            lambda_a=lambda_a, lambda_b=lambda_b, lambda_identity=lambda_identity, target_real=target_real)

    pairs = [(rec_a, real_a, lambda_a), (rec_b, real_b, lambda_b)]
    if idt_a is not None:
        pairs += [(idt_a, real_b, lambda_b * lambda_identity), (idt_b, real_a, lambda_a * lambda_identity)]
    xs, ys = zip(*(_pair(x, y) for x, y, _ in pairs))
    preds = [_dense(p) for p in preds_b + preds_a]
    weights = [1.0 / len(preds_b)] * len(preds_b) + [1.0 / len(preds_a)] * len(preds_a)
    # The pairs' signs are kept only when a backward can follow (see effgan/_signs.py).
    save_signs = torch.is_grad_enabled() and any(t.requires_grad for t in xs + ys)
    losses = _cyclegan_loss(preds, [target_real] * len(preds), weights, list(xs), list(ys),
                            [w for _, _, w in pairs], mode, save_signs, backend)[0]
    nb, npred = len(preds_b), len(preds)
    parts = losses.detach()
    loss_G_A = parts[0] if nb == 1 else parts[:nb].sum()
    loss_G_B = parts[nb] if npred - nb == 1 else parts[nb:npred].sum()
    zero = parts.new_zeros(())
    idt_A, idt_B = (parts[npred + 2], parts[npred + 3]) if idt_a is not None else (zero, zero)
    return CycleGANLosses(losses[-1], loss_G_A, loss_G_B, parts[npred], parts[npred + 1], idt_A, idt_B)


def gan_loss_d(
    pred_real: Preds,
    pred_fake: Preds,
    gan_mode: str = "lsgan",
    target_real: float = 1.0,
    *,
    impl: str = "auto",
) -> torch.Tensor:
    """Discriminator loss 0.5 * (gan(pred_real, target_real) + gan(pred_fake, 0)), fused.

    ``pred_fake`` should come from detached generator outputs, as in the reference. Lists/tuples of
    maps (multi-head discriminators) average their heads' losses. Returns a differentiable 0-d
    tensor in float32 (float64 for float64 inputs).
    """
    reals = _check_preds(pred_real, "pred_real", None)
    device = reals[0].device
    reals = _check_preds(pred_real, "pred_real", device)
    fakes = _check_preds(pred_fake, "pred_fake", device)
    mode = _check_gan_mode(gan_mode)
    target_real = _check_target(target_real, gan_mode)
    backend = resolve_impl(impl, device, OP)
    if backend == "ref":
        return gan_loss_d_ref(reals, fakes, gan_mode=gan_mode, target_real=target_real)
    preds = [_dense(p) for p in reals + fakes]
    targets = [target_real] * len(reals) + [0.0] * len(fakes)
    weights = [0.5 / len(reals)] * len(reals) + [0.5 / len(fakes)] * len(fakes)
    return _cyclegan_loss(preds, targets, weights, [], [], [], mode, False, backend)[0][-1]

