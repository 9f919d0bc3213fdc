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


@pytest.mark.parametrize("max_steps", [3, 2])
def test_a_resume_with_nothing_to_train_writes_nothing(tmp_path, capsys, max_steps):
    first = train(tiny_config("dcgan", tmp_path, run_name="done", max_steps=3))
    before, mtime = _bytes(first.checkpoint), os.stat(first.checkpoint).st_mtime_ns
    again = train(tiny_config("dcgan", tmp_path, max_steps=max_steps, resume=first.run_dir))
    assert again.step == 3
    assert "nothing to train" in capsys.readouterr().out
    assert _bytes(first.checkpoint) == before and os.stat(first.checkpoint).st_mtime_ns == mtime


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
    assert "kept as" in capsys.readouterr().out
    assert resumed.step == 2 and ckpt.read_step(resumed.checkpoint) == 2

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
