"""MBConv, DepthwiseSeparableConv, SqueezeExcite, DepthwiseConvNormAct: fused and plain builds agree."""
import copy

import pytest
import torch
from torch import nn

from effgan.nn import (DepthwiseConvNormAct, DepthwiseSeparableConv, FusedInstanceNorm2d, InstanceNormAct, MBConv,
                       SqueezeExcite)
from op_harness import fast_backends, rand

MBCONV_CONFIGS = [
    dict(in_channels=4, out_channels=4),  # residual fused into the last norm
    dict(in_channels=4, out_channels=6, stride=2, kernel_size=5, expand_ratio=2),
    dict(in_channels=3, out_channels=3, expand_ratio=1, padding_mode="reflect", act="relu"),
    dict(in_channels=4, out_channels=5, se_ratio=0.0, expand_ratio=3),
]


def _randomize(module: nn.Module, seed: int) -> None:
    """Random parameters everywhere (norm affines included), so every path matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5 + (1.0 if p.dim() == 1 and p.shape[0] > 0 else 0.0))


def _pair(cls, *args, impl="ref", seed=0, **kw):
    plain = cls(*args, fused=False, **kw)
    fused = cls(*args, fused=True, impl=impl, **kw)
    _randomize(plain, seed)
    fused.load_state_dict(plain.state_dict())
    return plain, fused


def _outputs_and_grads(module, x, seed=1):
    x = x.detach().clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    out = module(x)
    outs = out if isinstance(out, tuple) else (out,)
    gen = torch.Generator().manual_seed(seed)
    sum(((o * torch.randn(o.shape, generator=gen, dtype=o.dtype).to(o.device)).sum() for o in outs)).backward()
    return [o.detach() for o in outs], x.grad, {n: p.grad for n, p in module.named_parameters()}


def _assert_same(plain, fused, x, atol=1e-5, rtol=1e-5):
    out_p, dx_p, grads_p = _outputs_and_grads(plain, x)
    out_f, dx_f, grads_f = _outputs_and_grads(fused, x)
    for a, b in zip(out_f, out_p):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol)
    torch.testing.assert_close(dx_f, dx_p, atol=atol, rtol=rtol)
    assert grads_f.keys() == grads_p.keys()
    for name in grads_p:
        assert grads_p[name] is not None, name
        torch.testing.assert_close(grads_f[name], grads_p[name], atol=atol, rtol=rtol,
                                   msg=lambda m, name=name: f"grad of {name}: {m}")


def _same_layout(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(sa[k].shape == sb[k].shape for k in sa)


@pytest.mark.parametrize("config", MBCONV_CONFIGS, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_mbconv_builds_share_state_dict_and_results(config):
    plain, fused = _pair(MBConv, **config)
    _same_layout(plain, fused)
    x = rand((2, config["in_channels"], 9, 8), gen=torch.Generator().manual_seed(3))
    _assert_same(plain, fused, x)
    # Loading the other way gives the same module too.
    plain2 = MBConv(**config, fused=False)
    plain2.load_state_dict(fused.state_dict())
    torch.testing.assert_close(plain2(x), plain(x))


def test_mbconv_state_dict_keys_and_se_width():
    m = MBConv(4, 4, kernel_size=5, expand_ratio=6, se_ratio=0.25, fused=False)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {
        "expand.weight": (24, 4, 1, 1), "expand_norm.weight": (24,), "expand_norm.bias": (24,),
        "dw.conv.weight": (24, 1, 5, 5), "dw.norm.weight": (24,), "dw.norm.bias": (24,),
        # EfficientNet sizes the SE bottleneck from the block input: max(1, int(4 * 0.25)) = 1.
        "se.reduce.weight": (1, 24, 1, 1), "se.reduce.bias": (1,),
        "se.expand.weight": (24, 1, 1, 1), "se.expand.bias": (24,),
        "project.weight": (4, 24, 1, 1), "project_norm.weight": (4,), "project_norm.bias": (4,),
    }
    assert MBConv(16, 8, se_ratio=0.25).se.reduced_channels == 4
    assert MBConv(4, 4, expand_ratio=1).expand is None
    assert MBConv(4, 4, se_ratio=0.0).se is None
    assert isinstance(MBConv(4, 4, fused=True).project_norm, FusedInstanceNorm2d)
    assert isinstance(MBConv(4, 4, fused=False).project_norm, InstanceNormAct)
    fused_conv = MBConv(4, 4, padding_mode="reflect").dw.conv
    assert fused_conv.padding_mode == "reflect" and fused_conv.groups == 24


def test_mbconv_matches_hand_built_torch_block():
    """The plain build is exactly the EfficientNet block written with torch modules."""
    m = MBConv(4, 4, expand_ratio=2, se_ratio=0.5, fused=False)
    _randomize(m, 5)
    x = rand((2, 4, 7, 6), gen=torch.Generator().manual_seed(6))
    silu = nn.functional.silu

    def inorm(t, mod):
        return nn.functional.instance_norm(t, weight=mod.weight, bias=mod.bias, eps=1e-5)

    h = silu(inorm(nn.functional.conv2d(x, m.expand.weight), m.expand_norm))
    h = silu(inorm(nn.functional.conv2d(h, m.dw.conv.weight, padding=1, groups=8), m.dw.norm))
    s = h.mean((2, 3), keepdim=True)
    gate = torch.sigmoid(m.se.expand(silu(m.se.reduce(s))))
    h = nn.functional.conv2d(h * gate, m.project.weight)
    expected = inorm(h, m.project_norm) + x
    torch.testing.assert_close(m(x), expected)


def test_drop_path_drops_whole_samples_of_the_branch():
    plain, fused = _pair(MBConv, 4, 4, expand_ratio=2, drop_path=0.5)
    x = rand((8, 4, 5, 5), gen=torch.Generator().manual_seed(8))
    for m in (plain, fused):
        m.eval()
        branch = m(x) - x  # eval: no drop, the residual add is fused into the norm
        m.train()
        torch.manual_seed(0)
        out = m(x)
        torch.manual_seed(0)
        keep = x.new_empty((8, 1, 1, 1)).bernoulli_(0.5)
        assert 0 < keep.sum() < 8  # the seed drops some samples and keeps others
        torch.testing.assert_close(out, x + branch * keep / 0.5, atol=1e-5, rtol=1e-5)
    torch.manual_seed(1)
    out_p = plain.train()(x)
    torch.manual_seed(1)
    torch.testing.assert_close(fused.train()(x), out_p)
    assert plain.drop_path == 0.5


@pytest.mark.parametrize("se_ratio", [0.0, 0.5])
def test_depthwise_separable_builds_agree(se_ratio):
    for args, kw in [((4, 4), dict()), ((4, 6), dict(stride=2, kernel_size=5, padding_mode="reflect"))]:
        plain, fused = _pair(DepthwiseSeparableConv, *args, se_ratio=se_ratio, **kw)
        _same_layout(plain, fused)
        keys = set(plain.state_dict())
        assert {"dw.conv.weight", "project.weight", "project_norm.weight"} <= keys
        assert ("se.reduce.weight" in keys) == (se_ratio > 0)
        _assert_same(plain, fused, rand((2, 4, 7, 9), gen=torch.Generator().manual_seed(2)))


def test_squeeze_excite_builds_agree_and_accept_a_squeeze():
    plain, fused = _pair(SqueezeExcite, 6, 2, act="relu")
    _same_layout(plain, fused)
    assert list(plain.state_dict()) == ["reduce.weight", "reduce.bias", "expand.weight", "expand.bias"]
    x = rand((2, 6, 5, 4), gen=torch.Generator().manual_seed(4))
    _assert_same(plain, fused, x)
    torch.testing.assert_close(fused(x, x.mean((2, 3))), plain(x))


def test_depthwise_conv_norm_act_returns_the_squeeze():
    plain, fused = _pair(DepthwiseConvNormAct, 5, 3, 2, act="tanh")
    x = rand((2, 5, 7, 7), gen=torch.Generator().manual_seed(4))
    y, sq = plain(x)
    torch.testing.assert_close(sq, y.mean((2, 3)))
    _assert_same(plain, fused, x)


@pytest.mark.parametrize("kernel_size,stride,side", [(3, 2, 2), (5, 2, 1), (3, 1, 1)])
def test_depthwise_conv_norm_act_refuses_a_1x1_output_in_both_builds(kernel_size, stride, side):
    plain, fused = _pair(DepthwiseConvNormAct, 4, kernel_size, stride)
    x = rand((2, 4, side, side), gen=torch.Generator().manual_seed(5))
    for build in (plain, fused):
        with pytest.raises(ValueError, match="more than 1 spatial element"):
            build(x)
    plain(rand((2, 4, side + 2, side + 1), gen=torch.Generator().manual_seed(6)))  # 2 or more: fine


@pytest.mark.parametrize("impl,device", fast_backends("dwconv_norm_act"))
def test_mbconv_fused_kernels_match_plain(impl, device, poison_outputs):
    """The whole block on the fast backends (expand/project norms, dwconv_norm_act, se_scale)."""
    plain, fused = _pair(MBConv, 4, 4, expand_ratio=2, impl=impl, seed=3)
    x = rand((2, 4, 6, 7), gen=torch.Generator().manual_seed(9))
    _assert_same(plain.to(device), fused.to(device), x.to(device), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("impl,device", fast_backends("dwconv_norm_act"))
def test_mbconv_fused_compiles_without_graph_breaks(impl, device):
    plain, fused = _pair(MBConv, 2, 3, kernel_size=3, stride=2, expand_ratio=2, impl=impl)
    plain, fused = plain.to(device), fused.to(device)
    x = rand((1, 2, 6, 5), device=device, gen=torch.Generator().manual_seed(1)).requires_grad_()
    compiled = torch.compile(fused, fullgraph=True, backend="aot_eager")
    y = compiled(x)
    y.sum().backward()
    x2 = x.detach().clone().requires_grad_()
    y2 = plain(x2)
    y2.sum().backward()
    torch.testing.assert_close(y, y2, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(x.grad, x2.grad, atol=1e-4, rtol=1e-4)


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("impl,device", [pytest.param("ref", "cpu", id="ref-cpu")] + fast_backends("dwconv_norm_act"))
def test_mbconv_fused_runs_under_autocast(impl, device):
    """Inside torch.autocast the activations are bf16 and the parameters float32, as in training with
    --amp bf16: the fused block runs there (its convs cast, as nn.Conv2d's do) and is about as
    accurate as the plain block, both measured against the plain block in float64."""
    plain, fused = _pair(MBConv, 4, 6, kernel_size=5, expand_ratio=2, impl=impl, seed=5)
    exact = copy.deepcopy(plain).double().to(device)
    plain, fused = plain.to(device), fused.to(device)
    x = rand((2, 4, 9, 7), device=device, gen=torch.Generator().manual_seed(4))
    # random output weights: a loss like y.square().sum() has a gradient that the last instance norm
    # cancels almost exactly, leaving only roundoff to compare
    weights = rand((2, 6, 9, 7), device=device, gen=torch.Generator().manual_seed(6))
    results = []
    for module, autocast in ((exact, False), (plain, True), (fused, True)):
        xi = x.to(next(module.parameters()).dtype).requires_grad_()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=autocast):
            y = module(xi)
        assert y.dtype == (torch.bfloat16 if autocast else torch.float64)
        (y.double() * weights.double()).sum().backward()
        grads = {n: p.grad for n, p in module.named_parameters()}
        assert all(g is not None and g.dtype == p.dtype and torch.isfinite(g).all()
                   for g, p in zip(grads.values(), module.parameters()))
        results.append({"y": y, "dx": xi.grad, **grads})
    reference, plain_out, fused_out = results
    for name in reference:
        if reference[name].norm() < 1e-9:  # the conv biases an instance norm cancels: roundoff only
            continue
        plain_err = _relative_error(plain_out[name], reference[name])
        fused_err = _relative_error(fused_out[name], reference[name])
        assert fused_err <= 2 * plain_err + 1e-3, f"{name}: fused {fused_err:.3g} vs plain {plain_err:.3g}"


def test_repr():
    m = MBConv(4, 4, drop_path=0.1, fused=True, impl="ref")
    text = repr(m)
    assert text.startswith("MBConv(\n  drop_path=0.1, fused=True")
    assert "SqueezeExcite(\n    24, 1, act=silu, fused=True, impl=ref" in text
    assert "DepthwiseConvNormAct(\n    fused=True, impl=ref" in text
    assert "padding_mode" not in repr(MBConv(4, 4).dw.conv)  # zeros is nn.Conv2d's default
    assert repr(DepthwiseSeparableConv(3, 5, fused=False)).startswith("DepthwiseSeparableConv(")


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: MBConv(0, 4), "in_channels"),
        (lambda: MBConv(4, 4.0), "out_channels"),
        (lambda: MBConv(4, 4, kernel_size=7), "kernel_size"),
        (lambda: MBConv(4, 4, stride=3), "stride"),
        # a float that equals an allowed size is still refused here, not by nn.Conv2d or at forward
        (lambda: MBConv(4, 4, kernel_size=3.0), r"kernel_size must be one of \(3, 5\), got 3.0"),
        (lambda: DepthwiseSeparableConv(4, 4, kernel_size=5.0), "kernel_size"),
        (lambda: DepthwiseConvNormAct(4, 3, 2.0), r"stride must be one of \(1, 2\), got 2.0"),
        (lambda: MBConv(4, 4, stride=2.0, fused=False), "stride"),
        (lambda: MBConv(4, 4, expand_ratio=0), "expand_ratio"),
        (lambda: MBConv(4, 4, se_ratio=1.5), "se_ratio"),
        (lambda: MBConv(4, 4, drop_path=1.0), "drop_path"),
        (lambda: MBConv(4, 4, padding_mode="circular"), "padding_mode"),
        (lambda: MBConv(4, 4, act="gelu"), "act"),
        (lambda: MBConv(4, 4, impl="cuda"), "impl"),
        (lambda: MBConv(4, 4)(torch.randn(1, 3, 5, 5)), r"input must be \(N, 4, H, W\)"),
        (lambda: SqueezeExcite(4, 0), "reduced_channels"),
        (lambda: SqueezeExcite(4, 2)(torch.randn(1, 3, 2, 2)), r"input must be \(N, 4, H, W\)"),
        (lambda: DepthwiseSeparableConv(4, 4, se_ratio=-0.1), "se_ratio"),
        (lambda: DepthwiseSeparableConv(4, 4)(torch.randn(1, 5, 6, 6)), r"input must be \(N, 4, H, W\)"),
        (lambda: DepthwiseConvNormAct(4)(torch.randn(1, 5, 6, 6)), r"input must be \(N, 4, H, W\)"),
        (lambda: SqueezeExcite(4, 2)(torch.randn(1, 4, 2, 2), torch.randn(1, 5)), r"squeeze must be .* \(1, 4\)"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(call, match):
    with pytest.raises(ValueError, match=match):
        call()
