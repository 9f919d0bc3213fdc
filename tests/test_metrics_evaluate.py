"""python -m effgan.evaluate on checkpoints in effgan.train's format (built here without training)."""
import dataclasses
import json

import pytest
import torch

from effgan.evaluate.__main__ import main
from effgan.evaluate.report import format_table
from effgan.train import checkpoint as ckpt
from effgan.train import config as cfg
from effgan.train.family import DataInfo
from effgan.train.model_builders import registry_builder


def write_checkpoint(run_dir, config, models, step=7):
    payload = {"format": ckpt.FORMAT_VERSION, "family": config.model, "config": cfg.to_dict(config),
               "step": step, "models": {k: m.state_dict() for k, m in models.items()}, "sample_models": {}}
    ckpt.save_atomic(payload, run_dir / ckpt.CHECKPOINT_DIR / ckpt.LATEST)


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    from effgan.train.cyclegan import build_generator

    run_dir = tmp_path_factory.mktemp("cyclegan_run")
    config = cfg.TrainConfig(model="cyclegan", dataset="cans", image_size=64, ngf=4, seed=0)
    resolved = dataclasses.replace(cfg.resolve(config), fused=False)
    torch.manual_seed(0)
    data = DataInfo(channels=3, image_size=64)
    models = {name: build_generator(resolved, data, registry_builder, False, "ref") for name in ("G_A", "G_B")}
    write_checkpoint(run_dir, config, models)
    return run_dir


COMMON = ["--max-items", "4", "--feature-train-items", "8", "--feature-steps", "2", "--kid-subsets", "3"]


def test_cyclegan_checkpoint_prints_table_and_writes_tagged_json(cyclegan_run, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["--checkpoint", str(cyclegan_run), *COMMON, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["model"] == "cyclegan" and result["step"] == 7
    name = result["extractor"]
    assert name.startswith("featnet-rotation-")
    metrics = result["metrics"]
    for key in ("cycle_mae_a", "identity_mae_b", "paired_mae_ab", "paired_psnr_ba", "paired_ssim_ab",
                f"fid_ab/{name}", f"kid_mean_ba/{name}"):
        assert isinstance(metrics[key], float), key
        assert key in printed
    assert name in printed
    # The feature net is cached in the run directory and reused by the next evaluation.
    cached = list((cyclegan_run / "feature_nets").glob("feature_net_*.pt"))
    assert len(cached) == 1
    assert main(["--checkpoint", str(cyclegan_run), *COMMON, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"] == pytest.approx(metrics)
    # --which takes sample's and translate's names too
    assert main(["--checkpoint", str(cyclegan_run), *COMMON, "--which", "latest", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"] == pytest.approx(metrics)


def test_cgan_checkpoint_reports_classifier_score(tmp_path, capsys):
    from effgan.train.model_builders import gan_model_names

    config = cfg.TrainConfig(model="cgan", dataset="digits", image_size=28, seed=0)
    resolved = dataclasses.replace(cfg.resolve(config), fused=False)
    data = DataInfo(channels=1, image_size=28, num_classes=10)
    g_name, _, g_kwargs, _ = gan_model_names(resolved, data, 10)
    torch.manual_seed(0)
    write_checkpoint(tmp_path, config, {"G": registry_builder(g_name, **g_kwargs)})
    out = tmp_path / "eval.json"
    assert main(["--checkpoint", str(tmp_path), "--max-items", "20", "--feature-train-items", "40",
                 "--feature-steps", "2", "--kid-subsets", "3", "--c2st-steps", "2", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())["metrics"]
    for key in ("classifier_acc/generated", "classifier_acc/real_test", "classifier_acc/generated_class_9",
                "c2st_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert any(key.startswith("fid/featnet-classifier-") for key in metrics)


def test_missing_checkpoint_is_a_clean_error(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_table_formatting():
    table = format_table({"fid/x": 12.3456, "kid_mean/x": 1.5e-5, "paired_psnr_ab": float("inf")}, title="t")
    lines = table.splitlines()
    assert lines[0] == "t"
    assert lines[3].split() == ["fid/x", "12.35"]
    assert lines[4].split() == ["kid_mean/x", "1.500e-05"]
    assert lines[5].split() == ["paired_psnr_ab", "inf"]
