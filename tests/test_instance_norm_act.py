"""instance_norm_act: every backend against the reference and against torch's own modules."""
import re

import pytest
import torch
from torch import nn

from effgan.nn import FusedInstanceNorm2d, InstanceNormAct
from effgan.ops import instance_norm_act, instance_norm_act_ref
from op_harness import (
    LOW_PRECISION,
    assert_close,
    assert_low_precision_ok,
    assert_sum_ok,
    fast_backends,
    rand,
    seeded,
)

OP = "instance_norm_act"
ACTS = ["identity", "relu", "leaky_relu", "silu", "tanh"]
# Odd sizes, a single-pixel plane, 3 channels, and a plane larger than one block (4096 on the CPU).
SHAPES = [(2, 3, 5, 7), (1, 1, 1, 1), (3, 4, 37, 37), (1, 2, 67, 65)]


def _inputs(shape, dtype, device, channels_last, affine, residual, gen):
    C = shape[1]
    x = rand(shape, dtype=dtype, device=device, channels_last=channels_last, scale=2.0, offset=1.5, gen=gen)
    w = rand((C,), dtype=dtype, device=device, gen=gen) if affine else None
    b = rand((C,), dtype=dtype, device=device, gen=gen) if affine else None
    r = rand(shape, dtype=dtype, device=device, channels_last=channels_last, gen=gen) if residual else None
    return x, w, b, r


def _run(fn, tensors, grad_out, **kw):
    leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in tensors]
    y = fn(*leaves, **kw)
    y.backward(grad_out)
    return y.detach(), [t.grad if t is not None else None for t in leaves]


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_reference_all_grads(impl, device, dtype, shape, channels_last, poison_outputs):
    gen = seeded(shape, channels_last)
    for act, affine, residual in [("identity", True, True), ("relu", False, False), ("leaky_relu", True, False),
                                  ("silu", True, True), ("tanh", False, True)]:
        tensors = _inputs(shape, dtype, device, channels_last, affine, residual, gen)
        g = rand(shape, dtype=dtype, device=device, gen=gen)
        kw = dict(act=act, negative_slope=0.2, eps=1e-5)
        y, grads = _run(instance_norm_act, tensors, g, impl=impl, **kw)
        y_ref, grads_ref = _run(instance_norm_act_ref, tensors, g, **kw)
        name = f"{impl} {act} affine={affine} residual={residual}"
        assert_close(y, y_ref, dtype, f"{name} y")
        if dtype == torch.float32 and affine:
            _, grads_64 = _run(instance_norm_act_ref, [t.double() if t is not None else None for t in tensors],
                               g.double(), **kw)
        for label, a, e in zip(("x", "weight", "bias", "residual"), grads, grads_ref):
            assert (a is None) == (e is None)
            if a is None:
                continue
            if dtype == torch.float32 and label in ("weight", "bias"):
                assert_sum_ok(a, e, grads_64[1 if label == "weight" else 2], f"{name} d{label}")
            else:
                assert_close(a, e, dtype, f"{name} d{label}")
        assert y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        assert grads[0].stride() == tensors[0].stride()


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("act", ACTS)
def test_every_activation_against_torch_modules(impl, device, act):
    """Against the composition of torch modules (nn.InstanceNorm2d(affine) + activation module)."""
    torch.manual_seed(1)
    C = 6
    norm = nn.InstanceNorm2d(C, affine=True).to(device)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    act_mod = {"identity": nn.Identity(), "relu": nn.ReLU(), "leaky_relu": nn.LeakyReLU(0.2),
               "silu": nn.SiLU(), "tanh": nn.Tanh()}[act]
    fused = FusedInstanceNorm2d(C, affine=True, act=act, negative_slope=0.2, impl=impl).to(device)
    fused.load_state_dict(norm.state_dict())
    x = rand((2, C, 9, 11), device=device, offset=0.5).requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    y_t = act_mod(norm(x))
    y_f = fused(x2)
    g = torch.randn_like(y_t)
    y_t.backward(g)
    y_f.backward(g)
    assert_close(y_f, y_t, torch.float32, "y")
    assert_close(x2.grad, x.grad, torch.float32, "dx")
    assert_close(fused.weight.grad, norm.weight.grad, torch.float32, "dweight")
    assert_close(fused.bias.grad, norm.bias.grad, torch.float32, "dbias")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("dtype", LOW_PRECISION)
@pytest.mark.parametrize("channels_last", [False, True])
def test_low_precision_within_twice_eager_error(impl, device, dtype, channels_last):
    gen = torch.Generator().manual_seed(7)
    shape = (2, 5, 19, 23)
    tensors = _inputs(shape, dtype, device, channels_last, affine=True, residual=True, gen=gen)
    g = rand(shape, dtype=dtype, device=device, gen=gen)
    kw = dict(act="silu")
    y, grads = _run(instance_norm_act, tensors, g, impl=impl, **kw)
    y_low, grads_low = _run(instance_norm_act_ref, tensors, g, **kw)
    exact = [t.double() for t in tensors]
    y_64, grads_64 = _run(instance_norm_act_ref, exact, g.double(), **kw)
    assert y.dtype == dtype
    assert_low_precision_ok(y, y_low, y_64, dtype, "y")
    for label, a, lo, e in zip(("x", "weight", "bias", "residual"), grads, grads_low, grads_64):
        assert_low_precision_ok(a, lo, e, dtype, f"d{label}")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_gradcheck_float64(impl, device):
    gen = torch.Generator().manual_seed(3)
    x, w, b, r = _inputs((2, 3, 3, 4), torch.float64, device, False, True, True, gen)
    args = [t.requires_grad_() for t in (x, w, b, r)]
    fn = lambda *a: instance_norm_act(*a, act="silu", impl=impl)  # noqa: E731
    # fast_mode checks random projections of the Jacobian: a few dozen kernel calls, not hundreds,
    # which matters in the Triton interpreter.
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5, fast_mode=True)


def test_gradcheck_reference():
    gen = torch.Generator().manual_seed(4)
    args = [t.requires_grad_() for t in _inputs((2, 3, 4, 5), torch.float64, "cpu", True, True, True, gen)]
    for act in ACTS:
        if act in ("relu", "leaky_relu"):
            continue  # kinks: finite differences straddle them
        fn = lambda *a: instance_norm_act_ref(*a, act=act)  # noqa: E731
        assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_deterministic(impl, device):
    gen = torch.Generator().manual_seed(5)
    tensors = _inputs((2, 4, 33, 31), torch.float32, device, False, True, True, gen)
    g = rand((2, 4, 33, 31), device=device, gen=gen)
    y1, g1 = _run(instance_norm_act, tensors, g, impl=impl, act="relu")
    y2, g2 = _run(instance_norm_act, tensors, g, impl=impl, act="relu")
    assert torch.equal(y1, y2)
    for a, b in zip(g1, g2):
        assert torch.equal(a, b)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_large_mean_small_variance(impl, device):
    """Statistics stay accurate when |mean| >> std (the shifted sums exist for this)."""
    x = rand((1, 2, 40, 40), device=device, scale=1e-2, offset=1e3)
    y = instance_norm_act(x, impl=impl)
    y_ref = instance_norm_act_ref(x.double()).float()
    torch.testing.assert_close(y, y_ref, atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_strided_parameters(impl, device):
    """Per-channel parameters that are views with a stride (slices of one buffer) are read correctly."""
    x = rand((2, 3, 5, 6), device=device)
    params = rand((2, 6), device=device)
    w, b = params[0, ::2], params[1, 1::2]
    assert not w.is_contiguous()
    torch.testing.assert_close(instance_norm_act(x, w, b, impl=impl), instance_norm_act_ref(x, w, b))


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("x_dtype,p_dtype", [(torch.float32, torch.float64), (torch.float64, torch.float32),
                                             (torch.bfloat16, torch.float32), (torch.float32, torch.bfloat16)])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (2, 3, 1, 1)])
def test_parameters_of_another_dtype(impl, device, x_dtype, p_dtype, shape):
    """Every backend, the reference included, takes affine parameters of another float dtype: the
    output keeps x's dtype and each parameter's gradient its own."""
    g = torch.Generator().manual_seed(0)
    x = rand(shape, dtype=x_dtype, device=device, gen=g)
    w, b = rand((3,), dtype=p_dtype, device=device, gen=g), rand((3,), dtype=p_dtype, device=device, gen=g)
    dy = rand(shape, dtype=x_dtype, device=device, gen=g)
    y_ref, grads_ref = _run(instance_norm_act_ref, (x, w, b), dy, act="relu")
    y, grads = _run(instance_norm_act, (x, w, b), dy, act="relu", impl=impl)
    assert y.dtype == y_ref.dtype == x_dtype
    assert [t.dtype for t in grads] == [t.dtype for t in grads_ref] == [x_dtype, p_dtype, p_dtype]
    tol = 2e-5 if torch.finfo(x_dtype).bits >= 32 and torch.finfo(p_dtype).bits >= 32 else 6e-2
    for name, a, e in zip(("y", "dx", "dweight", "dbias"), (y, *grads), (y_ref, *grads_ref)):
        torch.testing.assert_close(a.double(), e.double(), atol=tol, rtol=tol, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("x_dtype", [torch.bfloat16, torch.float16])
def test_weight_and_bias_of_two_dtypes(impl, device, x_dtype):
    """A float32 weight beside a 16-bit bias (and the reverse) on a 16-bit x: the reference takes
    them too (F.instance_norm wants one parameter dtype: both go to float32)."""
    g = torch.Generator().manual_seed(1)
    x = rand((2, 3, 5, 7), dtype=x_dtype, device=device, gen=g)
    dy = rand((2, 3, 5, 7), dtype=x_dtype, device=device, gen=g)
    for w_dtype, b_dtype in ((torch.float32, x_dtype), (x_dtype, torch.float32)):
        w = rand((3,), dtype=w_dtype, device=device, gen=g)
        b = rand((3,), dtype=b_dtype, device=device, gen=g)
        y_ref, grads_ref = _run(instance_norm_act_ref, (x, w, b), dy, act="relu")
        y, grads = _run(instance_norm_act, (x, w, b), dy, act="relu", impl=impl)
        assert y.dtype == y_ref.dtype == x_dtype
        assert [t.dtype for t in grads] == [t.dtype for t in grads_ref] == [x_dtype, w_dtype, b_dtype]
        for name, a, e in zip(("y", "dx", "dweight", "dbias"), (y, *grads), (y_ref, *grads_ref)):
            torch.testing.assert_close(a.double(), e.double(), atol=6e-2, rtol=6e-2, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_double_backward_raises(impl, device):
    x = rand((1, 2, 4, 4), device=device).requires_grad_()
    y = instance_norm_act(x, act="silu", impl=impl)
    (gx,) = torch.autograd.grad(y.pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gx.sum().backward()


def test_module_mirrors_torch_instance_norm():
    for affine in (False, True):
        ref = nn.InstanceNorm2d(5, eps=1e-3, affine=affine)
        fused = FusedInstanceNorm2d(5, eps=1e-3, affine=affine, act="relu", impl="ref")
        plain = InstanceNormAct(5, eps=1e-3, affine=affine, act="relu")
        assert fused.state_dict().keys() == ref.state_dict().keys() == plain.state_dict().keys()
        fused.load_state_dict(ref.state_dict())
        plain.load_state_dict(fused.state_dict())
    # torch's own repr (whose fields vary by version) followed by the fused layer's settings.
    assert repr(fused) == "Fused" + repr(ref)[:-1] + ", act=relu, impl=ref)"
    assert "act=leaky_relu, negative_slope=0.2" in repr(InstanceNormAct(3, act="leaky_relu", negative_slope=0.2))
    x = torch.randn(5, 6, 7)  # unbatched input, as nn.InstanceNorm2d accepts
    torch.testing.assert_close(fused(x), plain(x))
    residual = torch.randn(5, 6, 7)
    torch.testing.assert_close(fused(x, residual), plain(x, residual))
    for wrong in ((1, 5, 6, 7), (5, 6)):  # named as the caller passed them, not as batched inside
        with pytest.raises(ValueError, match=re.escape(f"residual must have x's shape (5, 6, 7), got {wrong}")):
            fused(x, torch.randn(wrong))
    # Running statistics: the fused layer falls back to the composite and tracks them like torch.
    tracked = FusedInstanceNorm2d(5, track_running_stats=True, impl="ref")
    torch_tracked = nn.InstanceNorm2d(5, track_running_stats=True)
    xb = torch.randn(3, 5, 6, 6) + 2
    torch.testing.assert_close(tracked(xb), torch_tracked(xb))
    torch.testing.assert_close(tracked.running_mean, torch_tracked.running_mean)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: instance_norm_act(torch.randn(2, 3, 4)), ValueError, "x must be 4-D"),
        (lambda: instance_norm_act(torch.ones(2, 3, 4, 4, dtype=torch.int32)), TypeError, "x must be a floating"),
        (lambda: instance_norm_act(torch.randn(2, 3, 0, 4)), ValueError, "x must not be empty"),
        (lambda: instance_norm_act(torch.randn(2, 3, 4, 4), torch.randn(4)), ValueError, "weight must have shape"),
        (lambda: instance_norm_act(torch.randn(2, 3, 4, 4), torch.randn(3, device="meta")), ValueError, "weight is on meta"),
        (lambda: instance_norm_act(torch.randn(2, 3, 4, 4), residual=torch.randn(2, 3, 4, 5)), ValueError, "residual"),
        (lambda: instance_norm_act(torch.randn(2, 3, 4, 4), eps=0.0), ValueError, "eps"),
        (lambda: instance_norm_act(torch.randn(2, 3, 4, 4), act="gelu"), ValueError, "act must be one of"),
        (lambda: instance_norm_act(torch.randn(2, 3, 4, 4), impl="cuda"), ValueError, "impl must be one of"),
        (lambda: instance_norm_act("x"), TypeError, "x must be a torch.Tensor"),
        (lambda: FusedInstanceNorm2d(4)(torch.randn(2, 3, 4, 4)), ValueError, "expects num_features=4"),
        (lambda: FusedInstanceNorm2d(0), ValueError, "num_features"),
        (lambda: FusedInstanceNorm2d(3, eps="1e-5"), TypeError, "eps must be a number"),
        (lambda: InstanceNormAct(3, eps=None), TypeError, "eps must be a number"),
        (lambda: FusedInstanceNorm2d(3, negative_slope="a"), TypeError, "negative_slope must be a number"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_unavailable_impl_explains(monkeypatch):
    x = torch.randn(1, 2, 3, 3)
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="needs CUDA tensors"):
        instance_norm_act(x, impl="triton")
    monkeypatch.setenv("EFFGAN_IMPL", "bogus")
    with pytest.raises(ValueError, match="EFFGAN_IMPL"):
        instance_norm_act(x)
    monkeypatch.setenv("EFFGAN_IMPL", "ref")
    torch.testing.assert_close(instance_norm_act(x), instance_norm_act_ref(x))


def test_compiles_without_graph_breaks():
    """A module stack built from effgan layers compiles with fullgraph=True (custom ops + fake kernels)."""
    impl = "triton" if "triton" in fast_backend_names() else "ref"
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), FusedInstanceNorm2d(4, affine=True, act="relu", impl=impl))
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    y.sum().backward()
    x2 = x.detach().clone().requires_grad_()
    y2 = model(x2)
    y2.sum().backward()
    torch.testing.assert_close(y, y2)
    torch.testing.assert_close(x.grad, x2.grad)


def fast_backend_names():
    from effgan._backend import available_impls

    return available_impls("cpu", OP)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_residual_only_gradient_skips_the_kernel(impl, device, monkeypatch):
    """With x and the affine parameters frozen, the residual's gradient is dy and no kernel runs."""
    import importlib

    module = importlib.import_module("effgan.ops.instance_norm_act")
    gen = torch.Generator().manual_seed(11)
    x, w, b, r = _inputs((2, 3, 5, 7), torch.float32, device, False, True, True, gen)
    r = r.requires_grad_()
    y = instance_norm_act(x, w, b, r, act="silu", impl=impl)

    class NoBackward:
        def __getattr__(self, name):
            raise AssertionError(f"kernel {name} called for a residual-only gradient")

    monkeypatch.setattr(module, "_kernels", lambda _impl: NoBackward())
    g = rand(y.shape, device=device, gen=gen)
    y.backward(g)
    assert torch.equal(r.grad, g)
    assert x.grad is None and w.grad is None and b.grad is None
