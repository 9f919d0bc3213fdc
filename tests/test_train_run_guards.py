"""A new run never replaces an earlier run's checkpoints, and a best_metric no checkpoint reports
is refused at the first step instead of leaving best.pt unwritten for the whole run."""
from __future__ import annotations

import os

import pytest
import torch

from effgan.train import train
from train_support import one_thread, tiny_config  # noqa: F401 (fixture)


def test_a_new_run_refuses_a_run_name_that_holds_checkpoints(tmp_path):
    first = train(tiny_config("dcgan", tmp_path, run_name="r", max_steps=2))
    latest = os.path.join(first.run_dir, "checkpoints", "latest.pt")
    before = torch.load(latest, map_location="cpu", weights_only=False)["step"]
    with pytest.raises(ValueError, match=r"run_name 'r'.*already holds a run's checkpoints.*--resume"):
        train(tiny_config("dcgan", tmp_path, run_name="r", max_steps=1))
    assert torch.load(latest, map_location="cpu", weights_only=False)["step"] == before == 2
    resumed = train(tiny_config("dcgan", tmp_path, max_steps=3, resume=first.run_dir))
    assert resumed.step == 3 and resumed.run_dir == first.run_dir


def test_a_run_name_without_checkpoints_may_be_reused(tmp_path):
    """A folder left by a run that stopped before its first checkpoint holds nothing to lose."""
    with pytest.raises(ValueError, match="best_metric"):
        train(tiny_config("dcgan", tmp_path, run_name="r", max_steps=1, best_metric="nope"))
    assert os.path.isdir(tmp_path / "r")
    assert train(tiny_config("dcgan", tmp_path, run_name="r", max_steps=1)).step == 1


@pytest.mark.parametrize("model", ["dcgan", "cyclegan"])
def test_an_unknown_best_metric_is_refused_before_any_checkpoint(tmp_path, model):
    with pytest.raises(ValueError, match=r"best_metric 'nope' is not a loss of a .* run \(.*loss_G"):
        train(tiny_config(model, tmp_path, run_name="r", max_steps=2, best_metric="nope"))
    assert not os.path.exists(tmp_path / "r" / "checkpoints" / "latest.pt")


def test_a_loss_name_or_a_metrics_fn_name_is_accepted(tmp_path):
    run = train(tiny_config("dcgan", tmp_path, run_name="loss", max_steps=2, best_metric="loss_D"))
    assert os.path.isfile(os.path.join(run.run_dir, "checkpoints", "best.pt"))
    run = train(tiny_config("dcgan", tmp_path, run_name="fn", max_steps=2, best_metric="mine"),
                metrics_fn=lambda *args, **kwargs: {"mine": 1.0})
    assert os.path.isfile(os.path.join(run.run_dir, "checkpoints", "best.pt"))


def test_stylegan_compiles_with_the_r1_penalty(tmp_path):
    """R1 needs a double backward, which a compiled module refuses: its steps run D uncompiled, and
    the run trains as the eager one does."""
    kw = dict(max_steps=2, **{"stylegan.r1_interval": 1})
    eager = train(tiny_config("stylegan", tmp_path, run_name="eager", **kw))
    compiled = train(tiny_config("stylegan", tmp_path, run_name="compiled", compile=True, compile_backend="aot_eager",
                                 **kw))
    assert compiled.step == eager.step == 2 and "r1" in compiled.losses
    for name, value in eager.losses.items():
        assert abs(compiled.losses[name] - value) <= 1e-3 * max(1.0, abs(value)), (name, value, compiled.losses[name])


@pytest.mark.parametrize("model, dataset, needs", [
    ("cyclegan", "empty", r"model 'cyclegan', which trains on unpaired images: .*trainA/ and trainB/"),
    ("dcgan", "cans", r"model 'dcgan', which trains on labelled images: the embedded 'digits' set"),
])
def test_a_dataset_that_does_not_fit_the_model_says_what_would(tmp_path, model, dataset, needs):
    if dataset == "empty":
        dataset = str(tmp_path / "empty")
        os.makedirs(dataset)
    with pytest.raises(ValueError, match=needs):
        train(tiny_config(model, tmp_path, run_name="r", dataset=dataset))


@pytest.mark.parametrize("under", ["", "sub"])
def test_an_out_dir_that_is_a_file_is_refused_by_name(tmp_path, under):
    """A file where the runs' parent folder should be was an OSError about '<file>/<run>' (exit 1)."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    out_dir = a_file / under if under else a_file
    with pytest.raises(ValueError, match=rf"out_dir '{out_dir}'.*notes.txt.*is a file"):
        train(tiny_config("dcgan", out_dir, max_steps=1))
    assert a_file.read_text() == "not a folder"
