"""Adversarial losses in plain torch (the ``--no-fused`` path and the reference for the fused op).

All losses take discriminator logits and reduce to a scalar mean. Discriminators may return one
map or a tuple of maps (multi-head); the loss of a tuple is the mean of the per-head losses.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla")


def _heads(pred: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return list(pred) if isinstance(pred, (tuple, list)) else [pred]


def gan_loss(pred: torch.Tensor | Sequence[torch.Tensor], target: float | torch.Tensor, mode: str) -> torch.Tensor:
    """Distance of logits from a target label: MSE (lsgan) or BCE-with-logits (vanilla).

    ``target`` is a float, or a tensor broadcastable to the logits (soft / noisy labels).
    """
    if mode not in GAN_MODES:
        raise ValueError(f"mode must be one of {list(GAN_MODES)}, got {mode!r}")
    losses = []
    for p in _heads(pred):
        p = p.float()  # the loss in fp32 even under autocast: small sums of squares lose bits in fp16
        t = torch.as_tensor(target, dtype=p.dtype, device=p.device).expand_as(p)
        if mode == "lsgan":
            losses.append(F.mse_loss(p, t))
        else:
            losses.append(F.binary_cross_entropy_with_logits(p, t))
    return torch.stack(losses).mean()


def discriminator_loss(real_pred, fake_pred, mode: str) -> torch.Tensor:
    """Reference CycleGAN D loss: the mean of the real and fake terms (halved, slowing D)."""
    return 0.5 * (gan_loss(real_pred, 1.0, mode) + gan_loss(fake_pred, 0.0, mode))


def cyclegan_generator_loss_plain(
    pred_fake_b, pred_fake_a, real_a: torch.Tensor, real_b: torch.Tensor,
    rec_a: torch.Tensor, rec_b: torch.Tensor, idt_a: torch.Tensor | None, idt_b: torch.Tensor | None,
    *, lambda_cycle: float, lambda_identity: float, mode: str,
) -> dict[str, torch.Tensor]:
    """The full CycleGAN generator objective and its parts.

    ``idt_a`` is G_A(real_b) (should equal real_b) and ``idt_b`` is G_B(real_a); identity terms are
    weighted ``lambda_cycle * lambda_identity`` as in the reference.
    """
    adv_a = gan_loss(pred_fake_b, 1.0, mode)  # G_A fools D_A
    adv_b = gan_loss(pred_fake_a, 1.0, mode)  # G_B fools D_B
    cycle_a = F.l1_loss(rec_a.float(), real_a.float()) * lambda_cycle
    cycle_b = F.l1_loss(rec_b.float(), real_b.float()) * lambda_cycle
    parts = {"G_A": adv_a, "G_B": adv_b, "cycle_A": cycle_a, "cycle_B": cycle_b}
    total = adv_a + adv_b + cycle_a + cycle_b
    if lambda_identity > 0 and idt_a is not None and idt_b is not None:
        weight = lambda_cycle * lambda_identity
        parts["idt_A"] = F.l1_loss(idt_a.float(), real_b.float()) * weight
        parts["idt_B"] = F.l1_loss(idt_b.float(), real_a.float()) * weight
        total = total + parts["idt_A"] + parts["idt_B"]
    parts["G"] = total
    return parts


def nonsaturating_generator_loss(fake_pred: torch.Tensor) -> torch.Tensor:
    """StyleGAN's G loss: softplus(-D(G(z)))."""
    return F.softplus(-fake_pred.float()).mean()


def logistic_discriminator_loss(real_pred: torch.Tensor, fake_pred: torch.Tensor) -> torch.Tensor:
    """StyleGAN's D loss: softplus(D(G(z))) + softplus(-D(x))."""
    return F.softplus(fake_pred.float()).mean() + F.softplus(-real_pred.float()).mean()


def r1_penalty(real_pred: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||d D(x) / d x||^2 (Mescheder et al., 2018); keeps the graph for backward."""
    (grad,) = torch.autograd.grad(real_pred.float().sum(), real, create_graph=True)
    return grad.float().pow(2).flatten(1).sum(1).mean()
