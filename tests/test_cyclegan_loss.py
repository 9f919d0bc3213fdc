"""cyclegan_generator_loss / gan_loss_d: every backend against a composition of torch's loss modules."""
import pytest
import torch
from torch import nn

from effgan._backend import launcher_module
from effgan._signs import sign_bytes, unpack_signs
from effgan.nn import CycleGANGeneratorLoss, GANDiscriminatorLoss
from effgan.ops import cyclegan_generator_loss, cyclegan_generator_loss_ref, gan_loss_d, gan_loss_d_ref
from op_harness import LOW_PRECISION, assert_close, assert_low_precision_ok, fast_backends, rand

OP = "cyclegan_loss"
NAMES = ("pred_fake_b", "pred_fake_a", "rec_a", "real_a", "rec_b", "real_b", "idt_a", "idt_b")
PARTS = ("total", "loss_G_A", "loss_G_B", "cycle_A", "cycle_B", "idt_A", "idt_B")


def torch_modules_loss(pred_fake_b, pred_fake_a, rec_a, real_a, rec_b, real_b, idt_a=None, idt_b=None, *,
                       gan_mode="lsgan", lambda_a=10.0, lambda_b=10.0, lambda_identity=0.5, target_real=1.0):
    """The reference CycleGAN's generator objective, written with nn.MSELoss/BCEWithLogitsLoss/L1Loss."""
    crit_gan = nn.MSELoss() if gan_mode == "lsgan" else nn.BCEWithLogitsLoss()
    crit_l1 = nn.L1Loss()

    def gan(preds):
        preds = preds if isinstance(preds, (list, tuple)) else [preds]
        return sum(crit_gan(p, torch.full_like(p, target_real)) for p in preds) / len(preds)

    parts = [gan(pred_fake_b), gan(pred_fake_a), crit_l1(rec_a, real_a) * lambda_a, crit_l1(rec_b, real_b) * lambda_b]
    if idt_a is not None:
        parts += [crit_l1(idt_a, real_b) * lambda_b * lambda_identity, crit_l1(idt_b, real_a) * lambda_a * lambda_identity]
    return sum(parts), parts


def _inputs(img_shape, map_shape, dtype, identity, gen, channels_last=False, heads=1, device="cpu"):
    def img():
        return rand(img_shape, dtype=dtype, gen=gen, channels_last=channels_last, scale=0.6, device=device)

    def pred():
        maps = [rand(map_shape, dtype=dtype, gen=gen, scale=1.5, offset=0.3, device=device) for _ in range(heads)]
        return maps[0] if heads == 1 else maps

    t = [pred(), pred(), img(), img(), img(), img()]
    return t + ([img(), img()] if identity else [None, None])


def _leaves(tensors):
    out = []
    for t in tensors:
        if isinstance(t, list):
            out.append([p.detach().clone().requires_grad_() for p in t])
        else:
            out.append(None if t is None else t.detach().clone().requires_grad_())
    return out


def _flat_grads(leaves):
    grads = []
    for t in leaves:
        if isinstance(t, list):
            grads += [p.grad for p in t]
        elif t is not None:
            grads.append(t.grad)
    return grads


CASES = [
    # (identity, channels_last, heads, target_real, img_shape, map_shape)
    (True, False, 1, 1.0, (2, 3, 37, 37), (2, 1, 5, 7)),
    (False, True, 1, 0.9, (1, 3, 37, 37), (1, 1, 5, 7)),
    (True, True, 2, 0.9, (2, 3, 13, 11), (2, 1, 6, 6)),
]


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_matches_torch_modules_all_grads(impl, device, dtype, gan_mode, case, poison_outputs):
    identity, channels_last, heads, target, img_shape, map_shape = CASES[case]
    gen = torch.Generator().manual_seed(11 + case)
    tensors = _inputs(img_shape, map_shape, dtype, identity, gen, channels_last, heads, device=device)
    kw = dict(gan_mode=gan_mode, lambda_a=10.0, lambda_b=7.0, lambda_identity=0.5, target_real=target)
    fused_leaves, torch_leaves = _leaves(tensors), _leaves(tensors)
    out = cyclegan_generator_loss(*fused_leaves, impl=impl, **kw)
    total, parts = torch_modules_loss(*torch_leaves, **kw)
    out.total.backward()
    total.backward()
    assert_close(out.total, total.detach(), dtype, "total")
    expected_parts = parts + ([] if identity else [torch.zeros((), dtype=dtype, device=device)] * 2)
    for name, a, e in zip(PARTS[1:], out[1:], expected_parts):
        assert a.dim() == 0 and not a.requires_grad, name
        assert_close(a.to(dtype), e.detach(), dtype, name)
    fused_grads, torch_grads = _flat_grads(fused_leaves), _flat_grads(torch_leaves)
    assert len(fused_grads) == len(torch_grads) == (2 * heads + 6 if identity else 2 * heads + 4)
    for i, (a, e) in enumerate(zip(fused_grads, torch_grads)):
        assert a is not None and a.dtype == e.dtype
        assert_close(a, e, dtype, f"grad {i}")
    if channels_last:
        assert fused_leaves[2].grad.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("dtype", LOW_PRECISION)
@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla"])
def test_low_precision_within_twice_eager_error(impl, device, dtype, gan_mode):
    gen = torch.Generator().manual_seed(3)
    tensors = _inputs((2, 3, 19, 23), (2, 1, 5, 7), dtype, True, gen, device=device)
    kw = dict(gan_mode=gan_mode, target_real=0.9)
    results = []
    for fn, ts, extra in [(cyclegan_generator_loss, tensors, dict(impl=impl)),
                          (torch_modules_loss, tensors, {}),
                          (torch_modules_loss, [t.double() for t in tensors], {})]:
        leaves = _leaves(ts)
        out = fn(*leaves, **kw, **extra)
        out[0].backward()
        results.append((out[0].detach(), _flat_grads(leaves)))
    (fast, fast_g), (low, low_g), (exact, exact_g) = results
    assert_low_precision_ok(fast, low, exact, dtype, "total")
    for i, (a, lo, e) in enumerate(zip(fast_g, low_g, exact_g)):
        assert a.dtype == dtype
        assert_low_precision_ok(a, lo, e, dtype, f"grad {NAMES[i]}")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_only_requested_grads_and_l1_sign_at_zero(impl, device, poison_outputs):
    """Reals that do not require grad get none; a zero difference has gradient sign(0) = 0."""
    gen = torch.Generator().manual_seed(5)
    pb, pa, rec_a, real_a, rec_b, real_b, idt_a, idt_b = _inputs((2, 3, 9, 10), (1, 1, 5, 7), torch.float64, True, gen, device=device)
    rec_a[:, :, :4] = real_a[:, :, :4]  # exact ties
    leaves = [t.requires_grad_() for t in (pb, pa, rec_a, rec_b, idt_a, idt_b)]
    out = cyclegan_generator_loss(pb, pa, rec_a, real_a, rec_b, real_b, idt_a, idt_b, impl=impl)
    out.total.backward()
    ref_leaves = _leaves([pb, pa, rec_a, rec_b, idt_a, idt_b])
    rpb, rpa, rra, rrb, ria, rib = ref_leaves
    torch_modules_loss(rpb, rpa, rra, real_a, rrb, real_b, ria, rib)[0].backward()
    assert real_a.grad is None and real_b.grad is None
    assert (rec_a.grad[:, :, :4] == 0).all() and (rec_a.grad[:, :, 4:] != 0).all()
    for a, e in zip(leaves, ref_leaves):
        assert_close(a.grad, e.grad, torch.float64)


def _storage_order(t):
    return t.permute(0, 2, 3, 1).reshape(-1) if t.dim() == 4 and not t.is_contiguous() else t.reshape(-1)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.float64])
@pytest.mark.parametrize("channels_last", [False, True])
# 210 values: the last sign group is partial; 8214: several programs / blocks, each starting mid-tensor
@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (2, 3, 37, 37)])
def test_forward_keeps_two_bit_signs_of_each_pair(impl, device, dtype, channels_last, shape, poison_outputs):
    """The signs the backward uses: every value's sign(x - y) in storage order, ties 0, odd sizes;
    two pairs sharing y (read once) give bit-identical losses to the same pairs with y copied."""
    gen = torch.Generator().manual_seed(11)
    y = rand(shape, dtype=dtype, gen=gen, channels_last=channels_last).to(device)
    y2 = rand(shape, dtype=dtype, gen=gen, channels_last=channels_last).to(device)
    xs = [rand(shape, dtype=dtype, gen=gen, channels_last=channels_last).to(device) for _ in range(3)]
    xs[0][:, :, :2] = y[:, :, :2]  # exact ties: sign 0
    preds = [rand((2, 1, 3, 3), dtype=dtype, gen=gen).to(device)]
    kernels = launcher_module(impl, OP)
    args = (preds, [1.0], [1.0])
    shared = kernels.forward(*args, xs, [y, y2, y], [10.0, 10.0, 5.0], 0, True)
    copied = kernels.forward(*args, xs, [y, y2, y.clone()], [10.0, 10.0, 5.0], 0, True)
    torch.testing.assert_close(shared[0], copied[0], atol=0, rtol=0)
    assert len(shared) == 1 + len(xs)
    for x, yy, signs in zip(xs, [y, y2, y], shared[1:]):
        assert signs.dtype == torch.uint8 and signs.shape == (sign_bytes(x.numel()),)
        expected = torch.sign(_storage_order(x).double() - _storage_order(yy).double()).to(torch.int8)
        assert torch.equal(unpack_signs(signs.cpu(), x.numel()), expected.cpu())
    assert (unpack_signs(shared[1].cpu(), xs[0].numel()) == 0).sum() >= xs[0][:, :, :2].numel()
    without = kernels.forward(*args, xs, [y, y2, y], [10.0, 10.0, 5.0], 0, False)
    assert len(without) == 1
    torch.testing.assert_close(without[0], shared[0], atol=0, rtol=0)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_backward_of_a_forward_without_signs_is_refused(impl, device):
    gen = torch.Generator().manual_seed(2)
    x = rand((1, 3, 4, 4), gen=gen).to(device).requires_grad_()
    y = rand((1, 3, 4, 4), gen=gen).to(device)
    with pytest.raises(RuntimeError, match="save_signs"):
        torch.ops.effgan.cyclegan_loss_fwd([], [], [], [x], [y], [1.0], 0, False, impl)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_grads_of_the_logits_alone(impl, device):
    """Images that need no gradient: no signs are kept, and the logits still get theirs."""
    gen = torch.Generator().manual_seed(3)
    pb, pa, rec_a, real_a, rec_b, real_b, idt_a, idt_b = _inputs((1, 3, 9, 9), (1, 1, 4, 4), torch.float64, True, gen)
    imgs = [t.to(device) for t in (rec_a, real_a, rec_b, real_b, idt_a, idt_b)]
    pb, pa = pb.to(device).requires_grad_(), pa.to(device).requires_grad_()
    cyclegan_generator_loss(pb, pa, *imgs, impl=impl).total.backward()
    rpb, rpa = pb.detach().clone().requires_grad_(), pa.detach().clone().requires_grad_()
    torch_modules_loss(rpb, rpa, *imgs)[0].backward()
    assert_close(pb.grad, rpb.grad, torch.float64)
    assert_close(pa.grad, rpa.grad, torch.float64)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_vanilla_is_stable_for_extreme_logits(impl, device):
    p = torch.tensor([-800.0, -60.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 60.0, 800.0], dtype=torch.float32, device=device)
    img = torch.ones(1, 1, 2, 2, device=device)
    for target in (1.0, 0.9):
        pl = p.clone().requires_grad_()
        out = cyclegan_generator_loss(pl, p, img, img, img, img, gan_mode="vanilla", target_real=target, impl=impl)
        out.total.backward()
        p64 = p.double().requires_grad_()
        expected = nn.BCEWithLogitsLoss()(p64, torch.full_like(p64, target))
        expected.backward()
        assert torch.isfinite(out.total) and torch.isfinite(pl.grad).all()
        torch.testing.assert_close(out.loss_G_A.double(), expected.detach(), rtol=1e-6, atol=0)
        torch.testing.assert_close(pl.grad.double(), p64.grad, rtol=1e-5, atol=1e-9)
    # Tiny exp(-|x|): log(1 + e) keeps its relative accuracy (a naive log(1 + e) would give 0).
    big = torch.full((4,), 30.0, device=device)
    out = cyclegan_generator_loss(big, big, img, img, img, img, gan_mode="vanilla", impl=impl)
    torch.testing.assert_close(out.loss_G_A.double(), torch.tensor(30.0, dtype=torch.float64, device=device).neg().exp(), rtol=1e-5, atol=0)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla"])
def test_gradcheck_float64(impl, device, gan_mode):
    gen = torch.Generator().manual_seed(7)
    tensors = [t.requires_grad_() for t in _inputs((1, 2, 3, 5), (1, 1, 2, 3), torch.float64, True, gen, device=device)]
    # Keep |rec - real| away from 0, where the L1 kink would break finite differences.
    with torch.no_grad():
        for i in (2, 4, 6, 7):
            tensors[i].copy_(tensors[i].sign() * (tensors[i].abs() + 0.5) + 3 * (i % 2 - 0.5))

    def fn(*a):
        return cyclegan_generator_loss(*a, gan_mode=gan_mode, target_real=0.9, lambda_b=3.0, impl=impl).total

    assert torch.autograd.gradcheck(fn, tensors, eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_deterministic(impl, device):
    gen = torch.Generator().manual_seed(9)
    tensors = _inputs((2, 3, 40, 41), (2, 1, 30, 30), torch.float32, True, gen, device=device)
    runs = []
    for _ in range(2):
        leaves = _leaves(tensors)
        out = cyclegan_generator_loss(*leaves, impl=impl)
        out.total.backward()
        runs.append((list(out), _flat_grads(leaves)))
    for a, b in zip(runs[0][0] + runs[0][1], runs[1][0] + runs[1][1]):
        assert torch.equal(a, b)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla"])
def test_discriminator_loss(impl, device, gan_mode, poison_outputs):
    gen = torch.Generator().manual_seed(13)
    real = [rand((2, 1, 5, 7), gen=gen, offset=0.5, device=device), rand((2, 1, 3, 3), gen=gen, device=device)]
    fake = [rand((2, 1, 5, 7), gen=gen, offset=-0.5, device=device), rand((2, 1, 3, 3), gen=gen, device=device)]
    for r, f in [(real[0], fake[0]), (real, fake)]:
        leaves, tleaves = _leaves([r, f]), _leaves([r, f])
        loss = GANDiscriminatorLoss(gan_mode, target_real=0.9, impl=impl)(*leaves)
        crit = nn.MSELoss() if gan_mode == "lsgan" else nn.BCEWithLogitsLoss()
        rs, fs = [x if isinstance(x, list) else [x] for x in tleaves]
        expected = 0.5 * (sum(crit(p, torch.full_like(p, 0.9)) for p in rs) / len(rs)
                          + sum(crit(p, torch.zeros_like(p)) for p in fs) / len(fs))
        loss.backward()
        expected.backward()
        assert_close(loss, expected.detach(), torch.float32, "loss_d")
        for a, e in zip(_flat_grads(leaves), _flat_grads(tleaves)):
            assert_close(a, e, torch.float32, "d grad")
        torch.testing.assert_close(gan_loss_d_ref(r, f, gan_mode=gan_mode, target_real=0.9), expected.detach())


def test_reference_matches_torch_modules():
    gen = torch.Generator().manual_seed(17)
    for gan_mode in ("lsgan", "vanilla"):
        tensors = _inputs((2, 3, 6, 5), (2, 1, 3, 3), torch.float64, True, gen, heads=2)
        out = cyclegan_generator_loss_ref(*tensors, gan_mode=gan_mode, target_real=0.9)
        total, parts = torch_modules_loss(*tensors, gan_mode=gan_mode, target_real=0.9)
        torch.testing.assert_close(out.total, total)
        for a, e in zip(out[1:], parts):
            torch.testing.assert_close(a, e)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_double_backward_raises(impl, device):
    gen = torch.Generator().manual_seed(19)
    tensors = _leaves(_inputs((1, 3, 4, 4), (1, 1, 2, 2), torch.float32, False, gen, device=device))
    out = cyclegan_generator_loss(*tensors, impl=impl)
    (g,) = torch.autograd.grad(out.total, tensors[0], create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        g.sum().backward()


def test_module_matches_functional_and_repr():
    gen = torch.Generator().manual_seed(23)
    tensors = _inputs((1, 3, 8, 8), (1, 1, 3, 3), torch.float32, True, gen)
    mod = CycleGANGeneratorLoss("vanilla", lambda_a=5.0, lambda_identity=0.0, target_real=0.9, impl="ref")
    assert not list(mod.state_dict())
    out = mod(*tensors)
    expected = cyclegan_generator_loss(*tensors, gan_mode="vanilla", lambda_a=5.0, lambda_identity=0.0,
                                       target_real=0.9, impl="ref")
    for a, e in zip(out, expected):
        torch.testing.assert_close(a, e)
    assert out.idt_A == 0 and out.idt_B == 0 and out.cycle_A > 0
    assert repr(mod) == ("CycleGANGeneratorLoss(gan_mode=vanilla, lambda_a=5.0, lambda_b=10.0, "
                         "lambda_identity=0.0, target_real=0.9, impl=ref)")
    assert repr(GANDiscriminatorLoss()) == "GANDiscriminatorLoss(gan_mode=lsgan, target_real=1.0, impl=auto)"


_x = torch.randn(1, 3, 4, 4)
_p = torch.randn(1, 1, 2, 2)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: cyclegan_generator_loss(_p, _p, _x, _x, _x, torch.randn(1, 3, 4, 5)), ValueError, "rec_b must have the shape"),
        (lambda: cyclegan_generator_loss(_p, _p, _x.double(), _x, _x, _x), TypeError, "rec_a has dtype"),
        (lambda: cyclegan_generator_loss(_p, "p", _x, _x, _x, _x), TypeError, "pred_fake_a must be a torch.Tensor"),
        (lambda: cyclegan_generator_loss([], _p, _x, _x, _x, _x), ValueError, "pred_fake_b must be a tensor"),
        (lambda: cyclegan_generator_loss([_p, _p.int()], _p, _x, _x, _x, _x), TypeError, r"pred_fake_b\[1\]"),
        (lambda: cyclegan_generator_loss(_p, _p, _x, _x, _x, _x, _x), ValueError, "idt_a and idt_b"),
        (lambda: cyclegan_generator_loss(_p, _p, _x, _x, _x, _x, _x[:, :2], _x), ValueError, "idt_a must have"),
        (lambda: cyclegan_generator_loss(_p, _p, _x, _x, _x, _x, gan_mode="wgan"), ValueError, "gan_mode"),
        (lambda: cyclegan_generator_loss(_p, _p, _x, _x, _x, _x, lambda_a=-1.0), ValueError, "lambda_a"),
        (lambda: cyclegan_generator_loss(_p, _p, _x, _x, _x, _x, lambda_identity=float("nan")), ValueError, "lambda_identity"),
        (lambda: cyclegan_generator_loss(_p, _p, _x, _x, _x, _x, gan_mode="vanilla", target_real=1.5), ValueError, "target_real"),
        (lambda: cyclegan_generator_loss(_p, _p, _x, _x, _x, _x, impl="cuda"), ValueError, "impl must be one of"),
        (lambda: cyclegan_generator_loss(_p.to("meta"), _p, _x, _x, _x, _x), ValueError, "pred_fake_b is on meta"),
        (lambda: gan_loss_d(_p, _p, "hinge"), ValueError, "gan_mode"),
        (lambda: gan_loss_d(_p, _p, ["lsgan"]), ValueError, "gan_mode must be one of"),
        (lambda: cyclegan_generator_loss(_p, _p, _x, _x, _x, _x, gan_mode=["lsgan"]), ValueError, "gan_mode must be"),
        (lambda: gan_loss_d(_p, torch.empty(0)), ValueError, "pred_fake must not be empty"),
        (lambda: CycleGANGeneratorLoss(lambda_b="10"), TypeError, "lambda_b"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_compiles_without_graph_breaks():
    impl = "triton" if "triton" in _cpu_backends() else "ref"
    gen = torch.Generator().manual_seed(29)
    tensors = _inputs((1, 3, 8, 8), (1, 1, 3, 3), torch.float32, True, gen, heads=2)
    crit = CycleGANGeneratorLoss(target_real=0.9, impl=impl)

    def step(*ts):
        out = crit(*ts)
        return out.total, out.cycle_A

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    leaves, eager_leaves = _leaves(tensors), _leaves(tensors)
    total, cyc = compiled(*leaves)
    total.backward()
    total_e, cyc_e = step(*eager_leaves)
    total_e.backward()
    torch.testing.assert_close(total, total_e)
    torch.testing.assert_close(cyc, cyc_e)
    for a, e in zip(_flat_grads(leaves), _flat_grads(eager_leaves)):
        torch.testing.assert_close(a, e)


def _cpu_backends():
    from effgan._backend import available_impls

    return available_impls("cpu", OP)
