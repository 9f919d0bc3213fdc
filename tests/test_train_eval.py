"""--eval-every: evaluation during training, its logs, best.pt by its metrics, and the startup checks."""
from __future__ import annotations

import os

import pytest

from effgan.train import checkpoint as ckpt
from effgan.train import resolve, train
from effgan.train.__main__ import main
from effgan.train.evaluation import check_eval_options
from effgan.train.run_logger import read_jsonl
from train_support import one_thread, stylegan_available, tiny_config  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
NEEDS_ADAIN = pytest.mark.skipif(not stylegan_available(), reason="needs effgan.nn.AdaIN")

# tiny metric networks: a few training steps on a few images keep each evaluation well under a second
EVAL = dict(eval_items=4, eval_train_items=16, eval_train_steps=3)
EVAL_FLAGS = ["--eval-items", "4", "--eval-train-items", "16", "--eval-train-steps", "3"]
TINY_CYCLEGAN_FLAGS = ["--ngf", "4", "--ndf", "4", "--train-length", "4", "--d-layers", "2", "--pool-size", "2",
                       "--impl", "ref", "--cpu-threads", "1", "--no-tensorboard", "--no-progress", "--log-every", "1",
                       "--checkpoint-every", "0", "--device", "cpu", "--num-samples", "2", "--epochs", "1",
                       "--epochs-decay", "1"]


def _checkpoint_records(run_dir) -> list[dict]:
    return [r for r in read_jsonl(os.path.join(run_dir, "metrics.jsonl")) if r["kind"] == "checkpoint"]


def test_cyclegan_cli_eval_logs_paired_metrics_and_picks_best_by_ssim(tmp_path, monkeypatch):
    run = tmp_path / "cg"
    argv = ["cyclegan", "--out-dir", str(tmp_path), "--run-name", "cg", "--max-steps", "4", *TINY_CYCLEGAN_FLAGS,
            "--eval-every", "2", *EVAL_FLAGS, "--best-metric", "paired_ssim_ab", "--best-mode", "max"]
    assert main(argv) == 0
    records = _checkpoint_records(run)
    assert [r["step"] for r in records] == [2, 4]  # eval steps are checkpoint steps, with checkpoint_every 0
    for record in records:
        for key in ("paired_ssim_ab", "paired_mae_ab", "paired_psnr_ba", "cycle_mae_a", "identity_mae_b"):
            assert isinstance(record[key], float), key
        assert any(k.startswith("fid_ab/featnet-") for k in record)
        assert any(k.startswith("kid_mean_ba/featnet-") for k in record)
        assert "loss_G" in record  # with the checkpoint's mean losses
    best = ckpt.load(run / "checkpoints" / "best.pt")
    winner = max(records, key=lambda r: r["paired_ssim_ab"])
    assert best["step"] == winner["step"] and best["best"]["metric"] == "paired_ssim_ab"
    assert best["best"]["value"] == pytest.approx(winner["paired_ssim_ab"])
    cached = sorted(os.listdir(run / "feature_nets"))
    assert len(cached) == 1

    # a resumed run reuses the cached feature net instead of training another
    import effgan.metrics.feature_net as feature_net

    def no_training(*args, **kwargs):
        raise AssertionError("the feature net was trained again on resume")

    monkeypatch.setattr(feature_net, "train_feature_net", no_training)
    assert main(["--resume", str(run), "--max-steps", "6", "--no-progress"]) == 0
    assert [r["step"] for r in _checkpoint_records(run)] == [2, 4, 6]
    assert sorted(os.listdir(run / "feature_nets")) == cached


@pytest.mark.parametrize("model", ["dcgan", "cgan", pytest.param("stylegan", marks=NEEDS_ADAIN)])
def test_latent_families_log_fid_kid_and_classifier_score(tmp_path, model):
    config = tiny_config(model, tmp_path, run_name=model, max_steps=2, eval_every=2, best_metric="fid", **EVAL)
    result = train(config)
    [record] = _checkpoint_records(result.run_dir)
    fid_keys = [k for k in record if k.startswith("fid/featnet-")]
    assert len(fid_keys) == 1
    extractor = fid_keys[0].split("/", 1)[1]
    assert {f"kid_mean/{extractor}", f"kid_std/{extractor}"} <= set(record)
    if model == "cgan":
        expected = {"classifier_acc/generated", "classifier_acc/real_test", "classifier_acc/generated_class_9"}
        assert expected <= set(record)
    else:
        assert not any(k.startswith("classifier_acc") for k in record)
    best = ckpt.load(os.path.join(result.run_dir, "checkpoints", "best.pt"))  # the bare "fid" found its key
    assert best["best"]["value"] == pytest.approx(record[fid_keys[0]])


def test_eval_schedule_with_checkpoints_in_between(tmp_path):
    result = train(tiny_config("dcgan", tmp_path, max_steps=5, epochs=2, checkpoint_every=3, eval_every=2,
                               best_metric="kid_mean", **EVAL))
    records = _checkpoint_records(result.run_dir)
    assert [r["step"] for r in records] == [2, 3, 4, 5]
    # every eval_every steps and at the end; the checkpoint at step 3 has no evaluation
    assert [any(k.startswith("kid_mean/") for k in r) for r in records] == [True, False, True, True]
    best = ckpt.load(os.path.join(result.run_dir, "checkpoints", "best.pt"))
    assert best["step"] in (2, 4, 5)


def test_best_metric_needs_evaluation(tmp_path, capsys):
    with pytest.raises(ValueError, match="evaluation is off.*--eval-every"):
        train(tiny_config("cyclegan", tmp_path, max_steps=1, best_metric="paired_ssim_ab", best_mode="max"))
    assert main(["dcgan", "--out-dir", str(tmp_path), "--best-metric", "fid"]) == 2
    assert "best_metric 'fid' is an evaluation metric" in capsys.readouterr().err
    assert not os.listdir(tmp_path)  # refused before any run directory was made
    # a Python metrics_fn may report it, as before
    result = train(tiny_config("dcgan", tmp_path, max_steps=1, best_metric="fid"), metrics_fn=lambda f: {"fid": 1.0})
    assert ckpt.load(os.path.join(result.run_dir, "checkpoints", "best.pt"))["best"]["value"] == 1.0


def test_best_metric_the_evaluation_does_not_report(tmp_path):
    with pytest.raises(ValueError, match="not reported by the evaluation of a dcgan run"):
        train(tiny_config("dcgan", tmp_path, eval_every=1, best_metric="paired_ssim_ab", best_mode="max"))
    with pytest.raises(ValueError, match="not reported by the evaluation of a cyclegan run"):
        train(tiny_config("cyclegan", tmp_path, eval_every=1, best_metric="fid"))  # fid_ab / fid_ba there


def test_eval_option_checks(tmp_path):
    config = resolve(tiny_config("cyclegan", tmp_path, eval_every=2, best_metric="paired_ssim_ab"))  # mode "min"
    with pytest.warns(UserWarning, match="pass --best-mode max"):
        check_eval_options(config, has_metrics_fn=False)
    missing = tiny_config("dcgan", tmp_path, eval_every=2, fid_weights=str(tmp_path / "pt_inception.pth"))
    with pytest.raises(ValueError, match="fid_weights .* is not a file"):
        train(missing)
    with pytest.raises(ValueError, match="eval_items must be >= 2"):
        train(tiny_config("dcgan", tmp_path, eval_every=2, eval_items=1))
    with pytest.raises(ValueError, match="eval_every must be >= 0"):
        train(tiny_config("dcgan", tmp_path, eval_every=-1))


def test_evaluate_uses_the_feature_net_training_logged_with(tmp_path, monkeypatch):
    """An unconditional run on labelled data (digits): `python -m effgan.evaluate` must size the
    FeatureNet by the data's classes as training did (not by the largest label among the few
    images it learns from), so it finds training's cached network and reports the same FID."""
    import effgan.metrics.feature_net as feature_net
    from effgan.evaluate import EvaluationOptions, evaluate_checkpoint

    config = tiny_config("dcgan", tmp_path, run_name="dc", max_steps=2, eval_every=2, eval_items=4,
                         eval_train_items=3, eval_train_steps=2)
    result = train(config)
    [record] = _checkpoint_records(result.run_dir)
    [fid_key] = [k for k in record if k.startswith("fid/featnet-")]

    def no_training(*args, **kwargs):
        raise AssertionError("evaluate trained a feature net of its own")

    monkeypatch.setattr(feature_net, "train_feature_net", no_training)
    report = evaluate_checkpoint(result.run_dir, EvaluationOptions(c2st_steps=0))
    assert f"fid/{report['extractor']}" == fid_key
    assert report["metrics"][fid_key] == pytest.approx(record[fid_key], rel=1e-4)


def test_evaluate_scores_a_plain_folder_run_against_its_training_images(tmp_path):
    """A plain image folder has no test split: training's evaluation compares with the training
    images (with a warning), and `python -m effgan.evaluate` must do the same, not refuse the run."""
    import numpy as np
    from PIL import Image

    from effgan.evaluate import EvaluationOptions, evaluate_checkpoint

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8)).save(folder / f"{i:02d}.png")
    config = tiny_config("dcgan", tmp_path, run_name="folder", dataset=str(folder), max_steps=2, eval_every=2,
                         eval_items=6, eval_train_items=6, eval_train_steps=2)
    with pytest.warns(UserWarning, match="compare with the training images"):
        result = train(config)
    [record] = _checkpoint_records(result.run_dir)
    [fid_key] = [k for k in record if k.startswith("fid/featnet-")]
    with pytest.warns(UserWarning, match="compare with the training images"):
        report = evaluate_checkpoint(result.run_dir, EvaluationOptions(c2st_steps=0))
    assert report["metrics"][fid_key] == pytest.approx(record[fid_key], rel=1e-4)
