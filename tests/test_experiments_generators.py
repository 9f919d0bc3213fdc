"""The generator experiment: budgets, the step meter, and one end-to-end run at the smallest budget."""
import json
import time

import pytest
import torch

from effgan.experiments.budgets import PRESETS, Budget, parse_budget
from effgan.experiments.generators import main, markdown_table, run_experiment
from effgan.experiments.step_meter import StepMeter, current_rss_bytes


def test_budget_parsing():
    assert parse_budget("smoke") is PRESETS["smoke"]
    custom = parse_budget("40")
    assert custom.steps == 40 and custom.checkpoint_every == 10 and custom.name == "40-steps"
    assert parse_budget("7").checkpoint_every == 1
    # odd step counts: a few checkpoints (each write is inside the timed interval), not one a step
    assert parse_budget("1001").checkpoint_every == 143 and parse_budget("20001").checkpoint_every == 6667
    with pytest.raises(ValueError, match="cannot be cut into 2-8 timed intervals"):
        parse_budget("1009")  # a prime
    with pytest.raises(ValueError, match="budget"):
        parse_budget("huge")
    with pytest.raises(ValueError, match="multiple"):
        Budget("bad", steps=5, checkpoint_every=2, image_size=64, ngf=8, train_length=4, eval_items=4,
               feature_steps=1, feature_items=4, kid_subsets=1)


def test_step_meter_times_the_steps_between_calls_and_tracks_memory():
    meter = StepMeter("cpu", steps_per_call=5)
    meter(None)
    rss_at_start = current_rss_bytes()
    time.sleep(0.05)
    held = torch.ones(64 * 2**20 // 4)  # 64 MiB touched while the meter runs
    held += 1
    # What the process really grew by (less than 64 MiB if it reused pages it already held).
    grown = None if rss_at_start is None else current_rss_bytes() - rss_at_start
    time.sleep(0.05)
    meter(None)
    meter.close()
    assert meter.timed_steps == 5
    assert 0.1 / 5 <= meter.step_time_s < 1.0
    if grown is None:
        assert meter.memory_method == "n/a" and meter.peak_memory_mb is None
    else:
        assert meter.memory_method == "cpu_peak_rss_delta_sampled"
        assert meter.peak_memory_mb * 2**20 >= 0.9 * grown
    single = StepMeter("cpu", steps_per_call=3)
    single(None)
    single.close()
    assert single.step_time_s is None and single.timed_steps == 0


def test_step_meter_counts_the_steps_of_a_run_that_ended_off_the_checkpoint_grid():
    """Checkpoints every 2 steps and a stop at step 5: calls at steps 2, 4 and 5 time 3 steps, not 4."""
    meter = StepMeter("cpu", steps_per_call=2)
    for _ in range(3):
        meter(None)
    meter.close()
    assert meter.timed_steps == 4  # what the grid alone says
    meter.run_ended_at(5)
    assert meter.timed_steps == 3
    assert meter.step_time_s == pytest.approx((meter.call_times[-1] - meter.call_times[0]) / 3)


def test_markdown_table_names_the_extractor():
    rows = [{"generator": "g1", "steps": 40, "params": 2_500_000, "flops": 3e9, "step_time_ms": 12.34,
             "peak_memory_mb": None, "metrics": {"cycle_mae_a": 0.25, "fid_ab/featnet-x": 1.5}}]
    table = markdown_table(rows, "featnet-x").splitlines()
    assert "fid_ab [featnet-x]" in table[0]
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert cells[:7] == ["g1", "40", "2.500", "3.000", "12.3", "n/a", "0.25"]


TINY = Budget("tiny", steps=2, checkpoint_every=1, image_size=64, ngf=8, train_length=4, eval_items=4,
              feature_steps=2, feature_items=8, kid_subsets=2)


def test_end_to_end_smallest_budget(tmp_path):
    # Plain torch modules: the fused build would first compile the C++ extension.
    summary = run_experiment(TINY, generators=("resnet6",), out_dir=str(tmp_path), device="cpu", fused=False)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["extractor"] == summary["extractor"] and saved["fused"] is False
    assert saved["isolated_processes"] is True  # trained in a spawned process, evaluated here
    (row,) = saved["rows"]
    assert row["generator"] == "resnet6" and row["steps"] == 2 and row["timed_steps"] == 1
    assert row["params"] > 0 and row["flops"] > 0 and row["step_time_ms"] > 0
    assert row["memory_method"] in ("cpu_peak_rss_delta_sampled", "n/a")
    for key in ("cycle_mae_a", "paired_mae_ab", "paired_ssim_ab", f"fid_ab/{saved['extractor']}"):
        assert isinstance(row["metrics"][key], float)
    assert (tmp_path / "quality_vs_step_time.png").stat().st_size > 1000
    assert "| resnet6 |" in (tmp_path / "results.md").read_text()
    partial = json.loads((tmp_path / "results-partial.json").read_text())  # written after each generator
    assert [r["generator"] for r in partial["rows"]] == ["resnet6"]
    # A second run into the same folder would mix runs: refused.
    with pytest.raises(ValueError, match="fresh folder"):
        run_experiment(TINY, generators=("resnet6",), out_dir=str(tmp_path), device="cpu", fused=False)


def test_cli_rejects_bad_budget(capsys):
    assert main(["--budget", "nonsense"]) == 2
    assert "budget" in capsys.readouterr().err


def test_cuda_graphs_refused_off_cuda(tmp_path, capsys):
    # Refused before any training starts: the folder stays empty.
    assert main(["--budget", "smoke", "--device", "cpu", "--cuda-graphs", "--out", str(tmp_path / "x")]) == 2
    assert "cuda_graphs needs a CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_cuda_graphs_reach_the_training_config():
    from effgan.experiments.generators import train_config

    config = train_config("resnet6", PRESETS["smoke"], out_dir="unused", seed=0, device=torch.device("cuda"),
                          fused=True, cuda_graphs=True)
    assert config.cuda_graphs and config.fused and config.device == "cuda"


@pytest.mark.parametrize("budget", [PRESETS["smoke"], PRESETS["small"], PRESETS["full"], parse_budget("1000"),
                                    parse_budget("1002")], ids=lambda b: b.name)
def test_the_schedule_covers_the_budget(budget):
    # a budget of 1000 steps over 250 scenes once trained 500: the default 1 + 1 epochs ended the run
    from effgan.experiments.generators import train_config

    config = train_config("resnet6", budget, out_dir="unused", seed=0, device=torch.device("cpu"), fused=False)
    assert config.max_steps == budget.steps
    assert (config.epochs + config.epochs_decay) * budget.train_length >= budget.steps  # batch size 1
    assert config.epochs == config.epochs_decay  # constant, then decay, over equal halves


@pytest.mark.parametrize("budget", ["smoke", "small", "full"])
def test_every_generator_config_is_one_the_trainer_accepts(tmp_path, budget):
    """The budget's width is the ResNets' and every discriminator's; an effnet generator sets its own
    (the trainer refuses a width it would ignore)."""
    from effgan.experiments.generators import DEFAULT_GENERATORS, train_config
    from effgan.train import config as cfg

    for generator in DEFAULT_GENERATORS:
        config = cfg.resolve(train_config(generator, PRESETS[budget], out_dir=str(tmp_path), seed=0,
                                          device=torch.device("cpu"), fused=True))
        cfg.check_options_apply(config)
        assert config.ndf == PRESETS[budget].ngf, generator
        if not generator.startswith("effnet-"):
            assert config.ngf == PRESETS[budget].ngf, generator


def test_a_generator_that_diverges_is_reported_and_the_others_still_train(tmp_path, monkeypatch, capsys):
    import dataclasses

    from effgan.experiments import generators as experiment

    original = experiment.train_config

    def diverging(generator, budget, **kwargs):  # resnet6 blows up at its first step, resnet9 trains
        config = original(generator, budget, **kwargs)
        return dataclasses.replace(config, lr=1e30) if generator == "resnet6" else config

    monkeypatch.setattr(experiment, "train_config", diverging)
    summary = run_experiment(TINY, generators=("resnet6", "resnet9"), out_dir=str(tmp_path), device="cpu",
                             fused=False, isolate=False)
    failed, trained = summary["rows"]
    assert failed["generator"] == "resnet6" and "NaN or inf" in failed["error"] and failed["metrics"] == {}
    assert trained["generator"] == "resnet9" and trained["steps"] == 2 and "error" not in trained
    assert isinstance(trained["metrics"]["paired_ssim_ab"], float)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [r["generator"] for r in saved["rows"]] == ["resnet6", "resnet9"]
    table = (tmp_path / "results.md").read_text()
    assert "| resnet6 | failed |" in table and "resnet6 failed: " in table
    assert "resnet6 failed" in capsys.readouterr().err


class _DiesWhenUnpickled:
    """Stands for a training process that is killed (out of memory) or crashes: the child exits at once."""

    out_dir, run_name = "runs", "resnet6"

    def __reduce__(self):
        import os

        return os._exit, (3,)


def test_a_training_process_that_dies_is_reported_not_waited_for_forever():
    import threading

    from effgan.experiments.generators import train_in_fresh_process

    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(train_in_fresh_process(_DiesWhenUnpickled(), 1)),
                              daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "the experiment waits forever for a training process that died"
    assert "died" in outcome["error"] and outcome["steps"] is None
