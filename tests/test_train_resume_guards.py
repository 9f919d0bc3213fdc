"""A resume never loses a checkpoint: one that trains nothing writes nothing, and one that starts
behind the run's latest.pt (from best.pt, say) keeps that later checkpoint instead of replacing it."""
from __future__ import annotations

import os

import pytest

from effgan.train import checkpoint as ckpt
from effgan.train import train
from train_support import one_thread, tiny_config  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def _bytes(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _tree(folder) -> dict[str, tuple[bytes, int]]:
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            files[os.path.relpath(path, folder)] = (_bytes(path), os.stat(path).st_mtime_ns)
    return files


@pytest.mark.parametrize("max_steps", [3, 2])
def test_a_resume_with_nothing_to_train_writes_nothing(tmp_path, capsys, max_steps):
    first = train(tiny_config("dcgan", tmp_path, run_name="done", max_steps=3))
    before = _tree(first.run_dir)
    assert {"config.yaml", "metrics.jsonl", os.path.join("samples", "final.png")} <= before.keys()
    # options that only shape logs may change on resume: still nothing is written (config.yaml included)
    again = train(tiny_config("dcgan", tmp_path, max_steps=max_steps, resume=first.run_dir, log_every=2,
                              tensorboard=True))
    assert again.step == 3
    assert "nothing to train" in capsys.readouterr().out
    assert _tree(first.run_dir) == before


@pytest.mark.parametrize("change", [dict(batch_size=2), dict(train_length=12), dict(best_metric="loss_D"),
                                    dict(best_mode="max"), dict(seed=7), dict(image_size=64)])
def test_a_resume_refuses_options_its_state_depends_on(tmp_path, change):
    first = train(tiny_config("dcgan", tmp_path, run_name="fixed", max_steps=3))
    before = _tree(first.run_dir)
    name = next(iter(change))
    with pytest.raises(ValueError, match=f"{name} .* -> .*cannot change on resume"):
        train(tiny_config("dcgan", tmp_path, max_steps=6, resume=first.run_dir, **change))
    assert _tree(first.run_dir) == before


def test_a_resume_on_other_data_is_refused_not_a_hang(tmp_path):
    import torch
    from torch.utils.data import TensorDataset

    first = train(tiny_config("dcgan", tmp_path, run_name="data", max_steps=3))  # 3 of 4 batches of epoch 0
    smaller = TensorDataset(torch.rand(8, 1, 32, 32) * 2 - 1)  # 2 batches an epoch
    with pytest.raises(ValueError, match="3 batches into an epoch, but this run's epochs have 2"):
        train(tiny_config("dcgan", tmp_path, max_steps=6, resume=first.run_dir), dataset=smaller)


def test_a_reused_folder_sets_the_earlier_logs_aside(tmp_path):
    folder = tmp_path / "again"
    (folder / "samples").mkdir(parents=True)
    (folder / "metrics.jsonl").write_text('{"kind": "train", "step": 107, "epoch": 3}\n')
    (folder / "samples" / "epoch_0001.png").write_bytes(b"old")
    with pytest.warns(UserWarning, match="logs of a run without checkpoints"):
        run = train(tiny_config("dcgan", tmp_path, run_name="again", max_steps=2))
    assert (folder / "earlier-run" / "metrics.jsonl").read_text().startswith('{"kind": "train", "step": 107')
    assert (folder / "earlier-run" / "samples" / "epoch_0001.png").read_bytes() == b"old"
    from effgan.train.run_logger import read_jsonl

    assert [r["step"] for r in read_jsonl(os.path.join(run.run_dir, "metrics.jsonl")) if r["kind"] == "train"] == [1, 2]
    mask = os.umask(0o022)
    os.umask(mask)
    assert os.stat(run.checkpoint).st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's private 0600


def test_a_resume_by_another_number_of_processes_is_refused(tmp_path):
    """The saved position in the epoch is one process's share of the data split: with another split,
    skipping that many batches would train some images twice in the epoch and others never."""
    import torch

    first = train(tiny_config("dcgan", tmp_path, run_name="ranks", max_steps=2, epochs=2))
    state = ckpt.load(first.checkpoint)
    assert state["world_size"] == 1
    state["world_size"] = 2  # as a torchrun --nproc_per_node=2 run saves it
    torch.save(state, first.checkpoint)
    with pytest.raises(ValueError, match=r"trained by 2 process\(es\), this run has 1.*--nproc_per_node=2"):
        train(tiny_config("dcgan", tmp_path, max_steps=3, epochs=2, resume=first.run_dir))
    del state["world_size"]  # a checkpoint from before the record: resumed as before
    torch.save(state, first.checkpoint)
    assert train(tiny_config("dcgan", tmp_path, max_steps=3, epochs=2, resume=first.run_dir)).step == 3


def test_a_resume_behind_latest_keeps_the_later_checkpoint(tmp_path, capsys):
    scores = iter([0.9, 0.1, 0.2, 0.3, 0.4, 0.5])

    def metrics_fn(family):
        return {"score": next(scores)}

    base = dict(checkpoint_every=1, epochs=2, best_metric="score", best_mode="max")
    first = train(tiny_config("dcgan", tmp_path, run_name="rewind", max_steps=3, **base), metrics_fn=metrics_fn)
    folder = os.path.join(first.run_dir, "checkpoints")
    assert ckpt.read_step(os.path.join(folder, "best.pt")) == 1 and ckpt.read_step(first.checkpoint) == 3
    latest_before = _bytes(first.checkpoint)

    resumed = train(tiny_config("dcgan", tmp_path, max_steps=2, resume=os.path.join(folder, "best.pt"), **base),
                    metrics_fn=metrics_fn)
    kept = os.path.join(folder, "latest-step3.pt")
    assert _bytes(kept) == latest_before  # the later steps survive, byte for byte
    assert f"latest.pt held step 3, ahead of this run resumed at step 1: kept as {kept}" in capsys.readouterr().out
    assert resumed.step == 2 and ckpt.read_step(resumed.checkpoint) == 2
    # the log keeps both branches, and a resume record says where the current one left the other
    from effgan.train.run_logger import current_records, read_jsonl

    records = read_jsonl(os.path.join(first.run_dir, "metrics.jsonl"))
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 2]
    assert [(r["step"], r["checkpoint"]) for r in records if r["kind"] == "resume"] == [
        (1, os.path.join(folder, "best.pt"))]
    current = current_records(records)
    assert [r["step"] for r in current if r["kind"] == "train"] == [1, 2]
    assert [r["step"] for r in current if r["kind"] == "checkpoint"] == [1, 2]

    # a second branch from best.pt reaching step 3 again: both step-3 checkpoints survive
    train(tiny_config("dcgan", tmp_path, max_steps=3, resume=resumed.checkpoint, **base), metrics_fn=metrics_fn)
    branch_two = _bytes(resumed.checkpoint)
    train(tiny_config("dcgan", tmp_path, max_steps=2, resume=os.path.join(folder, "best.pt"), **base),
          metrics_fn=metrics_fn)
    assert _bytes(kept) == latest_before and _bytes(os.path.join(folder, "latest-step3-1.pt")) == branch_two


def test_a_resume_from_latest_moves_nothing_aside(tmp_path):
    first = train(tiny_config("dcgan", tmp_path, run_name="plain", max_steps=2, epochs=2))
    train(tiny_config("dcgan", tmp_path, max_steps=3, epochs=2, resume=first.run_dir))
    assert sorted(os.listdir(os.path.join(first.run_dir, "checkpoints"))) == ["best.pt", "latest.pt"]
