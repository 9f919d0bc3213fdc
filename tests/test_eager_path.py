"""The eager fast path (effgan/ops/_eager.py) against the torch.library custom-op path.

In plain eager mode the fused ops run through a torch.autograd.Function; under any mode, tracer or
transform they run through their custom ops. Both must give bit-identical outputs and gradients,
double backward must still be refused, and the fast path must really be the one taken in eager.
"""
from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
import torch
from torch.overrides import TorchFunctionMode

from effgan import _backend, ops
from tests.op_harness import fast_backends, rand


class _PassThrough(TorchFunctionMode):
    """A torch-function mode that changes nothing: its presence alone selects the custom-op path."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


def _cases():
    """(name, inputs factory, call(inputs, impl)) for every op that has an eager fast path."""
    shape = (2, 5, 7, 9)

    def inorm():
        g = torch.Generator().manual_seed(0)
        return [rand(shape, gen=g), rand((5,), gen=g), rand((5,), gen=g), rand(shape, gen=g)]

    def adain():
        g = torch.Generator().manual_seed(0)
        return [rand(shape, gen=g), rand((2, 5), gen=g), rand((2, 5), gen=g), rand((2, 1, 7, 9), gen=g),
                rand((5,), gen=g), rand((5,), gen=g)]

    def dwconv():
        g = torch.Generator().manual_seed(0)
        return [rand(shape, gen=g), rand((5, 1, 3, 3), gen=g), rand((5,), gen=g), rand((5,), gen=g)]

    def se():
        g = torch.Generator().manual_seed(0)
        return [rand(shape, gen=g), torch.rand((2, 5), generator=g, dtype=torch.float64).float()]

    def daug():
        g = torch.Generator().manual_seed(0)
        return [rand((2, 3, 8, 8), gen=g)]

    def daug_call(t, impl):
        params = ops.sample_diff_augment_params(2, 8, 8, "color,translation,cutout",
                                                torch.Generator().manual_seed(1))
        return ops.diff_augment(t[0], "color,translation,cutout", params=params, impl=impl)

    def loss():
        g = torch.Generator().manual_seed(0)
        return [rand((2, 1, 3, 3), gen=g) for _ in range(2)] + [rand((2, 3, 5, 7), gen=g) for _ in range(6)]

    return [
        ("cyclegan_loss", loss, lambda t, impl: ops.cyclegan_generator_loss(*t, impl=impl).total),
        ("instance_norm_act", inorm,
         lambda t, impl: ops.instance_norm_act(t[0], t[1], t[2], t[3], act="silu", impl=impl)),
        ("adain", adain, lambda t, impl: ops.adain(*t, act="leaky_relu", negative_slope=0.2, impl=impl)),
        ("dwconv_norm_act", dwconv,
         lambda t, impl: ops.dwconv_norm_act(t[0], t[1], None, t[2], t[3], act="relu", impl=impl)[0]),
        ("se_scale", se, lambda t, impl: ops.se_scale(t[0], t[1], impl=impl)),
        ("diff_augment", daug, daug_call),
    ]


CASES = {name: (make, call) for name, make, call in _cases()}


def _node_names(y):
    """The op node's class name: y's grad_fn, or the node under a view of the op's output."""
    fn = y.grad_fn
    return [type(fn).__name__] + [type(n).__name__ for n, _ in fn.next_functions if n is not None]


def _run(make, call, impl):
    inputs = [t.requires_grad_() for t in make()]
    y = call(inputs, impl)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    grads = torch.autograd.grad(y, inputs, dy)
    return y, grads


@pytest.mark.parametrize("impl, device", [p for p in fast_backends("instance_norm_act") if p.id.endswith("-cpu")])
@pytest.mark.parametrize("name", list(CASES))
def test_fast_path_matches_custom_op_path(name, impl, device):
    make, call = CASES[name]
    torch.manual_seed(0)
    y_fast, g_fast = _run(make, call, impl)
    assert y_fast.grad_fn is not None and any("_eager" in n for n in _node_names(y_fast)), _node_names(y_fast)
    torch.manual_seed(0)
    with _PassThrough():
        y_op, g_op = _run(make, call, impl)
    assert not any("_eager" in n for n in _node_names(y_op))
    assert torch.equal(y_fast, y_op)
    for a, b in zip(g_fast, g_op):
        assert torch.equal(a, b)


@pytest.mark.parametrize("impl, device", [p for p in fast_backends("instance_norm_act") if p.id.endswith("-cpu")])
def test_no_grad_call_builds_no_graph(impl, device):
    x = rand((1, 4, 5, 5)).requires_grad_()
    with torch.no_grad():
        y = ops.instance_norm_act(x, act="relu", impl=impl)
    assert y.grad_fn is None and not y.requires_grad


@pytest.mark.parametrize("impl, device", [p for p in fast_backends("instance_norm_act") if p.id.endswith("-cpu")])
def test_double_backward_still_refused_on_the_fast_path(impl, device):
    x = rand((1, 4, 5, 5)).requires_grad_()
    y = ops.instance_norm_act(x, act="silu", impl=impl)
    (gx,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="does not support double backward"):
        gx.sum().backward()


def test_import_and_an_eager_call_leave_the_compiler_unloaded():
    """torch._dynamo costs ~1.2 s to import: a process that never compiles must not pay it."""
    script = ("import sys, torch, effgan\n"
              "from effgan.ops import instance_norm_act\n"
              "x = torch.randn(1, 3, 5, 5, requires_grad=True)\n"
              "instance_norm_act(x, act='relu').sum().backward()\n"
              "print('dynamo imported:', 'torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "dynamo imported: False" in out.stdout, out.stdout


def test_constant_result_mark_is_torchs():
    """effgan marks resolve_impl for dynamo without importing it; the mark must be torch's own."""
    torch.compiler.assume_constant_result(marked_by_torch := lambda: None)
    _backend._assume_constant_result(marked_by_effgan := lambda: None)
    assert vars(marked_by_torch), "torch's decorator no longer marks the function: see _backend"
    assert vars(marked_by_effgan) == vars(marked_by_torch)


@pytest.mark.parametrize("impl, device", [p for p in fast_backends("instance_norm_act") if p.id.endswith("-cpu")])
@pytest.mark.parametrize("custom_op_path", [False, True])
@pytest.mark.parametrize("name", [n for n in CASES if n != "diff_augment"])  # its only tensor input is x
def test_an_inference_tensor_beside_trainable_inputs(name, impl, device, custom_op_path):
    """The first input made under torch.inference_mode (a frozen network's output), the others
    trainable: autograd refuses to save inference tensors (as some references do save x, they fail
    there), so the fused ops save a clone; the gradients are those of an ordinary x."""
    make, call = CASES[name]

    def grads(impl_used, inference):
        first, *rest = make()
        if inference:
            with torch.inference_mode():
                first = first.clone()
        rest = [t.requires_grad_() for t in rest]
        with _PassThrough() if custom_op_path else contextlib.nullcontext():
            y = call([first, *rest], impl_used)
        return torch.autograd.grad(y, rest, torch.randn(y.shape, generator=torch.Generator().manual_seed(2)))

    for got, expected in zip(grads(impl, inference=True), grads("ref", inference=False)):
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
