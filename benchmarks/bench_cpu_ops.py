"""CPU speed of effgan's fused ops: the C++ backend against eager PyTorch and torch.compile.

    python -m effgan.build_ext            # compile the extension first (not part of the timings)
    pytest benchmarks/bench_cpu_ops.py -s --benchmark-columns=min,median,rounds

For each fused op (instance_norm_act, adain, dwconv_norm_act, se_scale, cyclegan_loss), forward + backward, three providers side by side in one run:
  effgan-cpp  the op with impl="cpp"
  eager       the op's ``<op>_ref`` composite in eager PyTorch
  compile     torch.compile (inductor, CPU) of that same composite
at shapes (1, 256, 64, 64), (1, 64, 256, 256), (4, 128, 64, 64). Also the instance_norm_act
forward bandwidth (x read + y written) against the copy bandwidth of the machine measured in the
same run (a large tensor.copy_, bytes read + written).

At the end a table of medians and ratios is printed and written to
``benchmarks/results/bench_cpu_ops.md``. Other processes on the machine make the numbers noisy;
compare ratios from one run.
"""
from __future__ import annotations

import itertools
import platform
import time
from pathlib import Path

import pytest
import torch

from effgan._backend import available_impls
from effgan.bench.timing import rotation_copies
from effgan.ops import instance_norm_act, instance_norm_act_ref

SHAPES = [(1, 256, 64, 64), (1, 64, 256, 256), (4, 128, 64, 64)]
PROVIDERS = ["effgan-cpp", "eager", "compile"]
COPY_BYTES = 256 * 2**20  # per tensor: far beyond the caches
RESULTS_FILE = Path(__file__).parent / "results" / "bench_cpu_ops.md"

_medians: dict[tuple, float] = {}  # (op, shape, provider) -> median seconds
_bandwidth: dict[str, float] = {}  # label -> GB/s


# ---------------------------------------------------------------- op definitions


def _gen():
    return torch.Generator().manual_seed(0)


def _instance_norm_inputs(shape):
    g = _gen()
    C = shape[1]
    return [torch.randn(shape, generator=g), torch.randn(C, generator=g), torch.randn(C, generator=g)]


def _instance_norm_ref(x, w, b):
    return instance_norm_act_ref(x, w, b, act="relu")


def _instance_norm_fused(x, w, b):
    return instance_norm_act(x, w, b, act="relu", impl="cpp")


def _adain_inputs(shape):
    g = _gen()
    N, C, H, W = shape
    return [torch.randn(shape, generator=g), torch.randn(N, C, generator=g) + 1, torch.randn(N, C, generator=g),
            torch.randn(N, 1, H, W, generator=g), torch.randn(C, generator=g), torch.randn(C, generator=g)]


def _adain_ref(x, s, sb, noise, nw, b):
    from effgan.ops.adain import adain_ref

    return adain_ref(x, s, sb, noise, nw, b, act="leaky_relu", negative_slope=0.2)


def _adain_fused(x, s, sb, noise, nw, b):
    from effgan.ops.adain import adain

    return adain(x, s, sb, noise, nw, b, act="leaky_relu", negative_slope=0.2, impl="cpp")


def _dwconv_inputs(shape):
    g = _gen()
    C = shape[1]
    return [torch.randn(shape, generator=g), torch.randn(C, 1, 3, 3, generator=g) / 3,
            torch.randn(C, generator=g), torch.randn(C, generator=g)]


def _dwconv_ref(x, w, nw, nb):
    from effgan.ops.dwconv_norm_act import dwconv_norm_act_ref

    return dwconv_norm_act_ref(x, w, None, nw, nb, act="silu")


def _dwconv_fused(x, w, nw, nb):
    from effgan.ops.dwconv_norm_act import dwconv_norm_act

    return dwconv_norm_act(x, w, None, nw, nb, act="silu", impl="cpp")


def _se_scale_inputs(shape):
    g = _gen()
    return [torch.randn(shape, generator=g), torch.randn(shape[:2], generator=g)]


def _se_scale_ref(x, gate):
    from effgan.ops.se_scale import se_scale_ref

    return se_scale_ref(x, gate)


def _se_scale_fused(x, gate):
    from effgan.ops.se_scale import se_scale

    return se_scale(x, gate, impl="cpp")


def _cyclegan_inputs(shape):
    """Images of ``shape`` (rec/real/idt for both domains) and 30x30 PatchGAN logit maps."""
    g = _gen()
    N = shape[0]
    return [torch.randn(N, 1, 30, 30, generator=g), torch.randn(N, 1, 30, 30, generator=g)] + [
        torch.randn(shape, generator=g).tanh() for _ in range(6)
    ]


def _cyclegan_ref(pb, pa, rec_a, real_a, rec_b, real_b, idt_a, idt_b):
    from effgan.ops.cyclegan_loss import cyclegan_generator_loss_ref

    return cyclegan_generator_loss_ref(pb, pa, rec_a, real_a, rec_b, real_b, idt_a, idt_b).total


def _cyclegan_fused(pb, pa, rec_a, real_a, rec_b, real_b, idt_a, idt_b):
    from effgan.ops.cyclegan_loss import cyclegan_generator_loss

    return cyclegan_generator_loss(pb, pa, rec_a, real_a, rec_b, real_b, idt_a, idt_b, impl="cpp").total


OPS = {
    "instance_norm_act": (_instance_norm_inputs, _instance_norm_ref, _instance_norm_fused),
    "adain": (_adain_inputs, _adain_ref, _adain_fused),
    "dwconv_norm_act": (_dwconv_inputs, _dwconv_ref, _dwconv_fused),
    "se_scale": (_se_scale_inputs, _se_scale_ref, _se_scale_fused),
    "cyclegan_loss": (_cyclegan_inputs, _cyclegan_ref, _cyclegan_fused),
}


# Inputs that are data in training (the noise map, the real images): no gradient, as in the training
# step and in effgan.bench's cases; a gradient for them would time two extra image writes per call.
NO_GRAD_INPUTS = {"adain": {3}, "cyclegan_loss": {3, 5}}


def _inputs(op: str, shape) -> list[torch.Tensor]:
    """``op``'s inputs at ``shape``: leaves that require a gradient, except the data ones."""
    make = OPS[op][0]
    return [t.requires_grad_(i not in NO_GRAD_INPUTS.get(op, ())) for i, t in enumerate(make(shape))]


def _cpp_available(op: str) -> bool:
    """Whether the cpp backend runs ``op`` here (the op module may not exist yet, or lack a kernel)."""
    try:
        return "cpp" in available_impls("cpu", op)
    except Exception:
        return False


# ---------------------------------------------------------------- timing helpers


def _fwd_bwd(fn, inputs, grads):
    leaves = [t for t in inputs if t.requires_grad]

    def step():
        for t in leaves:
            t.grad = None
        out = fn(*inputs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        torch.autograd.backward(outs, grads[: len(outs)])

    return step


def _rotating(steps: list):
    """One step that runs the next of ``steps`` at each call."""
    turn = itertools.count()
    return lambda: steps[next(turn) % len(steps)]()


def _copies(make, nbytes_per_set: int) -> list:
    """Sets of ``make()`` totalling twice the last-level cache (effgan.bench.timing.rotation_copies):
    rounds that take them in turn read their inputs from memory, as the bandwidth rows and the
    comparison with the copy bandwidth assume (one 4 MiB set would stay in a 32 MiB L3)."""
    return [make() for _ in range(rotation_copies(nbytes_per_set, torch.device("cpu")))]


def _fwd_bwd_rotating(fn, ref, op: str, shape):
    """(step, sets): forward + backward of ``fn`` on the next of rotating copies of ``op``'s inputs
    (and output gradients)."""
    sets = _copies(lambda: _inputs(op, shape), sum(t.nbytes for t in _inputs(op, shape)))
    return _rotating([_fwd_bwd(fn, inputs, _grads_for(ref, inputs)) for inputs in sets]), sets


def _grads_for(fn, inputs):
    """Fixed random upstream gradients shaped like fn's outputs (one call outside the timings)."""
    with torch.no_grad():
        out = fn(*inputs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    g = _gen()
    return [torch.randn(o.shape, generator=g, dtype=o.dtype) for o in outs]


def _median(benchmark) -> float | None:
    """The timed rounds' median; None under --benchmark-disable, which runs each case once, untimed."""
    return None if benchmark.stats is None else benchmark.stats.stats.median


def _record(benchmark, key):
    median = _median(benchmark)
    if median is not None:
        _medians[key] = median


# ---------------------------------------------------------------- benchmarks


@pytest.fixture(params=[0, 1], ids=["all-threads", "1-thread"])
def threads(request):
    """0: torch's default thread count; 1: one thread. On a shared machine a parallel region waits
    for its slowest (descheduled) thread, so the one-thread rows show what the kernel itself does."""
    saved = torch.get_num_threads()
    if request.param:
        torch.set_num_threads(request.param)
    yield request.param or saved
    torch.set_num_threads(saved)


def test_copy_bandwidth(benchmark, threads):
    src = torch.randn(COPY_BYTES // 4)
    dst = torch.empty_like(src)
    benchmark.group = "bandwidth"
    benchmark.pedantic(lambda: dst.copy_(src), rounds=10, warmup_rounds=2)
    median = _median(benchmark)
    if median is not None:
        _bandwidth[f"copy, {threads} thread(s)"] = 2 * src.nbytes / median / 1e9
        benchmark.extra_info["GB/s"] = _bandwidth[f"copy, {threads} thread(s)"]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_instance_norm_act_forward_bandwidth(benchmark, shape, threads):
    if not _cpp_available("instance_norm_act"):
        pytest.skip("the cpp backend is unavailable")
    sets = _copies(lambda: _instance_norm_inputs(shape), 2 * 4 * torch.Size(shape).numel())
    x = sets[0][0]
    benchmark.group = "bandwidth"
    step = _rotating([lambda x=x, w=w, b=b: instance_norm_act(x, w, b, act="relu", impl="cpp") for x, w, b in sets])
    with torch.no_grad():
        benchmark.pedantic(step, rounds=20, warmup_rounds=2)
    median = _median(benchmark)
    if median is not None:
        gbs = 2 * x.nbytes / median / 1e9
        _bandwidth[f"instance_norm_act fwd {tuple(shape)}, {threads} thread(s)"] = gbs
        benchmark.extra_info["GB/s"] = gbs


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("op", list(OPS))
def test_forward_backward(benchmark, op, shape, provider):
    _, ref, fused = OPS[op]
    if provider == "effgan-cpp":
        if not _cpp_available(op):
            pytest.skip(f"the cpp backend is unavailable for {op}")
        fn = fused
    elif provider == "eager":
        fn = ref
    else:
        torch._dynamo.reset()
        fn = torch.compile(ref, dynamic=False)
    step, _ = _fwd_bwd_rotating(fn, ref, op, shape)
    if provider == "compile":
        start = time.perf_counter()
        step()  # compile outside the timed rounds
        benchmark.extra_info["compile_s"] = time.perf_counter() - start
    benchmark.group = f"{op} fwd+bwd {shape}"
    benchmark.pedantic(step, rounds=10 if provider != "eager" else 5, warmup_rounds=1)
    _record(benchmark, (op, tuple(shape), provider))


# ---------------------------------------------------------------- summary


def _table() -> str:
    lines = [
        f"CPU: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "",
        "| op | shape | effgan-cpp ms | eager ms | compile ms | vs eager | vs compile |",
        "|---|---|---|---|---|---|---|",
    ]
    for op in OPS:
        for shape in SHAPES:
            t = {p: _medians.get((op, tuple(shape), p)) for p in PROVIDERS}
            if not any(t.values()):
                continue
            ms = ["%.2f" % (v * 1e3) if v else "-" for v in t.values()]
            cpp = t["effgan-cpp"]
            ratio = lambda other: f"{other / cpp:.2f}x" if cpp and other else "-"  # noqa: E731
            lines.append(f"| {op} | {shape} | {' | '.join(ms)} | {ratio(t['eager'])} | {ratio(t['compile'])} |")
    if _bandwidth:
        lines += ["", "| forward bandwidth (relu, affine) | GB/s | fraction of copy, same threads |", "|---|---|---|"]
        for label, gbs in sorted(_bandwidth.items(), key=lambda kv: kv[0].rsplit(", ", 1)[1]):
            copy = _bandwidth.get("copy, " + label.rsplit(", ", 1)[1])
            frac = f"{gbs / copy:.0%}" if copy else "-"
            lines.append(f"| {label} | {gbs:.2f} | {frac} |")
    return "\n".join(lines)


@pytest.fixture(scope="module", autouse=True)
def _summary():
    yield
    if not _medians and not _bandwidth:
        return
    table = _table()
    print("\n" + table)
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(table + "\n")
