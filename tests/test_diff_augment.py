"""diff_augment: every backend against the reference (the classic op sequence) with shared parameters."""
import pytest
import torch

from effgan.nn import DiffAugment
from effgan.ops import diff_augment, diff_augment_ref, sample_diff_augment_params
from op_harness import LOW_PRECISION, assert_close, assert_low_precision_ok, fast_backends, rand

OP = "diff_augment"
POLICIES = ["color,translation,cutout", "color", "translation", "cutout", "translation,cutout", "color,cutout"]
# Odd sizes, one channel, 5 channels, a single-pixel image, and more pixels than one block.
SHAPES = [(3, 3, 13, 11), (2, 1, 8, 8), (2, 5, 9, 7), (2, 3, 1, 1), (1, 3, 37, 41)]


def _run(fn, x, g, **kw):
    leaf = x.detach().clone().requires_grad_()
    y = fn(leaf, **kw)
    y.backward(g)
    return y.detach(), leaf.grad


# The full policy in both dtypes on every shape; each subset in float64 on two shapes.
CASES = [(POLICIES[0], dtype, SHAPES) for dtype in (torch.float64, torch.float32)]
CASES += [(policy, torch.float64, SHAPES[1:3]) for policy in POLICIES[1:]]


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("policy,dtype,shapes", CASES, ids=[f"{p}-{str(d)[6:]}" for p, d, _ in CASES])
def test_matches_reference(impl, device, policy, dtype, shapes, channels_last, poison_outputs):
    for i, shape in enumerate(shapes):
        gen = torch.Generator().manual_seed(100 + i)
        x = rand(shape, dtype=dtype, device=device, channels_last=channels_last, gen=gen, offset=0.3)
        g = rand(shape, dtype=dtype, device=device, gen=gen)
        params = sample_diff_augment_params(shape[0], shape[2], shape[3], policy, gen, device)
        y, dx = _run(diff_augment, x, g, policy=policy, params=params, impl=impl)
        y_ref, dx_ref = _run(diff_augment_ref, x, g, policy=policy, params=params)
        assert_close(y, y_ref, dtype, f"{shape} y")
        assert_close(dx, dx_ref, dtype, f"{shape} dx")
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        assert y.is_contiguous(memory_format=fmt) and dx.is_contiguous(memory_format=fmt)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_seeded_generator_repeats_and_backends_agree(impl, device):
    x = rand((4, 3, 16, 16), device=device, gen=torch.Generator().manual_seed(1))
    a = diff_augment(x, generator=torch.Generator().manual_seed(7), impl=impl)
    b = diff_augment(x, generator=torch.Generator().manual_seed(7), impl=impl)
    r = diff_augment_ref(x, generator=torch.Generator().manual_seed(7))
    c = diff_augment(x, generator=torch.Generator().manual_seed(8), impl=impl)
    assert torch.equal(a, b)
    assert_close(a, r, torch.float32)
    assert not torch.allclose(a, c)
    # The module draws from the generator the same way.
    m = DiffAugment(impl=impl)(x, torch.Generator().manual_seed(7))
    assert torch.equal(m, a)


def test_parameter_ranges():
    n, h, w = 4000, 20, 13
    p = sample_diff_augment_params(n, h, w, "color,translation,cutout", torch.Generator().manual_seed(0))
    assert p.brightness.min() >= -0.5 and p.brightness.max() < 0.5
    assert p.saturation.min() >= 0.0 and p.saturation.max() < 2.0 and p.saturation.max() > 1.9
    assert p.contrast.min() >= 0.5 and p.contrast.max() < 1.5
    sh, sw = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)  # 3 and 2
    assert p.translation[:, 0].min() == -sh and p.translation[:, 0].max() == sh
    assert p.translation[:, 1].min() == -sw and p.translation[:, 1].max() == sw
    ch, cw = p.cutout_size
    assert (ch, cw) == (10, 7)
    # Centres range over [0, size + (1 - cut % 2)): corners from -cut // 2 to size - cut // 2 - cut % 2.
    assert p.cutout_origin[:, 0].min() == -5 and p.cutout_origin[:, 0].max() == 15
    assert p.cutout_origin[:, 1].min() == -3 and p.cutout_origin[:, 1].max() == 9
    assert p.translation.dtype == p.cutout_origin.dtype == torch.int32
    only = sample_diff_augment_params(2, 8, 8, "cutout")
    assert only.brightness is None and only.translation is None and only.cutout_origin is not None


def test_reference_against_direct_definition():
    """The reference's translation and cutout against per-sample slicing; color against its formulas."""
    gen = torch.Generator().manual_seed(3)
    x = rand((6, 3, 9, 12), dtype=torch.float64, gen=gen)
    p = sample_diff_augment_params(6, 9, 12, "translation,cutout", gen)
    y = diff_augment_ref(x, "translation,cutout", params=p)
    for n in range(6):
        dh, dw = p.translation[n].tolist()
        expected = torch.zeros_like(x[n])
        src = x[n, :, max(dh, 0):9 + min(dh, 0), max(dw, 0):12 + min(dw, 0)]
        expected[:, max(-dh, 0):max(-dh, 0) + src.shape[1], max(-dw, 0):max(-dw, 0) + src.shape[2]] = src
        top, left = p.cutout_origin[n].tolist()
        expected[:, max(top, 0):max(top + p.cutout_size[0], 0), max(left, 0):max(left + p.cutout_size[1], 0)] = 0
        torch.testing.assert_close(y[n], expected)
    pc = sample_diff_augment_params(6, 9, 12, "color", gen)
    yc = diff_augment_ref(x, "color", params=pc)
    b, s, c = (t.double()[:, None, None, None] for t in (pc.brightness, pc.saturation, pc.contrast))
    # Saturation keeps the per-pixel channel mean; contrast keeps the per-sample mean (mean(x) + b).
    torch.testing.assert_close(yc.mean((1, 2, 3), keepdim=True), x.mean((1, 2, 3), keepdim=True) + b)
    dev = (x - x.mean(1, keepdim=True)) * s * c
    torch.testing.assert_close(yc - yc.mean(1, keepdim=True), dev)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("dtype", LOW_PRECISION)
@pytest.mark.parametrize("channels_last", [False, True])
def test_low_precision_within_twice_eager_error(impl, device, dtype, channels_last):
    gen = torch.Generator().manual_seed(5)
    shape = (3, 3, 19, 23)
    x = rand(shape, dtype=dtype, device=device, channels_last=channels_last, gen=gen, offset=0.5)
    g = rand(shape, dtype=dtype, device=device, gen=gen)
    params = sample_diff_augment_params(3, 19, 23, "color,translation,cutout", gen, device)
    y, dx = _run(diff_augment, x, g, params=params, impl=impl)
    y_low, dx_low = _run(diff_augment_ref, x, g, params=params)
    y_64, dx_64 = _run(diff_augment_ref, x.double(), g.double(), params=params)
    assert y.dtype == dx.dtype == dtype
    assert_low_precision_ok(y, y_low, y_64, dtype, "y")
    assert_low_precision_ok(dx, dx_low, dx_64, dtype, "dx")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_gradcheck_float64(impl, device):
    gen = torch.Generator().manual_seed(9)
    x = rand((2, 3, 5, 6), dtype=torch.float64, device=device, gen=gen).requires_grad_()
    params = sample_diff_augment_params(2, 5, 6, "color,translation,cutout", gen, device)
    fn = lambda t: diff_augment(t, params=params, impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5, fast_mode=True)


def test_gradcheck_reference():
    gen = torch.Generator().manual_seed(10)
    x = rand((2, 3, 5, 6), dtype=torch.float64, gen=gen).requires_grad_()
    params = sample_diff_augment_params(2, 5, 6, "color,translation,cutout", gen)
    assert torch.autograd.gradcheck(lambda t: diff_augment_ref(t, params=params), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_deterministic(impl, device):
    gen = torch.Generator().manual_seed(11)
    x = rand((2, 3, 40, 33), device=device, gen=gen)
    g = rand((2, 3, 40, 33), device=device, gen=gen)
    params = sample_diff_augment_params(2, 40, 33, "color,translation,cutout", gen, device)
    y1, d1 = _run(diff_augment, x, g, params=params, impl=impl)
    y2, d2 = _run(diff_augment, x, g, params=params, impl=impl)
    assert torch.equal(y1, y2) and torch.equal(d1, d2)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_double_backward_raises(impl, device):
    x = rand((1, 3, 4, 4), device=device).requires_grad_()
    y = diff_augment(x, generator=torch.Generator().manual_seed(0), impl=impl)
    (gx,) = torch.autograd.grad((y * x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gx.sum().backward()


def test_module_and_empty_policy():
    mod = DiffAugment("color,cutout", impl="ref")
    assert repr(mod) == "DiffAugment(policy='color,cutout', impl=ref)"
    assert not list(mod.state_dict())
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(mod(x, torch.Generator().manual_seed(2)),
                               diff_augment_ref(x, "color,cutout", torch.Generator().manual_seed(2)))
    assert diff_augment(x, "", impl="ref") is x


_x = torch.randn(2, 3, 4, 4)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: diff_augment(_x, "color,flip"), ValueError, "unknown transform 'flip'"),
        (lambda: diff_augment(_x, "cutout,color"), ValueError, "in the order"),
        (lambda: diff_augment(_x, "color,color"), ValueError, "twice"),
        (lambda: diff_augment(_x, ["color"]), TypeError, "policy must be"),
        (lambda: diff_augment(_x, generator=3), TypeError, "generator must be"),
        (lambda: diff_augment(_x[0]), ValueError, "x must be 4-D"),
        (lambda: diff_augment(_x.long()), TypeError, "x must be a floating"),
        (lambda: diff_augment(_x, impl="fast"), ValueError, "impl must be one of"),
        (lambda: diff_augment(_x, params=sample_diff_augment_params(2, 4, 5)), ValueError, "params were sampled"),
        (lambda: diff_augment(_x, "color", params=sample_diff_augment_params(2, 4, 4)), ValueError, "params were sampled for policy"),
        (lambda: diff_augment(_x, params={}), TypeError, "params must be"),
        (lambda: sample_diff_augment_params(0, 4, 4), ValueError, "n must be"),
        (lambda: DiffAugment("colour"), ValueError, "unknown transform"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def _hand_built(**change):
    """Params sampled for (2, 4, 4) with every transform, then fields replaced (dataclasses.replace)."""
    import dataclasses

    p = sample_diff_augment_params(2, 4, 4, "color,translation,cutout", torch.Generator().manual_seed(0))
    return dataclasses.replace(p, **change)


@pytest.mark.parametrize("impl", ["ref", "cpp", "triton"])
@pytest.mark.parametrize(
    "change, match",
    [
        (dict(translation=None), "params.translation must be a tensor"),
        (dict(saturation=None), "params.saturation must be a tensor"),
        (dict(policy=("translation", "cutout")), "params.brightness is set but the policy"),
        (dict(cutout_origin=torch.zeros(2, 2)), "params.cutout_origin must be a torch.int32 tensor"),
        (dict(translation=torch.zeros(3, 2, dtype=torch.int32)), "of shape \\(2, 2\\)"),
        (dict(brightness=torch.zeros(2, dtype=torch.float64)), "params.brightness must be a torch.float32"),
        (dict(cutout_size=(2.5, 4)), "cutout_size must be a pair of ints"),
        (dict(cutout_size=(2, -1)), "cutout_size must be a pair of ints"),
    ],
)
def test_hand_built_params_are_checked_on_every_backend(impl, change, match):
    """A transform whose tensors are missing must not be skipped silently by the kernels (nor fail
    with an AttributeError in the reference), and a field of the wrong form must not be truncated."""
    params = _hand_built(**change)
    policy = ",".join(params.policy)
    with pytest.raises(ValueError, match=match):
        diff_augment(_x, policy, params=params, impl=impl)


def test_compiles_without_graph_breaks():
    from effgan._backend import available_impls

    impl = "triton" if "triton" in available_impls("cpu", OP) else "ref"
    conv = torch.nn.Conv2d(3, 1, 3)
    aug = DiffAugment(impl=impl)

    def d_out(x, params):
        return conv(aug(x, params=params)).mean()

    x = torch.randn(2, 3, 10, 10, requires_grad=True)
    params = sample_diff_augment_params(2, 10, 10, generator=torch.Generator().manual_seed(4))
    compiled = torch.compile(d_out, fullgraph=True, backend="aot_eager")
    out = compiled(x, params)
    (gx,) = torch.autograd.grad(out, x)
    x2 = x.detach().clone().requires_grad_()
    out2 = d_out(x2, params)
    (gx2,) = torch.autograd.grad(out2, x2)
    torch.testing.assert_close(out, out2)
    torch.testing.assert_close(gx, gx2)
    # Parameters drawn inside the compiled region from torch's default generator.
    compiled_sampling = torch.compile(lambda t: aug(t).sum(), fullgraph=True, backend="aot_eager")
    torch.manual_seed(6)
    out = compiled_sampling(x)
    torch.manual_seed(6)
    torch.testing.assert_close(out, aug(x).sum())


@pytest.mark.parametrize("impl,device", fast_backends(OP) + [("ref", "cpu")])
@pytest.mark.parametrize("policy", ["cutout", "translation,cutout"])
def test_non_finite_values_under_the_cutout_are_zeroed_like_every_other_pixel(impl, device, policy):
    # Cutout replaces its square with zeros; the fused kernels never read the pixels there. The
    # reference once multiplied by a 0/1 mask instead, turning inf and NaN there into NaN (and a
    # NaN output gradient there into a NaN input gradient): backends disagreed on the same call.
    shape = (3, 2, 12, 10)
    gen = torch.Generator().manual_seed(5)
    x = rand(shape, dtype=torch.float64, device=device, gen=gen)
    g = rand(shape, dtype=torch.float64, device=device, gen=gen)
    p = sample_diff_augment_params(shape[0], shape[2], shape[3], policy, gen, device)
    cut = torch.ones(shape[0], shape[2], shape[3], dtype=torch.bool)
    for n, (top, left) in enumerate(p.cutout_origin.tolist()):
        cut[n, max(top, 0):max(top + p.cutout_size[0], 0), max(left, 0):max(left + p.cutout_size[1], 0)] = False
    cut = cut[:, None].expand(shape).to(device)
    assert (~cut).any()
    specials = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=torch.float64, device=device)
    fill = specials[torch.arange(int((~cut).sum())) % 3].to(device)
    x_bad = x.masked_scatter(~cut, fill) if policy == "cutout" else x.clone()
    g_bad = g.masked_scatter(~cut, fill)
    y, dx = _run(diff_augment, x_bad, g_bad, policy=policy, params=p, impl=impl)
    if policy == "cutout":
        assert torch.equal(y[~cut], torch.zeros_like(y[~cut]))
        torch.testing.assert_close(y[cut], x[cut], rtol=0, atol=0)
    assert torch.isfinite(y).all() and torch.isfinite(dx).all()
    if impl != "ref":
        y_ref, dx_ref = _run(diff_augment_ref, x_bad, g_bad, policy=policy, params=p)
        assert_close(y, y_ref, torch.float64, "y")
        assert_close(dx, dx_ref, torch.float64, "dx")
