"""The eager fast path of effgan's torch.library ops.

Each fused op is a pair of ``torch.library.custom_op`` s (forward, backward) with a registered
autograd formula: that is what torch.compile, fake tensors, export and functorch see. In plain
eager mode the same machinery costs ~150 µs of Python per forward+backward (schema parsing,
dispatcher round trips, the generated autograd wrapper), which is more than the C++ kernel itself
takes on a small plane and made a fused CycleGAN step slower than eager PyTorch on the CPU.

``FusedOp`` runs the same implementation functions, the same ``setup_context`` and the same
backward formula through a plain ``torch.autograd.Function`` when nothing but eager autograd is
watching, and through the custom ops otherwise. The two paths share every line of math, so they
cannot disagree; the tests run both.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch.autograd import forward_ad


def save_for_backward(ctx, *tensors) -> None:
    """``ctx.save_for_backward`` that also takes inference tensors (made under torch.inference_mode,
    such as a frozen network's output) by saving a clone: autograd refuses to save them, and the
    reference composites, which save derived tensors, accept such an input."""
    ctx.save_for_backward(*(t.clone() if isinstance(t, torch.Tensor) and t.is_inference() else t
                            for t in tensors))


def eager_only() -> bool:
    """True when no compiler, tracer, dispatch/function mode or functorch transform is active.

    Only then may an op bypass its custom-op registration: all of those need to see the op itself
    (its fake implementation, its autograd formula), not the kernels inside it.
    """
    return not (
        torch.compiler.is_compiling()
        or torch._C._are_functorch_transforms_active()
        or torch._C._len_torch_dispatch_stack() > 0
        or torch._C._is_torch_function_mode_enabled()
    )


def _plain(flat_args: tuple) -> bool:
    """No tensor subclass that overrides __torch_function__ (e.g. DTensor) among the arguments."""
    return not torch.overrides.has_torch_function(flat_args)  # non-tensor arguments are ignored


def _any_requires_grad(flat_args: tuple) -> bool:
    for a in flat_args:
        if isinstance(a, torch.Tensor) and a.requires_grad:
            return True
    return False


# Neither the custom ops nor the kernels have a forward-mode formula: a custom op without one hands
# back a zero tangent under torch.func.jvp, and the kernels drop a dual tensor's tangent. Both
# checks are kept off the eager fast path: jvp is a functorch transform (so never eager_only()), and
# dual tensors exist only inside a dual_level() (one integer compare otherwise).
def _active_transform(*names: str) -> bool:
    """Whether a functorch transform of one of these TransformType names ("Jvp", "Grad") is active."""
    from torch._C._functorch import TransformType
    from torch._functorch.pyfunctorch import retrieve_all_functorch_interpreters

    kinds = {getattr(TransformType, n) for n in names}
    return any(i.key() in kinds for i in retrieve_all_functorch_interpreters())


def _has_dual(flat_args: tuple) -> bool:
    if forward_ad._current_level < 0:  # not inside a dual_level()
        return False
    return any(isinstance(a, torch.Tensor) and forward_ad.unpack_dual(a).tangent is not None for a in flat_args)


def _zeros_if_none(grad, spec):
    """A differentiable output's gradient, zeros where autograd passed none (spec: shape, dtype, device)."""
    if grad is None and spec is not None:
        shape, dtype, device = spec
        return torch.zeros(shape, dtype=dtype, device=device)
    return grad


class FusedOp:
    """A fused op's forward custom op plus the eager autograd.Function that mirrors it.

    name: the op's name (the eager grad_fn is ``<name>_eagerBackward``).
    fwd_op / fwd_impl: the registered custom op and the plain function it was made from.
    setup_context / backward: the functions passed to ``torch.library.register_autograd``.
    nondiff_outputs: indices of outputs that carry no gradient (saved statistics); outputs of an
        integer dtype never do.
    list_args: positions of arguments that are lists of tensors. autograd.Function only sees
        tensors passed directly, so these are passed flat (with their lengths) and the backward's
        per-list gradients are flattened to match.
    list_output: the op returns a list of tensors (its backward takes them as one list).
    """

    def __init__(self, name: str, fwd_op, fwd_impl: Callable, setup_context: Callable, backward: Callable,
                 nondiff_outputs: Sequence[int] = (), list_args: Sequence[int] = (), list_output: bool = False) -> None:
        self.name, self.fwd_op, self.fwd_impl = name, fwd_op, fwd_impl
        nondiff = tuple(nondiff_outputs)
        self._list_args = tuple(list_args)
        unflatten = self._unflatten

        # The ctx-first forward style: Function.apply binds arguments with inspect.signature when a
        # separate setup_context is defined, which alone costs tens of µs a call.
        def forward(ctx, *flat):
            args, lengths = unflatten(flat)
            output = fwd_impl(*args)
            setup_context(ctx, args, output)
            ctx.list_lengths = lengths
            outputs = tuple(output) if list_output else (output if isinstance(output, tuple) else (output,))
            carries = [i not in nondiff and o.is_floating_point() for i, o in enumerate(outputs)]
            marked = [o for o, c in zip(outputs, carries) if not c]
            if marked:
                ctx.mark_non_differentiable(*marked)
            # Gradients are materialised here, not by autograd: the differentiable outputs' missing
            # ones as zeros (what autograd would pass), the others' not at all. The backward formulas
            # never read the gradient of a statistic or of the loss's sign bits, and zero-filling
            # those (a quarter image of signs per L1 pair) cost ~0.1 ms per loss backward.
            ctx.set_materialize_grads(False)
            ctx.zero_grad_shapes = [(o.shape, o.dtype, o.device) if c else None for o, c in zip(outputs, carries)]
            return outputs if list_output else output

        def function_backward(ctx, *grads):
            grads = [_zeros_if_none(g, spec) for g, spec in zip(grads, ctx.zero_grad_shapes)]
            grads_in = backward(ctx, grads) if list_output else backward(ctx, *grads)
            if not ctx.list_lengths:
                return grads_in
            grads_in = grads_in if isinstance(grads_in, tuple) else (grads_in,)
            flat = [None]  # the lengths argument
            for i, g in enumerate(grads_in):
                if i in ctx.list_lengths:
                    n = ctx.list_lengths[i]
                    flat += list(g) if g else [None] * n
                else:  # a non-tensor argument's "gradient" (e.g. [] for a list of floats) is None here
                    flat.append(g if isinstance(g, torch.Tensor) else None)
            return tuple(flat)

        self._function = type(
            f"{name}_eager",
            (torch.autograd.Function,),
            {"forward": staticmethod(forward), "backward": staticmethod(function_backward)},
        )

    def _flatten(self, args: tuple) -> tuple:
        """args with each list argument spread out, after a header (argument count, list lengths)."""
        if not self._list_args:
            return args
        lengths = {i: len(args[i]) for i in self._list_args}
        flat: list = [(len(args), lengths)]
        for i, a in enumerate(args):
            flat += list(a) if i in lengths else [a]
        return tuple(flat)

    def _unflatten(self, flat: tuple) -> tuple[tuple, dict]:
        if not self._list_args:
            return flat, {}
        (nargs, lengths), rest = flat[0], flat[1:]
        args, k = [], 0
        for i in range(nargs):
            n = lengths.get(i)
            if n is None:
                args.append(rest[k])
                k += 1
            else:
                args.append(list(rest[k:k + n]))
                k += n
        return tuple(args), lengths

    def _refuse_forward_ad(self):
        raise NotImplementedError(
            f"{self.name}: effgan's fused ops have no forward-mode derivative (torch.func.jvp, "
            "torch.autograd.forward_ad); call the op with impl='ref' (or build the module with fused=False) "
            "for those")

    def _refuse_functorch_reverse_mode(self):
        # torch runs a custom op's autograd formula through an autograd.Function that functorch's
        # grad transforms cannot take; its own error speaks of a setup_context the caller never wrote
        raise NotImplementedError(
            f"{self.name}: effgan's fused ops do not run under functorch's reverse-mode transforms "
            "(torch.func.grad, vjp, jacrev); use ordinary autograd (loss.backward(), torch.autograd.grad), "
            "or call the op with impl='ref' (or build the module with fused=False) for those")

    def __call__(self, *args):
        flat = self._flatten(args)  # the tensors of list arguments as arguments of their own
        if _has_dual(flat):
            self._refuse_forward_ad()
        if not (eager_only() and _plain(flat)):
            if torch._C._are_functorch_transforms_active():
                if _active_transform("Jvp"):
                    self._refuse_forward_ad()
                if _active_transform("Grad"):
                    self._refuse_functorch_reverse_mode()
            return self.fwd_op(*args)
        if torch.is_grad_enabled() and _any_requires_grad(flat):
            return self._function.apply(*flat)
        return self.fwd_impl(*args)


def call_backward(bwd_op, bwd_impl: Callable, *args):
    """Run a fused op's backward: directly in eager mode, through its custom op otherwise.

    With grad mode on inside a backward (``create_graph=True``) the custom op is used, so its
    registered formula raises the op's "no double backward" error instead of returning gradients
    that silently lack their own graph.
    """
    if torch.is_grad_enabled() or not (eager_only() and _plain(args)):
        return bwd_op(*args)
    return bwd_impl(*args)
