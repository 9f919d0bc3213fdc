"""dwconv_norm_act: every backend against the reference (outputs, squeeze, every gradient)."""
import functools

import pytest
import torch
from torch import nn

from effgan.ops import dwconv_norm_act, dwconv_norm_act_ref
from op_harness import (LOW_PRECISION, assert_close, assert_low_precision_ok, fast_backends, force_triton_path, rand,
                        seeded)

OP = "dwconv_norm_act"

F64, F32 = torch.float64, torch.float32
# (shape, kernel, stride, padding_mode, channels_last, act, conv bias, norm affine, dtype): every
# kernel size, stride, padding mode, layout and activation, each in one dtype or both (the
# interpreter is slow, and a K=5 program costs 25 taps per pass).
CONFIGS = [
    ((2, 3, 7, 9), 3, 1, "zeros", False, "silu", True, True, F64),
    ((2, 3, 7, 9), 3, 1, "zeros", False, "silu", True, True, F32),
    ((2, 4, 9, 8), 5, 2, "reflect", True, "relu", False, False, F64),
    ((1, 3, 6, 5), 3, 2, "zeros", True, "leaky_relu", True, True, F32),
    ((1, 5, 5, 7), 5, 1, "zeros", False, "tanh", False, True, F32),
    ((1, 2, 2, 2), 3, 2, "zeros", False, "identity", True, True, F64),  # a 1x1 output plane
    ((1, 2, 8, 7), 3, 1, "reflect", False, "silu", False, True, F32),
    ((1, 3, 9, 11), 5, 2, "zeros", False, "silu", True, True, F32),  # K=5 zero pad 2, odd width, stride 2
]


def _inputs(shape, k, dtype, device, channels_last, has_bias, affine, gen):
    C = shape[1]
    x = rand(shape, dtype=dtype, device=device, channels_last=channels_last, scale=2.0, offset=1.5, gen=gen)
    w = rand((C, 1, k, k), dtype=dtype, device=device, scale=0.5, gen=gen)
    b = rand((C,), dtype=dtype, device=device, gen=gen) if has_bias else None
    nw = rand((C,), dtype=dtype, device=device, gen=gen) if affine else None
    nb = rand((C,), dtype=dtype, device=device, gen=gen) if affine else None
    return x, w, b, nw, nb


def _run(fn, tensors, gy, gs, **kw):
    """Forward, then backward of sum(y * gy) + sum(squeeze * gs) (either term may be absent)."""
    leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in tensors]
    y, sq = fn(*leaves, **kw)
    loss = 0
    if gy is not None:
        loss = loss + (y * gy).sum()
    if gs is not None:
        loss = loss + (sq * gs).sum()
    loss.backward()
    return y.detach(), sq.detach(), [t.grad if t is not None else None for t in leaves]


def _grad_outputs(shape, k, stride, dtype, device, gen):
    N, C, H, W = shape
    Ho, Wo = (H + 2 * (k // 2) - k) // stride + 1, (W + 2 * (k // 2) - k) // stride + 1
    return rand((N, C, Ho, Wo), dtype=dtype, device=device, gen=gen), rand((N, C), dtype=dtype, device=device, gen=gen)


NAMES = ("x", "weight", "bias", "norm_weight", "norm_bias")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("config", CONFIGS,
                         ids=lambda c: f"{c[0]}-k{c[1]}s{c[2]}-{c[3]}-cl{int(c[4])}-{c[5]}-{str(c[8])[6:]}")
def test_matches_reference_all_grads(impl, device, config, poison_outputs):
    shape, k, stride, padding_mode, channels_last, act, has_bias, affine, dtype = config
    gen = seeded(*config)
    tensors = _inputs(shape, k, dtype, device, channels_last, has_bias, affine, gen)
    gy, gs = _grad_outputs(shape, k, stride, dtype, device, gen)
    kw = dict(stride=stride, padding_mode=padding_mode, act=act, negative_slope=0.2, eps=1e-5)
    y, sq, grads = _run(dwconv_norm_act, tensors, gy, gs, impl=impl, **kw)
    y_ref, sq_ref, grads_ref = _run(dwconv_norm_act_ref, tensors, gy, gs, **kw)
    assert_close(y, y_ref, dtype, "y")
    assert_close(sq, sq_ref, dtype, "squeeze")
    for label, a, e in zip(NAMES, grads, grads_ref):
        assert (a is None) == (e is None), label
        if a is None:
            continue
        if label == "bias":
            # The conv bias cancels in the instance norm: its gradient is exactly zero (the
            # reference's is rounding noise around zero).
            assert torch.equal(a, torch.zeros_like(a))
            torch.testing.assert_close(e, torch.zeros_like(e), atol=1e-4 * gy.abs().sum().item(), rtol=0)
            continue
        assert_close(a, e, dtype, f"d{label}")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    assert y.is_contiguous(memory_format=fmt)
    assert grads[0].stride() == tensors[0].stride()


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("which", ["y", "squeeze"])
def test_gradient_from_one_output_only(impl, device, which):
    """An unused output's gradient arrives as None (or zeros) and must be treated as zero."""
    gen = torch.Generator().manual_seed(11)
    shape, k, stride = (1, 3, 6, 7), 3, 2
    tensors = _inputs(shape, k, torch.float64, device, False, True, True, gen)
    gy, gs = _grad_outputs(shape, k, stride, torch.float64, device, gen)
    gy, gs = (gy, None) if which == "y" else (None, gs)
    _, _, grads = _run(dwconv_norm_act, tensors, gy, gs, impl=impl, stride=stride)
    _, _, grads_ref = _run(dwconv_norm_act_ref, tensors, gy, gs, stride=stride)
    for label, a, e in zip(NAMES, grads, grads_ref):
        if label != "bias":
            assert_close(a, e, torch.float64, f"d{label}")


@pytest.mark.parametrize("impl,device", [p for p in fast_backends(OP) if p.id == "triton-cpu"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_multi_program_planes_deterministic(impl, device, channels_last, monkeypatch, poison_outputs):
    """Planes split over several programs (the GPU geometry) match the reference bit-for-bit twice."""
    force_triton_path(monkeypatch, OP, "split", block_c=4 if channels_last else 2)
    gen = torch.Generator().manual_seed(5)
    shape, k, stride = (1, 3, 7, 9), 3, 1
    tensors = _inputs(shape, k, torch.float32, device, channels_last, True, True, gen)
    gy, gs = _grad_outputs(shape, k, stride, torch.float32, device, gen)
    kw = dict(stride=stride, act="silu")
    y1, s1, g1 = _run(dwconv_norm_act, tensors, gy, gs, impl=impl, **kw)
    y2, s2, g2 = _run(dwconv_norm_act, tensors, gy, gs, impl=impl, **kw)
    y_ref, s_ref, g_ref = _run(dwconv_norm_act_ref, tensors, gy, gs, **kw)
    assert torch.equal(y1, y2) and torch.equal(s1, s2)
    for label, a, b, e in zip(NAMES, g1, g2, g_ref):
        assert torch.equal(a, b), label
        if label != "bias":
            assert_close(a, e, torch.float32, f"d{label}")
    assert_close(y1, y_ref, torch.float32, "y")
    assert_close(s1, s_ref, torch.float32, "squeeze")


@pytest.mark.parametrize("impl,device", [p for p in fast_backends(OP) if p.id == "triton-cpu"])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("k", [3, 5])
def test_narrowed_conv_tiles_match_reference(impl, device, channels_last, k, monkeypatch, poison_outputs):
    """Tiles wide enough that the launchers narrow them (kernels/dwconv_norm_act.py, _conv_split):
    each program then loops over its chunk in several narrower steps. float64: the weight gradient
    sums 2000-3000 products a tap, whose float32 rounding would need a looser tolerance than the
    other configurations'."""
    if channels_last:
        force_triton_path(monkeypatch, OP, "split", block_hw=1024, programs=2, block_c=4)  # 4x1024 tiles
        shape = (1, 4, 40, 41)
    else:
        force_triton_path(monkeypatch, OP, "split", block_hw=4096, block_c=1)  # 1x4096 tiles
        shape = (1, 2, 50, 61)
    from effgan.kernels import dwconv_norm_act as kernels
    if channels_last:
        # the launchers keep the shared geometry in channels_last; the tile benchmark narrows it
        monkeypatch.setattr(kernels, "_conv_split", functools.partial(kernels._conv_split, per_thread=4))
    split = kernels.plane_split(None, *shape[:2], shape[2] * shape[3])
    assert kernels._conv_split(split, channels_last).BLOCK_HW < split.BLOCK_HW  # the case narrows
    gen = seeded("narrowed", channels_last, k)
    tensors = _inputs(shape, k, F64, device, channels_last, True, True, gen)
    gy, gs = _grad_outputs(shape, k, 1, F64, device, gen)
    y, sq, grads = _run(dwconv_norm_act, tensors, gy, gs, impl=impl, act="silu")
    y_ref, sq_ref, grads_ref = _run(dwconv_norm_act_ref, tensors, gy, gs, act="silu")
    assert_close(y, y_ref, F64, "y")
    assert_close(sq, sq_ref, F64, "squeeze")
    for label, a, e in zip(NAMES, grads, grads_ref):
        if label != "bias":
            assert_close(a, e, F64, f"d{label}")


class _CudaLike:
    """What plane_split reads of a CUDA tensor: shape, strides, is_cuda and the device index."""

    is_cuda = True
    device = torch.device("cuda", 0)

    def __init__(self, shape, channels_last):
        self.shape = shape
        self._t = torch.empty(shape, memory_format=torch.channels_last if channels_last else torch.contiguous_format)

    def stride(self, dim=None):
        return self._t.stride() if dim is None else self._t.stride(dim)


@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_conv_geometry_caps_the_elements_a_thread_holds(channels_last, monkeypatch):
    """On the H100 (ncu, Triton 3.6) the NCHW backward kernels spilled at 16 tile elements a thread;
    the launchers hold at most 4, within 8 warps, and keep the plane's split intact. channels_last
    keeps the shared geometry, which timed faster there."""
    pytest.importorskip("triton")
    from effgan.kernels import _launch
    from effgan.kernels import dwconv_norm_act as kernels

    monkeypatch.setattr(_launch, "_sm_count", lambda index: 132)
    for shape in [(1, 32, 112, 112), (8, 256, 128, 128), (1, 96, 56, 56), (4, 1152, 7, 7), (1, 672, 16, 16),
                  (2, 3, 5, 7), (32, 24, 300, 301)]:
        N, C, H, W = shape
        split = _launch.plane_split(_CudaLike(shape, channels_last), N, C, H * W)
        conv = kernels._conv_split(split, channels_last)
        if channels_last:
            assert conv is split, shape
            continue
        label = f"{shape}: {split} -> {conv}"
        assert (conv.BLOCK_C, conv.S, conv.CHUNK, conv.BLOCK_S) == (split.BLOCK_C, split.S, split.CHUNK,
                                                                     split.BLOCK_S), label
        assert conv.CHUNK % conv.BLOCK_HW == 0 and conv.BLOCK_HW & (conv.BLOCK_HW - 1) == 0, label
        assert split.num_warps <= conv.num_warps <= 8, label
        assert conv.BLOCK_C * conv.BLOCK_HW <= 4 * 32 * conv.num_warps or conv.BLOCK_HW == 1, label


@pytest.mark.parametrize("impl,device", [p for p in fast_backends(OP) if p.id == "cpp-cpu"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("k,stride", [(3, 1), (5, 2)])
def test_cpp_channels_last_equals_nchw_bitwise(impl, device, dtype, k, stride, poison_outputs):
    """The C++ kernel gathers channels_last planes in groups of 8 channels (8x8 transposes, scalar
    leftovers) and scatters results back: 37 channels, a batch of 2 and 9x10 planes take full
    groups and a partial one, whole blocks of 8 pixels and leftovers. Each plane's arithmetic is
    the NCHW path's, so every output and gradient must match it bit for bit."""
    gen = torch.Generator().manual_seed(5)
    shape = (2, 37, 9, 10)
    tensors = _inputs(shape, k, dtype, device, False, True, True, gen)
    gy, gs = _grad_outputs(shape, k, stride, dtype, device, gen)
    kw = dict(stride=stride, act="silu", impl=impl)
    y, sq, grads = _run(dwconv_norm_act, tensors, gy, gs, **kw)
    cl = lambda t: t.contiguous(memory_format=torch.channels_last)  # noqa: E731
    y_cl, sq_cl, grads_cl = _run(dwconv_norm_act, (cl(tensors[0]),) + tensors[1:], cl(gy), gs, **kw)
    assert y_cl.is_contiguous(memory_format=torch.channels_last)
    assert grads_cl[0].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y_cl, y) and torch.equal(sq_cl, sq)
    for label, a, e in zip(NAMES, grads_cl, grads):
        assert torch.equal(a, e), f"d{label}"


@pytest.mark.parametrize("impl,device", fast_backends(OP))
@pytest.mark.parametrize("dtype", LOW_PRECISION)
@pytest.mark.parametrize("stride", [1, 2])
def test_low_precision_within_twice_eager_error(impl, device, dtype, stride):
    gen = torch.Generator().manual_seed(7)
    shape, k = (2, 4, 9, 10), 3
    tensors = _inputs(shape, k, dtype, device, dtype == torch.bfloat16, True, True, gen)
    gy, gs = _grad_outputs(shape, k, stride, dtype, device, gen)
    kw = dict(stride=stride, act="silu")
    y, sq, grads = _run(dwconv_norm_act, tensors, gy, gs, impl=impl, **kw)
    y_low, sq_low, grads_low = _run(dwconv_norm_act_ref, tensors, gy, gs, **kw)
    exact = [t.double() for t in tensors]
    y_64, sq_64, grads_64 = _run(dwconv_norm_act_ref, exact, gy.double(), gs.double(), **kw)
    assert y.dtype == sq.dtype == dtype
    assert_low_precision_ok(y, y_low, y_64, dtype, "y")
    assert_low_precision_ok(sq, sq_low, sq_64, dtype, "squeeze")
    for label, a, lo, e in zip(NAMES, grads, grads_low, grads_64):
        assert a.dtype == dtype
        assert_low_precision_ok(a, lo, e, dtype, f"d{label}")


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_gradcheck_float64(impl, device):
    gen = torch.Generator().manual_seed(3)
    # No conv bias: its gradient is identically zero, and every input costs two more forward calls.
    args = [t.requires_grad_() for t in _inputs((1, 2, 5, 4), 3, torch.float64, device, False, False, True, gen)
            if t is not None]
    fn = lambda x, w, nw, nb: dwconv_norm_act(x, w, None, nw, nb, stride=2, act="silu", impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5, fast_mode=True)


def test_gradcheck_reference():
    gen = torch.Generator().manual_seed(4)
    args = [t.requires_grad_() for t in _inputs((1, 2, 5, 6), 5, torch.float64, "cpu", True, True, True, gen)]
    fn = lambda *a: dwconv_norm_act_ref(*a, stride=2, padding_mode="reflect", act="tanh")  # noqa: E731
    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-5, fast_mode=True)


def test_reference_matches_torch_modules():
    """The reference is nn.Conv2d(groups=C, padding_mode) -> nn.InstanceNorm2d(affine) -> nn.SiLU."""
    torch.manual_seed(2)
    C = 4
    for padding_mode, k, stride in [("zeros", 3, 2), ("reflect", 5, 1)]:
        conv = nn.Conv2d(C, C, k, stride, padding=k // 2, groups=C, padding_mode=padding_mode)
        norm = nn.InstanceNorm2d(C, affine=True)
        with torch.no_grad():
            norm.weight.normal_()
            norm.bias.normal_()
        x = torch.randn(2, C, 9, 8)
        y_t = nn.SiLU()(norm(conv(x)))
        y, sq = dwconv_norm_act_ref(x, conv.weight, conv.bias, norm.weight, norm.bias, stride=stride,
                                    padding_mode=padding_mode)
        torch.testing.assert_close(y, y_t)
        torch.testing.assert_close(sq, y_t.mean((2, 3)))


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_large_mean_small_variance(impl, device):
    """Statistics stay accurate when the conv output has |mean| >> std (the shifted sums exist for this).

    Without the shift, E[z^2] - E[z]^2 in float32 would lose the variance entirely here; what is
    left is the float32 conv's own rounding, which eager PyTorch shares.
    """
    x = rand((1, 2, 12, 12), device=device, scale=1e-1, offset=1e3)
    w = torch.full((2, 1, 3, 3), 1.0 / 9, device=device)
    kw = dict(padding_mode="reflect", act="identity")
    y, _ = dwconv_norm_act(x, w, impl=impl, **kw)
    y_eager, _ = dwconv_norm_act_ref(x, w, **kw)
    y_exact, _ = dwconv_norm_act_ref(x.double(), w.double(), **kw)
    err, eager_err = (y.double() - y_exact).abs().max().item(), (y_eager.double() - y_exact).abs().max().item()
    assert err <= 2 * eager_err + 1e-3, (err, eager_err)


@pytest.mark.parametrize("impl,device", fast_backends(OP))
def test_double_backward_raises(impl, device):
    x = rand((1, 2, 4, 4), device=device).requires_grad_()
    w = rand((2, 1, 3, 3), device=device)
    y, sq = dwconv_norm_act(x, w, impl=impl)
    (gx,) = torch.autograd.grad(y.pow(2).sum() + sq.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        gx.sum().backward()


def _x():
    return torch.randn(2, 3, 6, 6)


def _w(k=3, C=3):
    return torch.randn(C, 1, k, k)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: dwconv_norm_act(torch.randn(3, 6, 6), _w()), ValueError, "x must be 4-D"),
        (lambda: dwconv_norm_act(torch.ones(2, 3, 6, 6, dtype=torch.int32), _w()), TypeError, "x must be a floating"),
        (lambda: dwconv_norm_act(_x(), "w"), TypeError, "weight must be a torch.Tensor"),
        (lambda: dwconv_norm_act(_x(), _w(4)), ValueError, "weight must have shape"),
        (lambda: dwconv_norm_act(_x(), _w(3, 2)), ValueError, "weight must have shape"),
        (lambda: dwconv_norm_act(_x(), _w().double()), TypeError, "weight has dtype"),
        (lambda: dwconv_norm_act(_x(), _w(), torch.randn(4)), ValueError, "bias must have shape"),
        (lambda: dwconv_norm_act(_x(), _w(), None, torch.randn(2)), ValueError, "norm_weight must have shape"),
        (lambda: dwconv_norm_act(_x(), _w(), None, None, torch.randn(3, device="meta")), ValueError, "norm_bias is on"),
        (lambda: dwconv_norm_act(_x(), _w(), stride=3), ValueError, "stride must be one of"),
        (lambda: dwconv_norm_act(_x(), _w(), stride=1.0), TypeError, "stride must be an int"),
        (lambda: dwconv_norm_act(_x(), _w(), padding_mode="circular"), ValueError, "padding_mode"),
        (lambda: dwconv_norm_act(torch.randn(1, 3, 2, 6), _w(5), padding_mode="reflect"), ValueError, "reflect"),
        (lambda: dwconv_norm_act(_x(), _w(), eps=-1.0), ValueError, "eps"),
        (lambda: dwconv_norm_act(_x(), _w(), act="gelu"), ValueError, "act must be one of"),
        (lambda: dwconv_norm_act(_x(), _w(), negative_slope=float("nan")), ValueError, "negative_slope"),
        (lambda: dwconv_norm_act(_x(), _w(), impl="cuda"), ValueError, "impl must be one of"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_compiles_without_graph_breaks():
    impl = "triton" if "triton" in _available() else "ref"

    def fn(x, w, nw, nb):
        y, sq = dwconv_norm_act(x, w, None, nw, nb, stride=2, act="relu", impl=impl)
        return y.sum() + (sq * sq).sum()

    gen = torch.Generator().manual_seed(9)
    x, w, _, nw, nb = _inputs((1, 3, 7, 6), 3, torch.float32, "cpu", False, False, True, gen)
    leaves = [t.clone().requires_grad_() for t in (x, w, nw, nb)]
    out = torch.compile(fn, fullgraph=True, backend="aot_eager")(*leaves)
    out.backward()
    leaves2 = [t.clone().requires_grad_() for t in (x, w, nw, nb)]
    out2 = fn(*leaves2)
    out2.backward()
    torch.testing.assert_close(out, out2)
    for a, b in zip(leaves, leaves2):
        torch.testing.assert_close(a.grad, b.grad)


def _available():
    from effgan._backend import available_impls

    return available_impls("cpu", OP)
