"""CycleGAN losses as modules: the fused generator objective and the discriminator loss.

Both are stateless (no parameters, empty state_dict); the settings are constructor arguments with
the reference CycleGAN's defaults. See ``effgan.ops.cyclegan_loss`` for the formulas.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from effgan._backend import IMPLS
from effgan.ops.cyclegan_loss import (
    CycleGANLosses,
    Preds,
    _check_gan_mode,
    _check_target,
    _check_weight,
    cyclegan_generator_loss,
    gan_loss_d,
)


def _check_impl(impl: object) -> str:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    return impl


class CycleGANGeneratorLoss(nn.Module):
    """``forward(pred_fake_b, pred_fake_a, rec_a, real_a, rec_b, real_b, idt_a=None, idt_b=None)``
    returns :class:`~effgan.ops.cyclegan_loss.CycleGANLosses` (differentiable ``total`` + detached parts)."""

    def __init__(self, gan_mode: str = "lsgan", lambda_a: float = 10.0, lambda_b: float = 10.0,
                 lambda_identity: float = 0.5, target_real: float = 1.0, *, impl: str = "auto") -> None:
        super().__init__()
        _check_gan_mode(gan_mode)
        self.gan_mode = gan_mode
        self.lambda_a = _check_weight(lambda_a, "lambda_a")
        self.lambda_b = _check_weight(lambda_b, "lambda_b")
        self.lambda_identity = _check_weight(lambda_identity, "lambda_identity")
        self.target_real = _check_target(target_real, gan_mode)
        self.impl = _check_impl(impl)

    def forward(self, pred_fake_b: Preds, pred_fake_a: Preds, rec_a: torch.Tensor, real_a: torch.Tensor,
                rec_b: torch.Tensor, real_b: torch.Tensor, idt_a: Optional[torch.Tensor] = None,
                idt_b: Optional[torch.Tensor] = None) -> CycleGANLosses:
        return cyclegan_generator_loss(
            pred_fake_b, pred_fake_a, rec_a, real_a, rec_b, real_b, idt_a, idt_b, gan_mode=self.gan_mode,
            lambda_a=self.lambda_a, lambda_b=self.lambda_b, lambda_identity=self.lambda_identity,
            target_real=self.target_real, impl=self.impl)

    def extra_repr(self) -> str:
        return (f"gan_mode={self.gan_mode}, lambda_a={self.lambda_a}, lambda_b={self.lambda_b}, "
                f"lambda_identity={self.lambda_identity}, target_real={self.target_real}, impl={self.impl}")


class GANDiscriminatorLoss(nn.Module):
    """``forward(pred_real, pred_fake)`` = 0.5 * (gan(pred_real, target_real) + gan(pred_fake, 0))."""

    def __init__(self, gan_mode: str = "lsgan", target_real: float = 1.0, *, impl: str = "auto") -> None:
        super().__init__()
        _check_gan_mode(gan_mode)
        self.gan_mode = gan_mode
        self.target_real = _check_target(target_real, gan_mode)
        self.impl = _check_impl(impl)

    def forward(self, pred_real: Preds, pred_fake: Preds) -> torch.Tensor:
        return gan_loss_d(pred_real, pred_fake, self.gan_mode, self.target_real, impl=self.impl)

    def extra_repr(self) -> str:
        return f"gan_mode={self.gan_mode}, target_real={self.target_real}, impl={self.impl}"
