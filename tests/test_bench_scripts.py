"""The scripts beside the benchmarks: the host-time profiler, the results chart, the GPU session's
profiling and memcheck drivers."""
import importlib.util
import json
from pathlib import Path

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_profile_host_reports_both_providers(capsys):
    assert _script("profile_host").main(["--op", "se_scale", "--shape", "1x3x5x4", "--device", "cpu",
                                         "--calls", "3", "--top", "5"]) == 0
    out = capsys.readouterr().out
    for name in ("effgan", "eager"):
        assert f"=== {name}: " in out and " us per fwd+bwd" in out
    assert "Python functions by own time" in out and "torch ops by self CPU time" in out


def test_ab_builds_times_two_builds_in_turns(capsys):
    from effgan import _backend

    if "cpp" not in _backend.available_impls("cpu", "se_scale"):
        pytest.skip("the C++ extension is unavailable")
    import effgan.ops._cpp_kernels as cpp_kernels

    loaded = cpp_kernels.cpp_extension
    build = _backend.cpp_extension().__file__  # the same file twice: the script loads it as a second module
    assert _script("ab_builds").main(["--old", build, "--ops", "se_scale", "--shapes", "1x3x5x4;2x8x7x9",
                                      "--modes", "fwd,fwd+bwd", "--runs", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| se_scale |")]
    assert len(rows) == 4 and all(row.count("|") == 10 for row in rows)
    assert cpp_kernels.cpp_extension is loaded  # restored


def test_profile_step_reports_each_variant(capsys):
    assert _script("profile_step").main(["--model", "dcgan-shallow-28-b64", "--variants", "eager,fused",
                                         "--device", "cpu", "--steps", "1", "--warmup", "1", "--top", "5"]) == 0
    out = capsys.readouterr().out
    for name in ("eager", "fused"):
        assert f"=== dcgan-shallow-28-b64 {name}: median " in out
    assert out.count("device busy 0.00 ms/step") == 2  # no CUDA activity on the CPU
    assert "Python functions by own time" in out and "torch ops by self CPU time" in out


def test_profile_step_can_pause_the_garbage_collector(capsys):
    import gc

    assert gc.isenabled()
    assert _script("profile_step").main(["--model", "dcgan-shallow-28-b64", "--variants", "eager", "--device", "cpu",
                                         "--steps", "1", "--warmup", "1", "--top", "3", "--no-gc"]) == 0
    assert "=== dcgan-shallow-28-b64 eager (gc paused): median " in capsys.readouterr().out
    assert gc.isenabled()  # back on afterwards


def test_profile_step_rejects_unknown_names(capsys):
    with pytest.raises(SystemExit):
        _script("profile_step").main(["--model", "no-such-model"])
    assert "--model must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _script("profile_step").main(["--variants", "eager,turbo"])
    assert "--variants must name some of" in capsys.readouterr().err


def test_plot_results_draws_the_speedups(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    from effgan.bench.__main__ import main

    results = tmp_path / "r.json"
    assert main(["--device", "cpu", "--ops", "se_scale,adain", "--shapes", "1x3x5x4", "--modes", "fwd+bwd",
                 "--e2e", "no", "--budget", "0.01", "--out", str(results)]) == 0
    assert len(json.loads(results.read_text())["speedups"]) == 2
    png = tmp_path / "chart.png"
    assert _script("plot_results").main([str(results), str(png)]) == 0
    with Image.open(png) as img:
        assert img.size[0] >= 800 and img.size[1] >= 400
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"info": {}, "speedups": []}))
    with pytest.raises(SystemExit, match="holds no fwd\\+bwd speedups"):
        _script("plot_results").main([str(empty), str(png)])


def test_instance_norm_floor_times_every_row(capsys):
    from effgan._backend import cpp_status

    ok, reason = cpp_status()
    if not ok:
        pytest.skip(f"the C++ backend is unavailable: {reason}")
    assert _script("instance_norm_floor").main(["--shapes", "1x3x5x4", "--budget", "0.01"]) == 0
    out = capsys.readouterr().out
    for row in ("effgan", "eager", "effgan, residual constant", "eager, residual constant", "kernels"):
        assert f"  {row} " in out
    assert "the ceiling" in out and "floor" in out


@pytest.mark.parametrize("suite, selection, n_cases", [
    ("test_bench_ops.py", "se_scale and 1x256x64x64 and eager", 2),
    ("bench_cpu_ops.py", "copy_bandwidth or (se_scale and 1x256x64x64 and eager)", 3),
])
def test_pytest_benchmark_suites_run_with_benchmarks_disabled(suite, selection, n_cases):
    """``--benchmark-disable`` (a quick check that every case still runs) leaves no timing
    statistics: the suites must not read them then."""
    pytest.importorskip("pytest_benchmark")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pytest", str(BENCH_DIR / suite), "-q", "-p", "no:cacheprovider",
                           "--benchmark-disable", "-k", selection],
                          cwd=BENCH_DIR.parent, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert f"{n_cases} passed" in proc.stdout


def test_bench_cpu_ops_times_no_gradient_of_data_inputs():
    """The AdaIN noise map and the CycleGAN loss's real images are data: a gradient for them is work
    no training step does (two more image writes for the loss), as effgan.bench's cases leave out."""
    import inspect

    import torch

    module = _script("bench_cpu_ops")
    shape = (2, 3, 8, 6)
    for op, (make, ref, _) in module.OPS.items():
        names = list(inspect.signature(ref).parameters)
        inputs = module._inputs(op, shape)
        assert len(inputs) == len(names)
        no_grad = {name for name, t in zip(names, inputs) if not t.requires_grad}
        assert no_grad == {"adain": {"noise"}, "cyclegan_loss": {"real_a", "real_b"}}.get(op, set()), op
        step = module._fwd_bwd(ref, inputs, module._grads_for(ref, inputs))
        step()
        assert all((t.grad is not None) == t.requires_grad for t in inputs)
        assert all(isinstance(t, torch.Tensor) for t in inputs)


@pytest.mark.parametrize("flag, value", [("--calls", "0"), ("--shape", "1x3x5"), ("--shape", "1x3x0x4"),
                                         ("--shape", "ax3x5x4")])
def test_profile_host_rejects_bad_arguments_by_name(capsys, flag, value):
    args = {"--op": "se_scale", "--shape": "1x3x5x4", "--device": "cpu", "--calls": "2", "--top": "2", flag: value}
    with pytest.raises(SystemExit):
        _script("profile_host").main([item for pair in args.items() for item in pair])
    assert flag in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--old", "/nonexistent/effgan_cpp.so"), ("--runs", "0"),
                                         ("--shapes", "1x3x5"), ("--shapes", "1x3xbx4")])
def test_ab_builds_rejects_bad_arguments_by_name(capsys, flag, value):
    from effgan import _backend

    if "cpp" not in _backend.available_impls("cpu", "se_scale"):
        pytest.skip("the C++ extension is unavailable")
    args = {"--old": _backend.cpp_extension().__file__, "--ops": "se_scale", "--shapes": "1x3x5x4", "--runs": "2",
            flag: value}
    with pytest.raises(SystemExit):
        _script("ab_builds").main([item for pair in args.items() for item in pair])
    assert flag in capsys.readouterr().err


@pytest.mark.parametrize("baseline", ["vs_eager", "vs_compile"])
def test_plot_results_draws_speedups_against_one_baseline(tmp_path, baseline):
    """A run with --providers effgan,compile (or effgan,eager) has speedups against that one baseline."""
    pytest.importorskip("matplotlib")
    results = tmp_path / "r.json"
    row = {"op": "se_scale", "shape": [1, 3, 5, 4], "memory_format": "contiguous", "effgan_ms": 1.0,
           "effgan_gbps": 1.0, baseline: 1.3}
    results.write_text(json.dumps({"info": {"device": "cpu", "date": "2026-11-24T00:00:00", "torch": "2"},
                                   "speedups": [row], "ops": []}))
    png = tmp_path / "chart.png"
    assert _script("plot_results").main([str(results), str(png)]) == 0
    assert png.stat().st_size > 0


def test_instance_norm_floor_rotates_its_inputs_past_the_cache():
    """Each row reads its tensors from memory, as its floor assumes: the runs rotate through sets
    of them (one 4 MiB set stays in a 32 MiB L3 and beats the floor from cache)."""
    from effgan._backend import cpp_status

    ok, reason = cpp_status()
    if not ok:
        pytest.skip(f"the C++ backend is unavailable: {reason}")
    runs, _ = _script("instance_norm_floor")._runs((1, 8, 16, 16))
    for name, (run, items) in runs.items():
        assert len(items) > 1, name
        run(items[0])
        run(items[1])
    first, second = runs["effgan"][1][:2]
    assert first["leaves"][0].data_ptr() != second["leaves"][0].data_ptr()
    assert first["dy"].data_ptr() != second["dy"].data_ptr()
    assert first["leaves"][0].grad is not None and first["leaves"][3].grad is not None


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
def test_pytest_benchmark_suite_rotates_its_inputs_past_the_cache(mode):
    """The suite's rounds read their inputs from memory, as its bytes and GB/s assume: each round
    takes the next of copies of the inputs (one 4 MiB set would stay in a 32 MiB L3)."""
    import sys

    import torch

    sys.path.insert(0, str(BENCH_DIR))
    try:
        suite = _script("test_bench_ops")
    finally:
        sys.path.remove(str(BENCH_DIR))
    from effgan.bench.op_cases import cases

    (case,) = cases(["se_scale"], [(1, 256, 64, 64)])
    step, items = suite.rotating_step(case, "eager", mode)
    assert len(items) > 1
    inputs = [item if mode == "fwd" else item[0] for item in items]
    seen = set()
    for _ in range(len(items)):
        step()
        if mode == "fwd+bwd":
            seen |= {i for i, d in enumerate(inputs) if d["x"].grad is not None}
    assert len({d["x"].data_ptr() for d in inputs}) == len(items)
    if mode == "fwd+bwd":
        assert seen == set(range(len(items)))  # every copy had its turn
    assert all(isinstance(d["x"], torch.Tensor) for d in inputs)


def test_bench_cpu_ops_rotates_its_inputs_past_the_cache():
    """bench_cpu_ops.py's rounds take rotating copies of their inputs (one 4 MiB set stays in a
    32 MiB L3, and its bandwidth rows then beat the copy bandwidth they are compared with)."""
    module = _script("bench_cpu_ops")
    _, ref, _ = module.OPS["se_scale"]
    step, sets = module._fwd_bwd_rotating(ref, ref, "se_scale", (1, 256, 64, 64))
    assert len(sets) > 1
    assert len({inputs[0].data_ptr() for inputs in sets}) == len(sets)
    for _ in range(len(sets)):
        step()
    assert all(inputs[0].grad is not None for inputs in sets)  # each copy had its turn


def test_profile_step_median_of_an_even_number_of_steps(capsys, monkeypatch):
    """Of 6 timed steps the median lies between the 3rd and 4th, not at the 4th."""
    import itertools
    import re
    import time

    from effgan.bench import e2e

    def fake_step_fn(spec, variant, device):
        # one warm-up step, the six timed ones, then the profiled steps
        durations = itertools.chain([0.0, 0.00, 0.01, 0.02, 0.03, 0.04, 0.05], itertools.repeat(0.0))
        return (lambda batch: time.sleep(next(durations))), [0, 1]

    monkeypatch.setattr(e2e, "step_fn", fake_step_fn)
    assert _script("profile_step").main(["--model", "dcgan-shallow-28-b64", "--variants", "eager", "--device", "cpu",
                                         "--steps", "6", "--warmup", "1", "--top", "1"]) == 0
    median_ms = float(re.search(r"median ([0-9.]+) ms/step", capsys.readouterr().out).group(1))
    assert 23.0 < median_ms < 29.0


def test_memcheck_ops_drives_every_case_of_an_op(capsys):
    """The memcheck driver's cases run (here in the Triton interpreter; under compute-sanitizer on a GPU)."""
    from effgan._backend import available_impls

    if "triton" not in available_impls("cpu", "se_scale"):
        pytest.skip("triton unavailable on cpu")
    module = _script("memcheck_ops")
    assert module.main(["--ops", "se_scale", "--device", "cpu"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ok se_scale ")]
    assert len(lines) == len(module.SHAPES) * len(module.DTYPES) * len(module.LAYOUTS)


@pytest.mark.parametrize("script, args, flag", [
    ("memcheck_ops", ["--ops", "se_scale,bogus"], "--ops"),
    ("ncu_op", ["--shape", "1x3x5"], "--shape"),
    ("ncu_op", ["--warmup", "0"], "--warmup"),
    ("ab_dwconv_tiles", ["--shapes", "1x3xbx4"], "--shapes"),
    ("ab_dwconv_tiles", ["--budget", "0"], "--budget"),
    ("ab_dwconv_tiles", ["--kernel-size", "4"], "--kernel-size"),
    ("ab_dwconv_tiles", ["--choices", "4,c7"], "--choices"),
    ("ncu_op", ["--provider", "cudnn"], "--provider"),
    ("recapture_memory", ["--recaptures", "0"], "--recaptures"),
    ("recapture_memory", ["--model", "cyclegan-nonexistent"], "--model"),
])
def test_gpu_session_scripts_reject_bad_arguments_by_name(capsys, script, args, flag):
    with pytest.raises(SystemExit):
        _script(script).main(args)
    assert flag in capsys.readouterr().err


def test_tile_ab_times_the_kernel_size_it_names():
    """--kernel-size 5 swaps the case's 3x3 weight for a 5x5 one the op accepts (run here on the CPU)."""
    import torch
    from effgan.bench import op_cases

    (case,) = op_cases.cases(["dwconv_norm_act"], [(1, 6, 9, 11)], "ref", channels_last=True)
    case5 = _script("ab_dwconv_tiles")._with_kernel_size(case, 5)
    d = case5.make_inputs(torch.device("cpu"), torch.float32, True)
    assert d["weight"].shape == (6, 1, 5, 5) and d["weight"].requires_grad
    assert d["x"].is_contiguous(memory_format=torch.channels_last)
    y, _ = case5.effgan(d)
    assert y.shape == (1, 6, 9, 11)


@pytest.mark.parametrize("choice", ["c32", "c16"])
def test_tile_ab_channel_caps_launch_correct_kernels(choice, monkeypatch, poison_outputs):
    """The A/B's channel-capped geometries (channels_last: 40 channels in tiles of 32 + 8 or
    16 + 16 + 8 instead of one 64-wide tile) give the reference's outputs and gradients (interpreter, float64)."""
    import torch
    from effgan._backend import available_impls
    from effgan.ops import dwconv_norm_act, dwconv_norm_act_ref

    if "triton" not in available_impls("cpu", "dwconv_norm_act"):
        pytest.skip("triton unavailable on cpu")
    from effgan.kernels import dwconv_norm_act as kernels

    geometry = _script("ab_dwconv_tiles").CHOICES[choice](kernels._conv_split)
    x0 = torch.randn(2, 40, 9, 11, dtype=torch.float64)
    split = kernels.plane_split(x0.to(memory_format=torch.channels_last), 2, 40, 99)
    assert geometry(split, True).BLOCK_C == int(choice[1:]) < split.BLOCK_C
    monkeypatch.setattr(kernels, "_conv_split", geometry)
    g = torch.Generator().manual_seed(3)
    w = torch.randn(40, 1, 3, 3, dtype=torch.float64, generator=g)
    nw, nb = torch.rand(40, dtype=torch.float64, generator=g) + 0.5, torch.randn(40, dtype=torch.float64, generator=g)
    gy = torch.randn(2, 40, 9, 11, dtype=torch.float64, generator=g)
    gs = torch.randn(2, 40, dtype=torch.float64, generator=g)
    results = []
    for fn, kw in ((dwconv_norm_act, {"impl": "triton"}), (dwconv_norm_act_ref, {})):
        leaves = [t.clone().requires_grad_() for t in (x0, w, nw, nb)]
        x = leaves[0].to(memory_format=torch.channels_last)
        y, sq = fn(x, leaves[1], None, leaves[2], leaves[3], act="silu", **kw)
        torch.autograd.backward((y, sq), (gy, gs))
        results.append([y, sq] + [t.grad for t in leaves])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("script", ["ncu_op", "ab_dwconv_tiles", "recapture_memory"])
def test_gpu_only_scripts_say_they_need_cuda(capsys, script, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        _script(script).main([])
    assert "needs a CUDA device" in capsys.readouterr().err
