"""Mixed precision: an autocast context per forward pass and, for fp16, one GradScaler per optimiser.

bf16 has fp32's exponent range, so its gradients need no scaling; fp16 gradients underflow
without it. Each optimiser gets its own scaler because G and D losses have unrelated magnitudes
and one overflow in D should not shrink G's scale.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    mode: str  # "none" | "bf16" | "fp16"
    device_type: str  # "cpu" | "cuda"
    # CUDA-graph capture must not reuse autocast's cast-weight cache across replays
    cache_enabled: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("none", *_DTYPES):
            raise ValueError(f"amp must be 'none', 'bf16' or 'fp16', got {self.mode!r}")

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=_DTYPES[self.mode],
                              cache_enabled=self.cache_enabled)

    def make_scaler(self) -> torch.amp.GradScaler:
        """An enabled scaler for fp16, a pass-through (disabled) one otherwise."""
        return torch.amp.GradScaler(self.device_type, enabled=self.mode == "fp16")


def backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """Backward, optimiser step and scaler update; the plain path when the scaler is disabled."""
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
