"""What the fused ops cannot do is an error naming the op or the argument, never a silent wrong
answer: forward-mode AD (torch.func.jvp, torch.autograd.forward_ad) and sparse tensors. Plus the
CycleGAN loss's gradients when float64 meets 16-bit tensors in one call."""
from __future__ import annotations

import pytest
import torch
from torch.autograd import forward_ad

import effgan.ops as O
from tests.op_harness import fast_backends, seeded


def _calls(impl, device):
    g = seeded("modes")

    def rand(*shape):
        return torch.randn(*shape, generator=g).to(device)

    x = rand(2, 3, 6, 5)
    imgs = [rand(2, 3, 6, 5) for _ in range(4)]
    params = O.sample_diff_augment_params(2, 6, 5, generator=torch.Generator().manual_seed(1), device=device)
    ones, zeros = torch.ones(2, 3, device=device), torch.zeros(2, 3, device=device)
    return {
        "instance_norm_act": (lambda a: O.instance_norm_act(a, act="silu", impl=impl), x),
        "adain": (lambda a: O.adain(a, ones, zeros, impl=impl), x),
        "se_scale": (lambda a: O.se_scale(a, rand(2, 3), impl=impl), x),
        "dwconv_norm_act": (lambda a: O.dwconv_norm_act(a, rand(3, 1, 3, 3), impl=impl)[0], x),
        "diff_augment": (lambda a: O.diff_augment(a, params=params, impl=impl), x),
        "cyclegan_loss": (lambda a: O.cyclegan_generator_loss(rand(2, 1, 3, 3), rand(2, 1, 3, 3), a, *imgs[1:],
                                                              impl=impl).total, imgs[0]),
    }


@pytest.mark.parametrize("op", ["instance_norm_act", "adain", "se_scale", "dwconv_norm_act", "diff_augment",
                                "cyclegan_loss"])
@pytest.mark.parametrize("impl,device", fast_backends("instance_norm_act"))
def test_forward_mode_ad_is_refused(impl, device, op):
    fn, x = _calls(impl, device)[op]
    tangent = torch.randn_like(x)
    with pytest.raises(NotImplementedError, match="no forward-mode derivative"):
        torch.func.jvp(fn, (x,), (tangent,))
    with forward_ad.dual_level():
        with pytest.raises(NotImplementedError, match="no forward-mode derivative"):
            fn(forward_ad.make_dual(x, tangent))
        fn(x)  # inside a dual level without dual arguments: an ordinary call
    # the reference composite has the forward-mode derivative the error points to
    ref_fn, _ = _calls("ref", device)[op]
    _, jvp_out = torch.func.jvp(ref_fn, (x,), (tangent,))
    assert torch.isfinite(jvp_out).all() and jvp_out.abs().sum() > 0


@pytest.mark.parametrize("impl,device", fast_backends("instance_norm_act"))
def test_sparse_input_names_the_argument(impl, device):
    x = torch.randn(1, 2, 3, 3).to_sparse()
    with pytest.raises(TypeError, match="x must be a dense"):
        O.instance_norm_act(x, impl=impl)
    with pytest.raises(TypeError, match="gate must be a dense"):
        O.se_scale(torch.randn(1, 2, 3, 3), torch.randn(1, 2).to_sparse(), impl=impl)


@pytest.mark.parametrize("impl,device", fast_backends("cyclegan_loss"))
def test_cyclegan_loss_float64_with_bfloat16_gradients(impl, device):
    """A float64 operand makes the kernels accumulate in float64; 16-bit gradients must still be right."""
    g = seeded("mixed-loss")
    for pred_dtype, img_dtype in ((torch.bfloat16, torch.float64), (torch.float64, torch.bfloat16)):
        preds = [torch.randn(1, 1, 4, 4, generator=g).to(device, pred_dtype) for _ in range(2)]
        imgs = [torch.randn(1, 3, 8, 8, generator=g).to(device, img_dtype) for _ in range(4)]
        grads = {}
        for which in (impl, "ref"):
            p = [t.clone().requires_grad_() for t in preds]
            i = [t.clone().requires_grad_() for t in imgs]
            O.cyclegan_generator_loss(*p, *i, impl=which).total.backward()
            grads[which] = [t.grad.double() for t in p + i]
        for k, (a, b) in enumerate(zip(grads[impl], grads["ref"])):
            assert b.abs().max() > 0
            torch.testing.assert_close(a, b, rtol=2e-2, atol=1e-3, msg=lambda m: f"{pred_dtype}/{img_dtype} grad {k}: {m}")


@pytest.mark.parametrize("op", ["instance_norm_act", "adain", "se_scale", "dwconv_norm_act", "diff_augment",
                                "cyclegan_loss"])
@pytest.mark.parametrize("impl,device", fast_backends("instance_norm_act"))
def test_functorch_reverse_mode_is_refused_naming_the_op(impl, device, op):
    """torch.func.grad / vjp / jacrev cannot run a custom op's autograd formula (torch's own error
    speaks of an autograd.Function's setup_context); the op says so and points to impl='ref'."""
    fn, x = _calls(impl, device)[op]
    with pytest.raises(NotImplementedError, match=f"{op}.*torch.func.grad.*impl='ref'"):
        torch.func.grad(lambda a: fn(a).sum())(x)
    with pytest.raises(NotImplementedError, match="torch.func.grad"):
        torch.func.vjp(fn, x)
    ref_fn, _ = _calls("ref", device)[op]
    assert torch.isfinite(torch.func.grad(lambda a: ref_fn(a).sum())(x)).all()
