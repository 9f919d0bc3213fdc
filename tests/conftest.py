"""Test configuration: Triton kernels run in the CPU interpreter unless a GPU is present.

TRITON_INTERPRET must be set before effgan.kernels is first imported (Triton decides at
decoration time), hence here, before any test module imports effgan.
"""
import os

import pytest
import torch

if "TRITON_INTERPRET" not in os.environ and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"


@pytest.fixture
def poison_outputs(monkeypatch):
    """Fill every tensor the backends allocate with NaN, so an element a kernel skips shows up."""
    from effgan import _alloc

    real_empty_like, real_empty = _alloc.empty_like, _alloc.empty

    def _poison(t):
        if t.is_floating_point():
            t.fill_(float("nan"))
        else:
            t.fill_(-(2**30) if t.dtype in (torch.int32, torch.int64) else (255 if t.dtype == torch.uint8 else 1))
        return t

    monkeypatch.setattr(_alloc, "empty_like", lambda x, **kw: _poison(real_empty_like(x, **kw)))
    monkeypatch.setattr(_alloc, "empty", lambda shape, **kw: _poison(real_empty(shape, **kw)))
