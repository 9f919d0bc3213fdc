"""Weight initialisation shared by the models (the reference GAN codebases' schemes)."""
from __future__ import annotations

import math

from torch import nn

from effgan.nn.adain import AdaIN

INIT_KINDS = ("normal", "xavier", "kaiming", "orthogonal")

_WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d, nn.Linear)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def init_weights(model: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise ``model`` in place and return it.

    Conv / transposed conv / linear weights: ``normal`` N(0, gain) (the CycleGAN, pix2pix and
    DCGAN default with gain 0.02), ``xavier`` (xavier_normal_ with ``gain``), ``kaiming``
    (kaiming_normal_, fan_in, for ReLU) or ``orthogonal`` (with ``gain``); their biases 0.
    Batch norm weights N(1, gain) and biases 0. Instance norm affine parameters keep their
    (1, 0) defaults, as in the reference, and so do AdaIN's (its style layer's bias: scale 1,
    shift 0). Modules with ``equalized_lr = True`` (the StyleGAN layers, whose N(0, 1) weights are
    rescaled at run time) are left alone.
    """

    if kind not in INIT_KINDS:
        raise ValueError(f"kind must be one of {INIT_KINDS}, got {kind!r}")
    if not isinstance(gain, (int, float)) or isinstance(gain, bool) or not math.isfinite(gain) \
            or gain <= 0:
        raise ValueError(f"gain must be a positive finite number, got {gain!r}")
    for module in model.modules():
        if getattr(module, "equalized_lr", False):
            continue
        if isinstance(module, _WEIGHTED):
            _init_weight(module.weight, kind, gain)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, _BATCH_NORMS) and module.affine:
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    for module in model.modules():
        if isinstance(module, AdaIN):
            module.reset_style_bias()  # its style Linear's bias was zeroed above: no scale at all
    return model


def _init_weight(weight, kind: str, gain: float) -> None:
    if kind == "normal":
        nn.init.normal_(weight, 0.0, gain)
    elif kind == "xavier":
        nn.init.xavier_normal_(weight, gain=gain)
    elif kind == "kaiming":
        nn.init.kaiming_normal_(weight, a=0, mode="fan_in")
    else:
        nn.init.orthogonal_(weight, gain=gain)
