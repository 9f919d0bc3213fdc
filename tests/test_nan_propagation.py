"""NaN in, NaN out, exactly where the reference puts them: a fused op must not hide a diverging run.

One NaN in a plane makes that plane's statistics NaN, so the reference's output is NaN over the whole
plane; a ReLU that maps NaN to 0 would turn it into a plane of finite zeros. The other way round, a
NaN gradient where ReLU is flat is dropped by torch's backward (it selects, it does not multiply),
so the input gradient stays finite; multiplying by a zero derivative would spread the NaN through
the norm's sums to the whole plane.
"""
import pytest
import torch

from effgan.ops import adain, adain_ref, dwconv_norm_act, dwconv_norm_act_ref, instance_norm_act, instance_norm_act_ref
from op_harness import fast_backends, rand

SHAPE = (2, 3, 6, 7)
ACTS = ["relu", "leaky_relu", "silu"]


def _instance_norm_act(fn, x, **kw):
    C = x.shape[1]
    g = torch.Generator().manual_seed(3)
    w, b = rand((C,), gen=g, device=x.device), rand((C,), gen=g, device=x.device)
    return fn(x, w, b, **kw)


def _adain(fn, x, **kw):
    N, C = x.shape[:2]
    g = torch.Generator().manual_seed(4)
    scale, shift = rand((N, C), gen=g, device=x.device), rand((N, C), gen=g, device=x.device)
    return fn(x, scale, shift, **kw)


def _dwconv_norm_act(fn, x, **kw):
    C = x.shape[1]
    g = torch.Generator().manual_seed(5)
    w = rand((C, 1, 3, 3), gen=g, device=x.device)
    y, _squeeze = fn(x, w, None, rand((C,), gen=g, device=x.device), rand((C,), gen=g, device=x.device), **kw)
    return y


OPS = {
    "instance_norm_act": (_instance_norm_act, instance_norm_act, instance_norm_act_ref),
    "adain": (_adain, adain, adain_ref),
    "dwconv_norm_act": (_dwconv_norm_act, dwconv_norm_act, dwconv_norm_act_ref),
}


def _cases():
    for op in OPS:
        for p in fast_backends(op):
            impl, device = p.values
            yield pytest.param(op, impl, device, marks=p.marks, id=f"{op}-{p.id}")


def _fwd_bwd(op, fn, x, dy, **kw):
    build = OPS[op][0]
    x = x.detach().clone().requires_grad_()
    y = build(fn, x, negative_slope=0.2, **kw)
    y.backward(dy)
    return y.detach(), x.grad


def _assert_same_nans_and_close(fast, ref, name):
    assert torch.equal(torch.isnan(fast), torch.isnan(ref)), (
        f"{name}: NaN at {torch.isnan(fast).sum().item()} places, the reference at {torch.isnan(ref).sum().item()}")
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=2e-5, equal_nan=True, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("op,impl,device", list(_cases()))
@pytest.mark.parametrize("act", ACTS)
def test_a_nan_input_gives_nan_where_the_reference_does(op, impl, device, act):
    _, fast, ref = OPS[op]
    x = rand(SHAPE, device=device, gen=torch.Generator().manual_seed(1))
    x[0, 1, 2, 3] = float("nan")
    dy = rand(SHAPE, device=device, gen=torch.Generator().manual_seed(2))
    y_ref, dx_ref = _fwd_bwd(op, ref, x, dy, act=act)
    y, dx = _fwd_bwd(op, fast, x, dy, act=act, impl=impl)
    assert torch.isnan(y_ref[0, 1]).all() and torch.isfinite(y_ref[1]).all(), "the case must test something"
    _assert_same_nans_and_close(y, y_ref, "y")
    _assert_same_nans_and_close(dx, dx_ref, "dx")


@pytest.mark.parametrize("op,impl,device", list(_cases()))
@pytest.mark.parametrize("act", ACTS)
def test_a_nan_gradient_where_the_activation_is_flat(op, impl, device, act):
    _, fast, ref = OPS[op]
    x = rand(SHAPE, device=device, gen=torch.Generator().manual_seed(1))
    # Where the ReLU version of the op is flat: there relu's backward drops the NaN, leaky ReLU's and
    # silu's keep it (they multiply), and the norm's sums carry it to the rest of the plane. AdaIN
    # applies its activation before the norm, to x itself here (no noise, no bias).
    if op == "adain":
        flat = torch.nonzero(x[0, 1] <= 0)
    else:
        y_relu, _ = _fwd_bwd(op, ref, x, torch.ones(SHAPE, device=device), act="relu")
        flat = torch.nonzero(y_relu[0, 1] == 0)
    assert len(flat) > 0, "the case must test something"
    dy = rand(SHAPE, device=device, gen=torch.Generator().manual_seed(2))
    dy[0, 1, flat[0, 0], flat[0, 1]] = float("nan")
    y_ref, dx_ref = _fwd_bwd(op, ref, x, dy, act=act)
    y, dx = _fwd_bwd(op, fast, x, dy, act=act, impl=impl)
    if act == "relu" and op != "adain":
        assert torch.isfinite(dx_ref).all(), "torch's relu backward drops the NaN"
    _assert_same_nans_and_close(y, y_ref, "y")
    _assert_same_nans_and_close(dx, dx_ref, "dx")
