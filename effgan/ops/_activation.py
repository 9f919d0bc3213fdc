"""Activation names, their integer codes for the kernels, and the reference implementations."""
from __future__ import annotations

import torch
import torch.nn.functional as F

# The codes are compile-time constants of the Triton and C++ kernels: keep them in sync with
# kernels/_activation.py and csrc/activation.h.
ACT_CODES = {"identity": 0, "relu": 1, "leaky_relu": 2, "silu": 3, "tanh": 4}


def act_code(act: object, name: str = "act") -> int:
    if not isinstance(act, str) or act not in ACT_CODES:
        raise ValueError(f"{name} must be one of {tuple(ACT_CODES)}, got {act!r}")
    return ACT_CODES[act]


def apply_act_ref(z: torch.Tensor, act: str, negative_slope: float) -> torch.Tensor:
    """The activation as eager PyTorch computes it (the baseline every backend is held to)."""
    if act == "identity":
        return z
    if act == "relu":
        return F.relu(z)
    if act == "leaky_relu":
        return F.leaky_relu(z, negative_slope)
    if act == "silu":
        return F.silu(z)
    if act == "tanh":
        return torch.tanh(z)
    raise ValueError(f"act must be one of {tuple(ACT_CODES)}, got {act!r}")


def act_module(act: str, negative_slope: float = 0.01) -> torch.nn.Module:
    """The torch module for an activation name (used by the plain-torch builds)."""
    act_code(act)
    return {
        "identity": lambda: torch.nn.Identity(),
        "relu": lambda: torch.nn.ReLU(),
        "leaky_relu": lambda: torch.nn.LeakyReLU(negative_slope),
        "silu": lambda: torch.nn.SiLU(),
        "tanh": lambda: torch.nn.Tanh(),
    }[act]()
