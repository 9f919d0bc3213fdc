"""Mixed precision: an autocast context per forward pass and, for fp16, one GradScaler per optimiser.

bf16 has fp32's exponent range, so its gradients need no scaling; fp16 gradients underflow
without it. Each optimiser gets its own scaler because G and D losses have unrelated magnitudes
and one overflow in D should not shrink G's scale. The scalers' state (scale, growth tracker) is
part of every checkpoint, so a resumed fp16 run continues with the scale it had reached.

Both modes work on the CPU too with a recent torch (2.13 autocasts to fp16 on the CPU, and
``torch.amp.GradScaler("cpu")`` exists); :meth:`Precision.check_supported` turns a torch without
that support into a clear error at startup instead of a silently disabled autocast.
"""
from __future__ import annotations

import contextlib
import warnings
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

    def check_supported(self) -> None:
        """Raise ValueError naming ``amp`` when this torch cannot autocast to the dtype on the device.

        (Older torch builds warn and silently disable autocast instead, e.g. fp16 on the CPU.)
        """
        if not self.enabled:
            return
        dtype = _DTYPES[self.mode]
        where = f"amp={self.mode!r} on {self.device_type}"
        if not torch.amp.is_autocast_available(self.device_type):
            raise ValueError(f"{where}: torch has no autocast for {self.device_type} devices; use --amp none")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the probe's "disabling autocast" warning; the error says it better
            with torch.autocast(device_type=self.device_type, dtype=dtype):
                active = torch.is_autocast_enabled(self.device_type)
                actual = torch.get_autocast_dtype(self.device_type)
        if not active or actual != dtype:
            hint = "use --amp bf16 or a CUDA device" if self.mode == "fp16" else "use --amp none"
            raise ValueError(f"{where}: this torch ({torch.__version__}) does not autocast to {dtype} on "
                             f"{self.device_type}; {hint}")
        if self.mode == "fp16":
            try:
                self.make_scaler()
            except (RuntimeError, ValueError, AttributeError) as error:
                raise ValueError(f"{where} needs a GradScaler for {self.device_type}, which this torch "
                                 f"({torch.__version__}) lacks ({error}); use --amp bf16 or a CUDA device") from None

    def make_scaler(self) -> torch.amp.GradScaler:
        """An enabled scaler for fp16, a pass-through (disabled) one otherwise."""
        return torch.amp.GradScaler(self.device_type, enabled=self.mode == "fp16")


def backward_and_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> None:
    """Backward, optimiser step and scaler update; the plain path when the scaler is disabled."""
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
