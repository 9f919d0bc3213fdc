"""Double backward through effgan's fused ops is refused with a clear error.

Each op's backward is itself a custom op; giving that op an autograd formula that raises turns a
``create_graph=True`` backward followed by a second backward (e.g. an R1 penalty through a fused
layer) into an explicit error instead of silently wrong or missing gradients.
"""
from __future__ import annotations

import torch


def forbid_double_backward(backward_op, op_name: str) -> None:
    def setup_context(ctx, inputs, output):
        pass

    def refuse(ctx, *grads):
        raise RuntimeError(
            f"effgan.{op_name} does not support double backward (a gradient of its gradient); "
            f"use impl='ref' for layers that need it, e.g. under an R1 penalty"
        )

    torch.library.register_autograd(backward_op, refuse, setup_context=setup_context)
