"""se_scale: every backend against the reference x * sigmoid(gate)[:, :, None, None]."""
import pytest
import torch

from effgan.ops import se_scale, se_scale_ref
from op_harness import (LOW_PRECISION, assert_close, assert_low_precision_ok, fast_backends, force_triton_path, rand,
                        seeded)

OP = "se_scale"
SHAPES = [(2, 3, 5, 7), (1, 1, 1, 1), (2, 5, 9, 8)]


def _inputs(shape, dtype, device, channels_last, gen):
    x = rand(shape, dtype=dtype, device=device, channels_last=channels_last, scale=2.0, offset=0.5, gen=gen)
    gate = rand(shape[:2], dtype=dtype, device=device, scale=2.0, gen=gen)
    return x, gate


def _run(fn, tensors, grad_out, **kw):
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    y = fn(*leaves, **kw)
    y.backward(grad_out)
    return y.detach(), [t.grad for t in leaves]


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels_last", [False, True])
def test_matches_reference_all_grads(impl, device, dtype, shape, channels_last, poison_outputs):
    gen = seeded(shape, channels_last)
    tensors = _inputs(shape, dtype, device, channels_last, gen)
    g = rand(shape, dtype=dtype, device=device, gen=gen)
    y, grads = _run(se_scale, tensors, g, impl=impl)
    y_ref, grads_ref = _run(se_scale_ref, tensors, g)
    assert_close(y, y_ref, dtype, "y")
    assert_close(grads[0], grads_ref[0], dtype, "dx")
    assert_close(grads[1], grads_ref[1], dtype, "dgate")
    assert y.stride() == tensors[0].stride()
    assert grads[0].stride() == tensors[0].stride()


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("dtype", LOW_PRECISION)
def test_low_precision_within_twice_eager_error(impl, device, dtype):
    gen = torch.Generator().manual_seed(7)
    shape = (2, 5, 19, 23)
    tensors = _inputs(shape, dtype, device, dtype == torch.bfloat16, gen)
    g = rand(shape, dtype=dtype, device=device, gen=gen)
    y, grads = _run(se_scale, tensors, g, impl=impl)
    y_low, grads_low = _run(se_scale_ref, tensors, g)
    y_64, grads_64 = _run(se_scale_ref, [t.double() for t in tensors], g.double())
    assert y.dtype == dtype
    assert_low_precision_ok(y, y_low, y_64, dtype, "y")
    for label, a, lo, e in zip(("x", "gate"), grads, grads_low, grads_64):
        assert_low_precision_ok(a, lo, e, dtype, f"d{label}")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_gradcheck_float64(impl, device):
    gen = torch.Generator().manual_seed(3)
    args = [t.requires_grad_() for t in _inputs((2, 3, 3, 4), torch.float64, device, False, gen)]
    assert torch.autograd.gradcheck(lambda x, g: se_scale(x, g, impl=impl), args, eps=1e-6, atol=1e-5,
                                    fast_mode=True)


@pytest.mark.parametrize("impl,device", [p for p in fast_backends(OP) if p.id == "triton-cpu"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_multi_program_planes_deterministic(impl, device, channels_last, monkeypatch, poison_outputs):
    """Planes split over several programs (the GPU geometry): same result as the reference, twice."""
    force_triton_path(monkeypatch, OP, "split", block_c=4 if channels_last else 2)
    gen = torch.Generator().manual_seed(5)
    shape = (2, 3, 11, 9)
    tensors = _inputs(shape, torch.float32, device, channels_last, gen)
    g = rand(shape, device=device, gen=gen)
    y1, g1 = _run(se_scale, tensors, g, impl=impl)
    y2, g2 = _run(se_scale, tensors, g, impl=impl)
    y_ref, g_ref = _run(se_scale_ref, tensors, g)
    assert torch.equal(y1, y2)
    for a, b, e in zip(g1, g2, g_ref):
        assert torch.equal(a, b)
        assert_close(a, e, torch.float32)
    assert_close(y1, y_ref, torch.float32)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_double_backward_raises(impl, device):
    x = rand((1, 2, 4, 4), device=device).requires_grad_()
    gate = rand((1, 2), device=device)
    y = se_scale(x, gate, impl=impl)
    (gx,) = torch.autograd.grad(y.pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gx.sum().backward()


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: se_scale(torch.randn(3, 4, 4), torch.randn(1, 3)), ValueError, "x must be 4-D"),
        (lambda: se_scale(torch.ones(1, 3, 4, 4, dtype=torch.int64), torch.randn(1, 3)), TypeError,
         "x must be a floating"),
        (lambda: se_scale(torch.randn(1, 3, 4, 4), None), TypeError, "gate must be a torch.Tensor"),
        (lambda: se_scale(torch.randn(1, 3, 4, 4), torch.randn(3)), ValueError, "gate must be 2-D"),
        (lambda: se_scale(torch.randn(2, 3, 4, 4), torch.randn(1, 3)), ValueError, "gate must have shape"),
        (lambda: se_scale(torch.randn(1, 3, 4, 4), torch.randn(1, 3).double()), TypeError, "gate has dtype"),
        (lambda: se_scale(torch.randn(1, 3, 4, 4), torch.randn(1, 3, device="meta")), ValueError, "gate is on"),
        (lambda: se_scale(torch.randn(1, 3, 4, 4), torch.randn(1, 3), impl="fast"), ValueError, "impl must be one of"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_compiles_without_graph_breaks():
    from effgan._backend import available_impls

    impl = "triton" if "triton" in available_impls("cpu", OP) else "ref"
    fn = lambda x, g: se_scale(x, g, impl=impl).pow(2).sum()  # noqa: E731
    gen = torch.Generator().manual_seed(9)
    x, gate = _inputs((2, 3, 5, 4), torch.float32, "cpu", False, gen)
    a, b = x.clone().requires_grad_(), gate.clone().requires_grad_()
    out = torch.compile(fn, fullgraph=True, backend="aot_eager")(a, b)
    out.backward()
    a2, b2 = x.clone().requires_grad_(), gate.clone().requires_grad_()
    out2 = fn(a2, b2)
    out2.backward()
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(a.grad, a2.grad)
    torch.testing.assert_close(b.grad, b2.grad)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_se_project_matches_scale_then_conv(channels_last, dtype):
    from effgan.ops import se_project, se_project_ref

    gen = torch.Generator().manual_seed(12)
    x, gate = _inputs((2, 5, 7, 6), dtype, "cpu", channels_last, gen)
    weight = rand((3, 5, 1, 1), dtype=dtype, gen=gen)
    g = rand((2, 3, 7, 6), dtype=dtype, gen=gen)
    y, grads = _run(se_project, (x, gate, weight), g)
    y_ref, grads_ref = _run(se_project_ref, (x, gate, weight), g)
    assert_close(y, y_ref, dtype, "y")
    for label, a, e in zip(("x", "gate", "weight"), grads, grads_ref):
        assert_close(a, e, dtype, f"d{label}")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert y.is_contiguous(memory_format=fmt)
    with pytest.raises(ValueError, match="weight must have shape"):
        se_project(x, gate, rand((3, 4, 1, 1), dtype=dtype))
    with pytest.raises(ValueError, match="gate must have shape"):
        se_project(x, gate[:1], weight)
