"""The benchmark command runs end to end at a tiny size and writes a complete JSON report."""
import json
import os

import pytest
import torch

from effgan.bench.__main__ import main


def test_bench_cli_tiny(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["--device", "cpu", "--ops", "instance_norm_act", "--shapes", "1x3x9x7", "--providers", "effgan,eager",
               "--modes", "fwd,fwd+bwd", "--e2e", "no", "--budget", "0.01", "--out", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["info"]["torch"] and data["info"]["commit"]
    assert data["copy_bandwidth_gbps"] > 0
    rows = [r for r in data["ops"] if "error" not in r]
    assert {(r["provider"], r["mode"]) for r in rows} == {(p, m) for p in ("effgan", "eager") for m in ("fwd", "fwd+bwd")}
    assert all(r["median_ms"] > 0 and r["gbps"] > 0 for r in rows)
    (row,) = data["speedups"]
    assert row["vs_eager"] > 0
    assert "| instance_norm_act | 1x3x9x7 |" in capsys.readouterr().out
    assert data["complete"] is True


def test_bench_cli_times_every_mode_against_compile(tmp_path):
    """The default modes include "bwd": a backward timed alone must work for torch.compile too,
    whose backward donates buffers and so refuses to run twice on one graph."""
    out = tmp_path / "r.json"
    assert main(["--device", "cpu", "--ops", "instance_norm_act", "--shapes", "1x32x32x32", "--providers",
                 "eager,compile", "--e2e", "no", "--budget", "0.01", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["ops"]
    assert not [r for r in rows if "error" in r]
    assert {(r["provider"], r["mode"]) for r in rows} == {(p, m) for p in ("eager", "compile")
                                                          for m in ("fwd", "bwd", "fwd+bwd")}


def test_bench_cli_bfloat16_every_op(tmp_path, capsys):
    """--dtype bfloat16 builds every case's inputs in a dtype the op takes (the SE gate included)."""
    out = tmp_path / "r.json"
    assert main(["--device", "cpu", "--ops", "all", "--shapes", "2x16x12x10", "--providers", "effgan,eager",
                 "--dtype", "bfloat16", "--e2e", "no", "--budget", "0.01", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert not [r for r in data["ops"] if "error" in r]
    from effgan.bench.op_cases import available_ops
    assert {r["op"] for r in data["speedups"]} == set(available_ops())
    assert all(r["dtype"] == "bfloat16" for r in data["ops"])


@pytest.mark.parametrize("failing", ["bwd", "fwd+bwd"])
def test_a_failing_mode_keeps_the_providers_other_modes(monkeypatch, failing):
    """One mode failing for a provider is an error row for that mode; its other modes still count,
    and the speedup table leaves the error row out."""
    from effgan.bench import ops_runner
    from effgan.bench.op_cases import cases

    prepare = ops_runner._prepare

    def one_mode_fails(fn, case, device, dtype, mode, n_copies, **kw):
        if mode == failing and fn is case.effgan:
            raise RuntimeError("not today")
        return prepare(fn, case, device, dtype, mode, n_copies, **kw)

    monkeypatch.setattr(ops_runner, "_prepare", one_mode_fails)
    rows = ops_runner.run_op_benchmarks(cases(["se_scale"], [(1, 3, 5, 4)], impl="ref"), torch.device("cpu"),
                                        providers=("effgan", "eager"), budget_s=0.01, log=lambda *a: None)
    errors = [r for r in rows if "error" in r]
    assert [(r["provider"], r["mode"]) for r in errors] == [("effgan", failing)]
    assert "not today" in errors[0]["error"]
    timed = sorted((r["provider"], r["mode"]) for r in rows if "error" not in r)
    assert timed == sorted({(p, m) for p in ("effgan", "eager") for m in ops_runner.MODES} - {("effgan", failing)})
    table = ops_runner.speedup_table(rows)
    assert len(table) == (failing != "fwd+bwd")


@pytest.mark.parametrize("flag, value", [
    ("--providers", "foo"), ("--providers", ","), ("--modes", "fwd,back"), ("--budget", "0"), ("--budget", "-1"),
    ("--shapes", "1x4x8"), ("--shapes", "0x4x8x8"), ("--device", "foo"), ("--device", "meta"),
    ("--out", "."), ("--out", "a_file/r.json"), ("--e2e-models", "nope"), ("--e2e-variants", "nope"),
    ("--e2e-variants", "eager,fused+graphs"), ("--compile-mode", "fastest"),
])
def test_bench_cli_rejects_bad_arguments_before_measuring(tmp_path, monkeypatch, flag, value):
    """A bad argument stops the run before the first measurement, with a message naming it."""
    from effgan.bench import __main__ as cli

    monkeypatch.setattr(cli, "copy_bandwidth", lambda *a: pytest.fail("measured before checking the arguments"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("")  # a file where --out needs a folder
    args = {"--device": "cpu", "--ops": "se_scale", "--shapes": "1x3x5x4", "--e2e": "yes", "--budget": "0.01",
            "--out": "r.json", flag: value}
    with pytest.raises(SystemExit) as stop:
        main([item for pair in args.items() for item in pair])
    assert str(stop.value.code).startswith(flag)
    assert not os.path.exists(tmp_path / "r.json")


def test_bench_cli_stopped_midway_keeps_what_it_measured(tmp_path, monkeypatch):
    """A run killed by a time limit during the end-to-end models still leaves the op table and the
    finished models on disk, marked incomplete."""
    from effgan.bench import e2e

    def first_model_then_stopped(device, *, on_model_done, **kw):
        on_model_done([{"model": "m1", "variant": "eager", "step_ms": 1.0}])
        raise KeyboardInterrupt  # what a SIGINT from `timeout -s INT` delivers

    monkeypatch.setattr(e2e, "run_e2e_benchmarks", first_model_then_stopped)
    out = tmp_path / "r.json"
    with pytest.raises(KeyboardInterrupt):
        main(["--device", "cpu", "--ops", "se_scale", "--shapes", "1x3x9x7", "--providers", "effgan",
              "--modes", "fwd", "--budget", "0.01", "--out", str(out)])
    data = json.loads(out.read_text())
    assert data["complete"] is False
    assert [r["op"] for r in data["ops"]] == ["se_scale"]
    assert data["e2e"] == [{"model": "m1", "variant": "eager", "step_ms": 1.0}]
    assert not os.path.exists(f"{out}.tmp")


def test_bench_cli_channels_last(tmp_path, capsys):
    """--channels-last feeds every provider channels_last inputs and says so in the rows and the table."""
    out = tmp_path / "r.json"
    rc = main(["--device", "cpu", "--ops", "dwconv_norm_act", "--shapes", "1x10x9x7", "--providers", "effgan,eager",
               "--modes", "fwd+bwd", "--e2e", "no", "--budget", "0.01", "--channels-last", "--out", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    rows = [r for r in data["ops"] if "error" not in r]
    assert len(rows) == 2 and all(r["memory_format"] == "channels_last" for r in rows)
    (row,) = data["speedups"]
    assert row["memory_format"] == "channels_last" and row["vs_eager"] > 0
    assert "| dwconv_norm_act | 1x10x9x7 (channels_last) |" in capsys.readouterr().out


def test_channels_last_cases_keep_leaves():
    """The channels_last inputs are leaves in channels_last memory, with requires_grad kept."""
    from effgan.bench.op_cases import cases

    (case,) = cases(["instance_norm_act"], [(2, 5, 4, 3)], channels_last=True)
    d = case.make_inputs(torch.device("cpu"), torch.float32, True)
    assert d["x"].is_leaf and d["x"].requires_grad
    assert d["x"].is_contiguous(memory_format=torch.channels_last) and not d["x"].is_contiguous()
    assert d["weight"].dim() == 1 and d["weight"].requires_grad


def test_default_out_path_keeps_full_results():
    """Only a run of every op, shape and provider on float32 NCHW inputs gets the device's plain name."""
    from effgan.bench.__main__ import default_out_path, parse_args

    info = {"device_type": "cpu", "device": "AMD EPYC"}
    name = lambda argv: os.path.basename(default_out_path(parse_args(argv), info))  # noqa: E731
    full = name([])
    assert full.endswith(".json") and "partial" not in full
    assert name(["--modes", "bwd,fwd+bwd,fwd", "--e2e", "yes"]) == full  # every mode, in any order
    stem = full[: -len(".json")]
    for subset in (["--modes", "fwd+bwd,fwd"], ["--e2e", "no"], ["--e2e-models", "cyclegan-default-64-b1"]):
        assert name(subset) == f"{stem}-partial.json", subset
    assert name(["--compile-mode", "max-autotune"]) == f"{stem}-compile-max-autotune.json"
    assert name(["--compile-mode", "default"]) == full  # the CPU's default mode
    assert name(["--ops", "se_scale"]) == f"{stem}-partial.json"
    assert name(["--shapes", "1x3x8x8"]) == f"{stem}-partial.json"
    assert name(["--providers", "effgan,eager"]) == f"{stem}-partial.json"
    assert name(["--e2e-variants", "eager,fused"]) == f"{stem}-partial.json"
    assert name(["--channels-last", "--dtype", "bfloat16"]) == f"{stem}-channels-last-bfloat16.json"
    assert name(["--quick", "--modes", "fwd,fwd+bwd"]) == f"{stem}-quick.json"  # --quick's own modes
    assert name(["--quick", "--e2e", "no"]) == f"{stem}-quick-partial.json"
    assert name(["--quick", "--cuda-graphs"]) == f"{stem}-quick-graphs.json"


def test_bench_cuda_graphs_needs_cuda(tmp_path):
    from effgan.bench.op_cases import cases
    from effgan.bench.ops_runner import run_op_benchmarks

    with pytest.raises(SystemExit, match="--cuda-graphs needs a CUDA device"):
        main(["--device", "cpu", "--cuda-graphs", "--ops", "se_scale", "--e2e", "no", "--out", str(tmp_path / "r.json")])
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA device"):
        run_op_benchmarks(cases(["se_scale"], [(1, 2, 3, 3)]), torch.device("cpu"), cuda_graphs=True)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bench_cli_cuda_graphs_on_gpu(tmp_path):
    """Graph replays time every provider and mode; a replay is no slower than the host-bound calls."""
    out = tmp_path / "r.json"
    args = ["--device", "cuda", "--ops", "instance_norm_act", "--shapes", "2x64x64x64", "--modes", "fwd,fwd+bwd",
            "--e2e", "no", "--budget", "0.05"]
    assert main([*args, "--cuda-graphs", "--out", str(out)]) == 0
    assert main([*args, "--out", str(tmp_path / "calls.json")]) == 0
    graphed = {(r["provider"], r["mode"]): r for r in json.loads(out.read_text())["ops"]}
    calls = {(r["provider"], r["mode"]): r for r in json.loads((tmp_path / "calls.json").read_text())["ops"]}
    assert set(graphed) == {(p, m) for p in ("effgan", "eager", "compile") for m in ("fwd", "fwd+bwd")}
    for key, row in graphed.items():
        assert "error" not in row and row["timed"] == "graph replay", row
        assert row["median_ms"] <= 1.5 * calls[key]["median_ms"], (key, row["median_ms"], calls[key]["median_ms"])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graphed_runs_keep_their_inputs_alive():
    """A replay reads its inputs at the addresses of the capture: ``graphed`` must hold them even
    when the caller drops its own references and the allocator returns freed memory to the device."""
    from effgan.bench.ops_runner import graphed

    device = torch.device("cuda")
    x = torch.randn(1 << 20, device=device)
    expected = 2 * x
    out = torch.full_like(x, float("nan"))
    replay, graphs = graphed(lambda item: item[1].copy_(item[0] * 2), [(x, out)], device)
    del x
    torch.cuda.empty_cache()
    other = torch.full((1 << 22,), 7.0, device=device)  # would take the freed memory
    replay(graphs[0])
    torch.cuda.synchronize()
    torch.testing.assert_close(out, expected)
    assert other.eq(7.0).all()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bench_cli_cuda_graphs_every_op_on_gpu(tmp_path):
    """Every op's case can be captured (DiffAugment's parameters are drawn outside the call)."""
    out = tmp_path / "r.json"
    assert main(["--device", "cuda", "--ops", "all", "--shapes", "2x32x24x24", "--modes", "fwd+bwd", "--e2e", "no",
                 "--providers", "effgan,eager", "--budget", "0.02", "--cuda-graphs", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["ops"]
    assert not [r for r in rows if "error" in r]
    from effgan.bench.op_cases import available_ops
    assert {(r["op"], r["provider"]) for r in rows} == {(op, p) for op in available_ops() for p in ("effgan", "eager")}


def test_bench_cli_e2e_variants(tmp_path, capsys):
    """--e2e-variants runs only the named variants; an unknown name is an error that lists the known."""
    out = tmp_path / "r.json"
    assert main(["--device", "cpu", "--ops", "none", "--e2e-models", "cyclegan-default-64-b1",
                 "--e2e-variants", "eager,fused", "--budget", "0.01", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["e2e"]
    assert [r["variant"] for r in rows] == ["eager", "fused"] and all("step_ms" in r for r in rows)
    with pytest.raises(SystemExit, match=r"--e2e-variants: unknown \['nosuch'\]; known: .*'fused\+graphs'"):
        main(["--device", "cpu", "--ops", "none", "--e2e-variants", "eager,nosuch", "--out", str(out)])


def test_bench_cli_optional_e2e_model(tmp_path):
    """The EfficientNet-B0 CycleGAN step runs when named, and is not part of the CPU default set."""
    from effgan.bench import e2e

    label = "cyclegan-effnet-b0-64-b1"
    assert label not in {s.label for s in e2e.CPU_SPECS + e2e.GPU_SPECS}
    out = tmp_path / "r.json"
    assert main(["--device", "cpu", "--ops", "none", "--e2e-models", label, "--e2e-variants", "fused",
                 "--budget", "0.01", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["e2e"]
    assert [(r["model"], r["variant"]) for r in rows] == [(label, "fused")] and rows[0]["step_ms"] > 0
