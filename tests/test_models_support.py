"""Shared checks for the model tests (no tests here): fused vs plain builds, reference weight copy."""
from __future__ import annotations

import torch


def copy_params_in_order(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Copy parameters position by position (the two networks list them in the same order)."""
    src, dst = list(source.parameters()), list(target.parameters())
    assert len(src) == len(dst), (len(src), len(dst))
    with torch.no_grad():
        for s, d in zip(src, dst):
            assert s.shape == d.shape, (s.shape, d.shape)
            d.copy_(s)


def assert_same_state_dict_layout(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(sa[k].shape == sb[k].shape for k in sa)


def outputs_and_grads(model: torch.nn.Module, inputs: tuple, seed: int = 0, **kwargs):
    """Forward, backward of a fixed random projection; returns (outputs, input grads, param grads)."""
    inputs = tuple(t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs)
    model.zero_grad(set_to_none=True)
    out = model(*inputs, **kwargs)
    outs = out if isinstance(out, tuple) else (out,)
    gen = torch.Generator().manual_seed(seed)
    loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype)).sum() for o in outs)
    loss.backward()
    in_grads = [t.grad for t in inputs if t.is_floating_point()]
    param_grads = [(n, p.grad) for n, p in model.named_parameters()]
    return [o.detach() for o in outs], in_grads, param_grads


def assert_same_forward_backward(reference, candidate, inputs: tuple, *, atol=1e-4, rtol=1e-4,
                                 **kwargs) -> None:
    out_r, in_r, par_r = outputs_and_grads(reference, inputs, **kwargs)
    out_c, in_c, par_c = outputs_and_grads(candidate, inputs, **kwargs)
    for a, b in zip(out_c, out_r):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol)
    for a, b in zip(in_c, in_r):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol)
    # Parameters are compared by position: a reference network may name them differently.
    assert len(par_c) == len(par_r) and par_r
    for (name, g_c), (_, g_r) in zip(par_c, par_r):
        assert (g_c is None) == (g_r is None), name
        if g_r is not None:
            torch.testing.assert_close(g_c, g_r, atol=atol, rtol=rtol,
                                       msg=lambda m, name=name: f"grad of {name}: {m}")


def require_effgan_nn(*names: str) -> None:
    """Skip (saying which) when effgan.nn lacks a module these models are built from."""
    import pytest

    import effgan.nn

    missing = [n for n in names if not hasattr(effgan.nn, n)]
    if missing:
        pytest.skip(f"effgan.nn does not provide {', '.join(missing)} yet")
