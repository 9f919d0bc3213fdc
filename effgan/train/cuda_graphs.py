"""Replay a fixed-shape training phase (forward, backward, optimiser step) as one CUDA graph.

A GAN step is a few such phases (the G update, the D update) separated by host-side logic that
a graph cannot hold, e.g. the CycleGAN image pool's random choices. Each phase is captured once
and replayed: the CPU then launches one graph instead of hundreds of kernels, which is what
limits small-batch GAN training on a fast GPU.

Protocol, as the PyTorch CUDA-graph docs require for whole-network capture:
- the first ``warmup`` calls run eagerly on a side stream (they are real training steps), so
  lazy initialisation (cuDNN plans, optimiser state, autocast caches) happens outside capture;
- gradients are set to None before capture, so backward inside the graph *assigns* them from
  the graph's private memory pool and every replay overwrites them;
- inputs are copied into static tensors before each replay; outputs are the graph's static
  tensors, overwritten by the next replay, so callers must consume (or clone) them first.
The optimisers must be built with ``capturable=True`` and no GradScaler may be enabled.
"""
from __future__ import annotations

from typing import Callable

import torch

PhaseFn = Callable[..., dict[str, torch.Tensor]]


def check_supported(device: torch.device, amp: str) -> None:
    """Raise a clear error for configurations where graph capture cannot work."""
    if device.type != "cuda":
        raise ValueError(f"--cuda-graphs needs a CUDA device, but the run uses {device}; drop the flag on CPU")
    if amp == "fp16":
        raise ValueError("--cuda-graphs cannot be combined with --amp fp16 (GradScaler syncs with the host); "
                         "use --amp bf16")


class GraphedPhase:
    """Call ``fn(*tensors) -> dict of tensors`` eagerly, or through a captured CUDA graph when enabled."""

    def __init__(self, fn: PhaseFn, *, enabled: bool, warmup: int = 3) -> None:
        if warmup < 1:
            raise ValueError(f"warmup must be >= 1, got {warmup}")
        self.fn = fn
        self.enabled = enabled
        self.warmup = warmup
        self._calls = 0
        self._graph: torch.cuda.CUDAGraph | None = None
        self._static_inputs: tuple[torch.Tensor, ...] = ()
        self._static_outputs: dict[str, torch.Tensor] = {}

    def __call__(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.enabled:
            return self.fn(*inputs)
        if self._graph is None and self._calls < self.warmup:
            self._calls += 1
            return self._eager_on_side_stream(inputs)
        if self._graph is None:
            self._capture(inputs)
        for static, value in zip(self._static_inputs, inputs):
            static.copy_(value)
        self._graph.replay()
        return dict(self._static_outputs)

    def recapture(self) -> None:
        """Drop the captured graph, so that the next call captures the phase again (without new
        warm-up calls: the lazy state they create exists by then). For values a graph keeps from
        its capture, such as the float lr fused Adam passes to its kernel."""
        self._graph = None
        self._static_inputs, self._static_outputs = (), {}

    def _eager_on_side_stream(self, inputs) -> dict[str, torch.Tensor]:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            out = self.fn(*inputs)
        torch.cuda.current_stream().wait_stream(side)
        return out

    def _capture(self, inputs) -> None:
        self._static_inputs = tuple(x.detach().clone() for x in inputs)
        graph = torch.cuda.CUDAGraph()
        # the phase's own zero_grad(set_to_none=True) leaves grads None at capture start
        with torch.cuda.graph(graph):
            self._static_outputs = self.fn(*self._static_inputs)
        self._graph = graph
