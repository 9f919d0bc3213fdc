"""pytest-benchmark suite for the fused ops: effgan vs eager vs torch.compile, fwd and fwd+bwd.

    pytest benchmarks/ --benchmark-only                   # all ops, the device's default shapes
    pytest benchmarks/ --benchmark-only -k instance_norm  # one op

The summary command (ratios, bandwidth fraction, end-to-end steps) is ``python -m effgan.bench``;
both use the cases in effgan/bench/op_cases.py.
"""
import pytest
import torch

from effgan.bench import op_cases
from effgan.bench.ops_runner import PROVIDERS, _leaves, _outputs, _provider_fn

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
SHAPES = op_cases.GPU_SHAPES if DEVICE.type == "cuda" else op_cases.CPU_SHAPES


def _sync():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op", op_cases.available_ops())
def test_op(benchmark, op, shape, provider, mode):
    (case,) = op_cases.cases([op], [shape])
    fn = _provider_fn(case, provider, DEVICE, None)
    inputs = case.make_inputs(DEVICE, torch.float32, mode != "fwd")
    if mode == "fwd":
        def run():
            with torch.no_grad():
                fn(inputs)
            _sync()
    else:
        grads = [torch.randn_like(o) for o in _outputs(fn(inputs))]

        def run():
            for t in _leaves(inputs):
                t.grad = None
            torch.autograd.backward(_outputs(fn(inputs)), grads)
            _sync()

    run()  # warm-up (and compilation for the compile provider)
    benchmark.pedantic(run, rounds=5 if DEVICE.type == "cpu" else 50, warmup_rounds=1)
    nbytes = (case.bytes_fwd + (case.bytes_bwd if mode != "fwd" else 0)) * 4
    benchmark.extra_info.update(device=str(DEVICE), bytes=nbytes)
    if benchmark.stats is not None:  # None under --benchmark-disable, which runs each case once, untimed
        benchmark.extra_info["gbps"] = nbytes / benchmark.stats.stats.median / 1e9
