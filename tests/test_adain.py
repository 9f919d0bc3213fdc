"""adain: every backend against the reference, and the AdaIN module against explicit torch."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from effgan.nn import AdaIN
from effgan.ops import adain, adain_ref
from op_harness import (
    LOW_PRECISION,
    assert_close,
    assert_low_precision_ok,
    fast_backends,
    rand,
    seeded,
)

OP = "adain"
NAMES = ("x", "style_scale", "style_bias", "noise", "noise_weight", "bias")
# Odd sizes, a single-pixel plane, and a sample count / channel count that are not powers of two.
SHAPES = [(2, 3, 5, 7), (1, 1, 1, 1), (2, 3, 17, 19)]
# (act, with noise, with bias): every activation, and each optional operand on and off.
CASES = [("leaky_relu", True, True), ("identity", False, False), ("relu", True, False),
         ("silu", False, True), ("tanh", True, True)]


def _inputs(shape, dtype, device, channels_last, with_noise, with_bias, gen):
    N, C, H, W = shape
    x = rand(shape, dtype=dtype, device=device, channels_last=channels_last, scale=2.0, offset=0.5, gen=gen)
    scale = rand((N, C), dtype=dtype, device=device, offset=1.0, gen=gen)
    shift = rand((N, C), dtype=dtype, device=device, gen=gen)
    noise = rand((N, 1, H, W), dtype=dtype, device=device, gen=gen) if with_noise else None
    nw = rand((C,), dtype=dtype, device=device, gen=gen) if with_noise else None
    bias = rand((C,), dtype=dtype, device=device, gen=gen) if with_bias else None
    return x, scale, shift, noise, nw, bias


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
    for act, with_noise, with_bias in CASES:
        tensors = _inputs(shape, dtype, device, channels_last, with_noise, with_bias, gen)
        g = rand(shape, dtype=dtype, device=device, gen=gen)
        kw = dict(act=act, negative_slope=0.2, eps=1e-5)
        y, grads = _run(adain, tensors, g, impl=impl, **kw)
        y_ref, grads_ref = _run(adain_ref, tensors, g, **kw)
        name = f"{impl} {act} noise={with_noise} bias={with_bias}"
        assert_close(y, y_ref, dtype, f"{name} y")
        for label, a, e in zip(NAMES, grads, grads_ref):
            assert (a is None) == (e is None), label
            if a is not None:
                assert_close(a, e, dtype, f"{name} d{label}")
        assert y.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        assert grads[0].stride() == tensors[0].stride()


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_strided_operands(impl, device, poison_outputs):
    """Style operands sliced from one tensor, noise shared over the batch (stride 0), a permuted x."""
    gen = torch.Generator().manual_seed(11)
    N, C, H, W = 3, 4, 6, 5
    x = rand((N, H, C, W), device=device, gen=gen).permute(0, 2, 1, 3)  # neither NCHW nor channels_last
    styles = rand((N, 2 * C), device=device, offset=0.5, gen=gen)
    noise = rand((1, 1, H, W), device=device, gen=gen).expand(N, 1, H, W)
    nw = rand((2 * C,), device=device, gen=gen)[::2]
    bias = rand((C,), device=device, gen=gen)
    g = rand((N, C, H, W), device=device, gen=gen)

    def split(fn, **kw):
        def call(x, styles, noise, nw, bias):
            scale, shift = styles.chunk(2, dim=1)
            return fn(x, scale, shift, noise, nw, bias, **kw)
        return call

    y, grads = _run(split(adain, impl=impl), (x, styles, noise, nw, bias), g)
    y_ref, grads_ref = _run(split(adain_ref), (x, styles, noise, nw, bias), g)
    assert_close(y, y_ref, torch.float32, "y")
    for label, a, e in zip(("x", "styles", "noise", "noise_weight", "bias"), grads, grads_ref):
        assert_close(a, e, torch.float32, f"d{label}")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("dtype", LOW_PRECISION)
@pytest.mark.parametrize("channels_last", [False, True])
def test_low_precision_within_twice_eager_error(impl, device, dtype, channels_last):
    gen = torch.Generator().manual_seed(7)
    shape = (2, 5, 13, 17)
    tensors = _inputs(shape, dtype, device, channels_last, with_noise=True, with_bias=True, gen=gen)
    g = rand(shape, dtype=dtype, device=device, gen=gen)
    y, grads = _run(adain, tensors, g, impl=impl)
    y_low, grads_low = _run(adain_ref, tensors, g)
    exact = [t.double() for t in tensors]
    y_64, grads_64 = _run(adain_ref, exact, g.double())
    assert y.dtype == dtype
    assert_low_precision_ok(y, y_low, y_64, dtype, "y")
    for label, a, lo, e in zip(NAMES, grads, grads_low, grads_64):
        assert a.dtype == dtype, label
        assert_low_precision_ok(a, lo, e, dtype, f"d{label}")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_float32_parameters_with_half_input(impl, device):
    """A float32 style affine feeding a bfloat16 activation: output and grads keep each operand's dtype."""
    gen = torch.Generator().manual_seed(8)
    x, scale, shift, noise, nw, bias = _inputs((2, 3, 6, 7), torch.float32, device, False, True, True, gen)
    tensors = (x.bfloat16(), scale, shift, noise.bfloat16(), nw, bias)
    g = rand(x.shape, dtype=torch.bfloat16, device=device, gen=gen)
    y, grads = _run(adain, tensors, g, impl=impl)
    y_64, grads_64 = _run(adain_ref, [t.double() for t in tensors], g.double())
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.double(), y_64, atol=3e-2, rtol=2e-2)
    for label, t, a, e in zip(NAMES, tensors, grads, grads_64):
        assert a.dtype == t.dtype, label
        torch.testing.assert_close(a.double(), e, atol=0.1, rtol=3e-2, msg=lambda m: f"d{label}: {m}")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_gradcheck_float64(impl, device):
    gen = torch.Generator().manual_seed(3)
    args = [t.requires_grad_() for t in _inputs((2, 3, 3, 4), torch.float64, device, False, True, True, gen)]
    fn = lambda *a: adain(*a, act="silu", impl=impl)  # noqa: E731
    # fast_mode checks random projections of the Jacobian: few kernel calls, which the interpreter needs.
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5, fast_mode=True)


def test_gradcheck_reference():
    gen = torch.Generator().manual_seed(4)
    args = [t.requires_grad_() for t in _inputs((2, 3, 3, 4), torch.float64, "cpu", True, True, True, gen)]
    for act in ("silu", "tanh"):  # relu / leaky_relu have kinks that finite differences straddle
        fn = lambda *a: adain_ref(*a, act=act)  # noqa: E731
        assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_deterministic(impl, device):
    gen = torch.Generator().manual_seed(5)
    shape = (2, 4, 17, 19)
    tensors = _inputs(shape, torch.float32, device, False, True, True, gen)
    g = rand(shape, device=device, gen=gen)
    y1, g1 = _run(adain, tensors, g, impl=impl)
    y2, g2 = _run(adain, tensors, g, impl=impl)
    assert torch.equal(y1, y2)
    for label, a, b in zip(NAMES, g1, g2):
        assert torch.equal(a, b), label


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("act", ["leaky_relu", "identity"])
def test_large_mean_small_variance(impl, device, act):
    """Statistics of h stay accurate when |mean(h)| >> std(h), on both sides of the leaky kink."""
    gen = torch.Generator().manual_seed(6)
    N, C, H, W = 1, 2, 19, 17
    x = rand((N, C, H, W), device=device, scale=1e-2, gen=gen) + torch.tensor([1e3, -1e3], device=device).view(1, C, 1, 1)
    scale, shift = rand((N, C), device=device, gen=gen), rand((N, C), device=device, gen=gen)
    noise, nw = rand((N, 1, H, W), device=device, gen=gen), torch.full((C,), 1e-2, device=device)
    bias = torch.full((C,), 5.0, device=device)
    args = (x, scale, shift, noise, nw, bias)
    y = adain(*args, act=act, impl=impl)
    y_ref = adain_ref(*[t.double() for t in args], act=act).float()
    torch.testing.assert_close(y, y_ref, atol=3e-3, rtol=1e-3)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_double_backward_raises(impl, device):
    gen = torch.Generator().manual_seed(9)
    x, scale, shift, noise, nw, bias = _inputs((1, 2, 4, 4), torch.float32, device, False, True, True, gen)
    x.requires_grad_()
    y = adain(x, scale, shift, noise, nw, bias, act="silu", impl=impl)
    (gx,) = torch.autograd.grad(y.pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gx.sum().backward()


def _explicit_adain(module, x, w, noise):
    """The layer written out in plain torch ops from the module's parameters."""
    C = module.num_features
    styles = F.linear(w, module.style.weight, module.style.bias)
    u = x + noise * module.noise_weight.view(1, C, 1, 1) + module.bias.view(1, C, 1, 1)
    h = F.instance_norm(F.leaky_relu(u, 0.2), eps=module.eps)
    return h * styles[:, :C, None, None] + styles[:, C:, None, None]


@pytest.mark.parametrize("impl,device", fast_backends(OP) + [pytest.param("ref", "cpu", id="ref-cpu")])
def test_module_against_explicit_torch(impl, device):
    torch.manual_seed(1)
    C, w_dim = 5, 7
    layer = AdaIN(C, w_dim, impl=impl).to(device)
    with torch.no_grad():  # move every parameter off its initial value
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    ref_layer = AdaIN(C, w_dim).to(device)
    ref_layer.load_state_dict(layer.state_dict())
    x = rand((2, C, 9, 11), device=device, offset=0.5).requires_grad_()
    w = rand((2, w_dim), device=device).requires_grad_()
    noise = rand((2, 1, 9, 11), device=device).requires_grad_()
    x2, w2, noise2 = (t.detach().clone().requires_grad_() for t in (x, w, noise))
    y = layer(x, w, noise)
    y_t = _explicit_adain(ref_layer, x2, w2, noise2)
    g = torch.randn_like(y_t)
    y.backward(g)
    y_t.backward(g)
    assert_close(y, y_t, torch.float32, "y")
    for label, a, e in (("x", x, x2), ("w", w, w2), ("noise", noise, noise2)):
        assert_close(a.grad, e.grad, torch.float32, f"d{label}")
    for (name, p), p_t in zip(layer.named_parameters(), ref_layer.parameters()):
        assert_close(p.grad, p_t.grad, torch.float32, f"d{name}")


def test_module_parameters_init_and_noise():
    layer = AdaIN(4, 6, impl="ref")
    assert list(layer.state_dict()) == ["noise_weight", "bias", "style.weight", "style.bias"]
    assert torch.equal(layer.style.bias, torch.tensor([1.0] * 4 + [0.0] * 4))
    assert torch.equal(layer.noise_weight, torch.zeros(4)) and torch.equal(layer.bias, torch.zeros(4))
    assert repr(layer) == (
        "AdaIN(\n  4, w_dim=6, eps=1e-05, noise=True, act=leaky_relu, negative_slope=0.2, impl=ref\n"
        "  (style): StyleAffine(in_features=6, out_features=8, bias=True)\n)"
    )
    with torch.no_grad():
        layer.noise_weight.fill_(0.7)
    x, w = torch.randn(2, 4, 5, 6), torch.randn(2, 6)
    # Drawn noise: reproducible from a generator, fresh without one, one image shared by the channels.
    y1 = layer(x, w, generator=torch.Generator().manual_seed(0))
    y2 = layer(x, w, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y1, y2)
    assert not torch.equal(layer(x, w), layer(x, w))
    expected_noise = torch.randn((2, 1, 5, 6), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(y1, layer(x, w, expected_noise))

    quiet = AdaIN(4, 6, noise=False, act="relu", impl="ref")
    assert quiet.noise_weight is None and "noise_weight" not in quiet.state_dict()
    assert "noise=False, act=relu, impl=ref" in repr(quiet)
    torch.testing.assert_close(quiet(x, w), quiet(x, w))
    scale, shift = quiet.styles(w)
    torch.testing.assert_close(quiet(x, w), adain_ref(x, scale, shift, bias=quiet.bias, act="relu"))


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: adain(torch.randn(2, 3, 4), torch.randn(2, 3), torch.randn(2, 3)), ValueError, "x must be 4-D"),
        (lambda: adain(torch.ones(2, 3, 4, 4, dtype=torch.int32), torch.randn(2, 3), torch.randn(2, 3)),
         TypeError, "x must be a floating"),
        (lambda: adain("x", torch.randn(2, 3), torch.randn(2, 3)), TypeError, "x must be a torch.Tensor"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 4), torch.randn(2, 3)), ValueError,
         "style_scale must have shape"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), None), TypeError,
         "style_bias must be a torch.Tensor"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(3)), ValueError,
         "style_bias must have shape"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 1, 4, 4)),
         ValueError, "noise was given without noise_weight"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3), None, torch.randn(3)),
         ValueError, "noise_weight was given without noise"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 3, 4, 4),
                       torch.randn(3)), ValueError, "noise must have shape"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 1, 4, 4).double(),
                       torch.randn(3)), TypeError, "noise has dtype"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3), torch.randn(2, 1, 4, 4),
                       torch.randn(2)), ValueError, "noise_weight must have shape"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3), bias=torch.randn(3, 1)),
         ValueError, "bias must have shape"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3, device="meta"), torch.randn(2, 3)), ValueError,
         "style_scale is on meta"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3), eps=-1.0), ValueError, "eps"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3), negative_slope="a"),
         TypeError, "negative_slope"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3), act="gelu"), ValueError,
         "act must be one of"),
        (lambda: adain(torch.randn(2, 3, 4, 4), torch.randn(2, 3), torch.randn(2, 3), impl="cuda"), ValueError,
         "impl must be one of"),
        (lambda: AdaIN(0, 4), ValueError, "num_features"),
        (lambda: AdaIN(3, 0), ValueError, "w_dim"),
        (lambda: AdaIN(3, 4, negative_slope="a"), TypeError, "negative_slope must be a number"),
        (lambda: AdaIN(3, 4, eps=float("nan")), ValueError, "eps must be a finite number"),
        (lambda: AdaIN(3, 4, act="gelu"), ValueError, "act must be one of"),
        (lambda: AdaIN(3, 4, impl="fast"), ValueError, "impl must be one of"),
        # a noise image passed where the flag goes built a noisy layer, whatever the tensor held
        (lambda: AdaIN(3, 4, noise=torch.zeros(2, 1, 4, 4)), TypeError, "noise must be a bool"),
        (lambda: AdaIN(3, 4, noise="no"), TypeError, "noise must be a bool"),
        (lambda: AdaIN(3, 4)(torch.randn(2, 5, 4, 4), torch.randn(2, 4)), ValueError, "num_features=3"),
        (lambda: AdaIN(3, 4)(torch.randn(2, 3, 4, 4), torch.randn(2, 5)), ValueError, r"w must have shape \(N, 4\)"),
        (lambda: AdaIN(3, 4, noise=False)(torch.randn(2, 3, 4, 4), torch.randn(2, 4), torch.randn(2, 1, 4, 4)),
         ValueError, "noise=False"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_compiles_without_graph_breaks():
    """The module compiles with fullgraph=True (custom ops + fake kernels) and matches eager."""
    from effgan._backend import available_impls

    impl = "triton" if "triton" in available_impls("cpu", OP) else "ref"
    torch.manual_seed(2)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    layer = AdaIN(4, 6, impl=impl)
    with torch.no_grad():
        layer.noise_weight.normal_()
        layer.bias.normal_()

    def step(x, w, noise):
        return layer(conv(x), w, noise)

    x, w, noise = torch.randn(2, 3, 8, 8, requires_grad=True), torch.randn(2, 6), torch.randn(2, 1, 8, 8)
    y = torch.compile(step, fullgraph=True, backend="aot_eager")(x, w, noise)
    y.sum().backward()
    grads = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    x2 = x.detach().clone().requires_grad_()
    y2 = step(x2, w, noise)
    y2.sum().backward()
    torch.testing.assert_close(y, y2)
    torch.testing.assert_close(x.grad, x2.grad)
    for a, p in zip(grads, layer.parameters()):
        torch.testing.assert_close(a, p.grad)
