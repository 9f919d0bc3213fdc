"""The reference instance norm's input gradient at batch 1 with a channels_last output gradient
(torch's CPU F.instance_norm gets it wrong there; effgan/ops/_instance_norm_grad_layout.py)."""
from __future__ import annotations

import pytest
import torch

from effgan.nn import InstanceNormAct
from effgan.ops import instance_norm_act_ref


def _explicit(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=(-2, -1), keepdim=True)
    var = x.var(dim=(-2, -1), keepdim=True, unbiased=False)
    return (x - mean) * torch.rsqrt(var + eps) * weight[:, None, None] + bias[:, None, None]


@pytest.mark.parametrize("x_layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("n", [1, 2])
def test_reference_gradients_with_a_channels_last_output_gradient(n, x_layout):
    torch.manual_seed(0)
    x = torch.randn(n, 3, 5, 4, dtype=torch.float64).to(memory_format=x_layout).requires_grad_()
    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(n, 3, 5, 4, dtype=torch.float64).to(memory_format=torch.channels_last)
    want = torch.autograd.grad(_explicit(x, w, b), (x, w, b), g)
    got = torch.autograd.grad(instance_norm_act_ref(x, w, b), (x, w, b), g)
    module = InstanceNormAct(3, affine=True).double()
    with torch.no_grad():
        module.weight.copy_(w)
        module.bias.copy_(b)
    got_module = torch.autograd.grad(module(x), (x, module.weight, module.bias), g)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e)
    for a, e in zip(got_module, want):
        torch.testing.assert_close(a, e)


def test_unbatched_input_too():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
    g = torch.randn(1, 3, 5, 4, dtype=torch.float64).to(memory_format=torch.channels_last)[0]
    want, = torch.autograd.grad(_explicit(x, torch.ones(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)), x, g)
    got, = torch.autograd.grad(InstanceNormAct(3).double()(x), x, g)
    torch.testing.assert_close(got, want)
