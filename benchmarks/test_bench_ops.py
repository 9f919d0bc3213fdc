"""pytest-benchmark suite for the fused ops: effgan vs eager vs torch.compile, fwd and fwd+bwd.

    pytest benchmarks/ --benchmark-only                   # all ops, the device's default shapes
    pytest benchmarks/ --benchmark-only -k instance_norm  # one op

The summary command (ratios, bandwidth fraction, end-to-end steps) is ``python -m effgan.bench``;
both use the cases in effgan/bench/op_cases.py, timed the same way (``ops_runner._prepare``): each
round on the next of copies of the inputs (and output gradients) totalling twice the last-level
cache, so that a round reads them from memory, as the bytes and GB/s recorded here assume.
"""
import itertools

import pytest
import torch

from effgan.bench import op_cases
from effgan.bench.ops_runner import PROVIDERS, _prepare, _provider_fn
from effgan.bench.timing import rotation_copies

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
SHAPES = op_cases.GPU_SHAPES if DEVICE.type == "cuda" else op_cases.CPU_SHAPES


def _sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def rotating_step(case, provider: str, mode: str):
    """(step, items): ``step()`` runs ``mode`` of ``provider`` on the next of ``items``, the rotating
    copies of the case's inputs."""
    fn = _provider_fn(case, provider, DEVICE, None)
    run, items = _prepare(fn, case, DEVICE, torch.float32, mode, rotation_copies(case.bytes_fwd * 4, DEVICE))
    turn = itertools.count()

    def step():
        run(items[next(turn) % len(items)])
        _sync()

    return step, items


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op", op_cases.available_ops())
def test_op(benchmark, op, shape, provider, mode):
    (case,) = op_cases.cases([op], [shape])
    step, _ = rotating_step(case, provider, mode)
    step()  # warm-up (and compilation for the compile provider)
    benchmark.pedantic(step, rounds=5 if DEVICE.type == "cpu" else 50, warmup_rounds=1)
    nbytes = (case.bytes_fwd + (case.bytes_bwd if mode != "fwd" else 0)) * 4
    benchmark.extra_info.update(device=str(DEVICE), bytes=nbytes)
    if benchmark.stats is not None:  # None under --benchmark-disable, which runs each case once, untimed
        benchmark.extra_info["gbps"] = nbytes / benchmark.stats.stats.median / 1e9
