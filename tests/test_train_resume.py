"""Resuming, stopping on signals and non-finite losses, and best-checkpoint selection."""
from __future__ import annotations

import os
import signal

import pytest
import torch

from effgan.train import NonFiniteLossError, train
from effgan.train import checkpoint as ckpt
from effgan.train.run_logger import read_jsonl
from train_support import one_thread, tiny_config  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def _train_losses(run_dir: str) -> dict[int, dict[str, float]]:
    records = read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
    return {r["step"]: {k: v for k, v in r.items() if k.startswith("loss_")} for r in records if r["kind"] == "train"}


@pytest.mark.parametrize("model", ["cyclegan", "dcgan"])
def test_resume_equals_uninterrupted(tmp_path, model):
    # cyclegan: 3 batches per epoch, pool of 2 -> the interruption is mid-epoch, the resumed part
    # crosses an epoch boundary (lr decay, new pairing) and the pool's swapping phase.
    extra = dict(train_length=3) if model == "cyclegan" else dict(train_length=12, batch_size=4, epochs=2)
    whole = train(tiny_config(model, tmp_path, run_name="whole", max_steps=5, **extra))
    first = train(tiny_config(model, tmp_path, run_name="split", max_steps=2, **extra))
    assert first.step == 2
    resumed = train(tiny_config(model, tmp_path, max_steps=5, resume=first.run_dir, **extra))
    assert resumed.run_dir == first.run_dir and resumed.step == whole.step == 5

    expected, got = _train_losses(whole.run_dir), _train_losses(resumed.run_dir)
    assert sorted(got) == [1, 2, 3, 4, 5]
    for step in (3, 4, 5):
        assert got[step] == expected[step], f"step {step} differs after resume"
    a, b = ckpt.load(whole.checkpoint), ckpt.load(resumed.checkpoint)
    assert (a["epoch"], a["batch_in_epoch"]) == (b["epoch"], b["batch_in_epoch"])
    for name, weights in a["models"].items():
        for key, tensor in weights.items():
            assert torch.equal(tensor, b["models"][name][key]), f"{name}.{key} differs after resume"
    if model == "cyclegan":
        for key in ("pool_A", "pool_B"):
            for x, y in zip(a["extra"][key]["images"], b["extra"][key]["images"]):
                assert torch.equal(x, y)
        lr = a["optimizers"]["G"]["param_groups"][0]["lr"]
        assert lr == b["optimizers"]["G"]["param_groups"][0]["lr"] < 2e-4  # decayed after the first epoch


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from effgan.train.cyclegan import CycleGANFamily

    original = CycleGANFamily.train_step

    def poisoned(self, batch, step):
        losses = original(self, batch, step)
        if step >= 3:  # the 4th step goes wrong
            losses["loss_G"] = losses["loss_G"] * float("nan")
        return losses

    monkeypatch.setattr(CycleGANFamily, "train_step", poisoned)
    config = tiny_config("cyclegan", tmp_path, run_name="nan", checkpoint_every=2, max_steps=8, log_every=1)
    with pytest.raises(NonFiniteLossError, match="NaN or inf.*step 4.*last good checkpoint"):
        train(config)
    state = ckpt.load(tmp_path / "nan" / "checkpoints" / "latest.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(t).all() for t in state["models"]["G_A"].values())


def test_sigterm_saves_a_checkpoint_and_stops(tmp_path, monkeypatch):
    from effgan.train.dcgan import DCGANFamily

    original = DCGANFamily.train_step

    def interrupted(self, batch, step):
        losses = original(self, batch, step)
        if step == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return losses

    monkeypatch.setattr(DCGANFamily, "train_step", interrupted)
    result = train(tiny_config("dcgan", tmp_path, run_name="sig", max_steps=50, epochs=20))
    assert result.stopped_by == "SIGTERM" and result.step == 2
    assert ckpt.load(result.checkpoint)["step"] == 2
    # the handler is gone again: the test process still has the default SIGTERM handler
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


class _SignalDispositions(torch.utils.data.Dataset):
    """Each item: whether SIGINT and SIGTERM are ignored in the process that loads it."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.tensor([signal.getsignal(signal.SIGINT) == signal.SIG_IGN,
                             signal.getsignal(signal.SIGTERM) == signal.SIG_IGN])


def test_loader_workers_leave_stop_signals_to_the_main_process():
    """A supervisor signals the whole process group: workers must not die of it (the main process
    would then fail on its next batch instead of finishing the step and saving)."""
    from effgan.train.data_loading import make_train_loader
    from effgan.train.distributed import DistInfo

    loader, _ = make_train_loader(_SignalDispositions(), batch_size=2, info=DistInfo(), seed=0, num_workers=1)
    assert all(batch.all() for batch in loader)
    # the main process keeps its own handlers
    assert signal.getsignal(signal.SIGTERM) != signal.SIG_IGN


def test_best_checkpoint_follows_the_metrics_hook(tmp_path):
    scores = iter([0.3, 0.9, 0.5, 0.1])
    seen = []

    def metrics_fn(family):
        assert not any(m.training for m in family.modules().values())  # evaluated in eval mode
        value = next(scores)
        seen.append(value)
        return {"score": value}

    config = tiny_config("dcgan", tmp_path, run_name="best", checkpoint_every=1, max_steps=4, epochs=1,
                         best_metric="score", best_mode="max")
    result = train(config, metrics_fn=metrics_fn)
    assert seen == [0.3, 0.9, 0.5, 0.1]
    best = ckpt.load(os.path.join(result.run_dir, "checkpoints", "best.pt"))
    assert best["step"] == 2 and best["best"]["value"] == pytest.approx(0.9)
    assert ckpt.load(result.checkpoint)["step"] == 4
    records = [r for r in read_jsonl(os.path.join(result.run_dir, "metrics.jsonl")) if r["kind"] == "checkpoint"]
    assert [r["score"] for r in records] == pytest.approx(seen)


def test_a_nan_metric_is_never_the_best_checkpoint(tmp_path):
    """A diverged evaluation (NaN FID) neither becomes best.pt nor, as the first record, blocks later ones."""
    scores = iter([float("nan"), 0.4, float("nan"), 0.2])
    config = tiny_config("dcgan", tmp_path, run_name="nan", checkpoint_every=1, max_steps=4, epochs=1,
                         best_metric="score", best_mode="min")
    result = train(config, metrics_fn=lambda family: {"score": next(scores)})
    best = ckpt.load(os.path.join(result.run_dir, "checkpoints", "best.pt"))
    assert best["step"] == 4 and best["best"]["value"] == pytest.approx(0.2)


def test_best_record_survives_a_resume(tmp_path):
    """A resumed run beats best.pt's own record, also when latest.pt's copy of it is older (a run
    stopped between writing best.pt and latest.pt): a worse checkpoint never replaces best.pt."""
    scores = iter([0.3, 0.9, 0.5, 0.1])

    def metrics_fn(family):
        return {"score": next(scores)}

    base = dict(checkpoint_every=1, epochs=1, best_metric="score", best_mode="max")
    first = train(tiny_config("dcgan", tmp_path, run_name="best", max_steps=2, **base), metrics_fn=metrics_fn)
    latest = ckpt.load(first.checkpoint)
    assert latest["best"] == {"metric": "score", "value": pytest.approx(0.9), "step": 2}
    latest["best"] = {"metric": "score", "value": 0.3, "step": 1}  # as if stopped between the writes
    ckpt.save_atomic(latest, first.checkpoint)
    resumed = train(tiny_config("dcgan", tmp_path, max_steps=4, resume=first.run_dir, **base), metrics_fn=metrics_fn)
    best = ckpt.load(os.path.join(resumed.run_dir, "checkpoints", "best.pt"))
    assert best["step"] == 2 and best["best"]["value"] == pytest.approx(0.9)  # 0.5 at step 3 is worse
    assert ckpt.load(resumed.checkpoint)["best"] == best["best"]


def test_a_resume_removes_the_temp_files_of_checkpoint_writes_that_never_finished(tmp_path):
    """A process killed mid-write (SIGKILL, the OOM killer, a preempted node) leaves its .tmp-*.pt behind:
    a full checkpoint's size each time, never cleaned up. The resumed run removes them, nothing else."""
    first = train(tiny_config("dcgan", tmp_path, run_name="killed", max_steps=2, checkpoint_every=1))
    folder = os.path.dirname(first.checkpoint)
    with open(os.path.join(folder, ".tmp-k1ll3d.pt"), "wb") as f:
        f.write(b"half a checkpoint")
    with open(os.path.join(folder, "notes.tmp"), "wb") as f:  # not one of effgan's temp names: kept
        f.write(b"mine")
    before = {name for name in os.listdir(folder) if not name.startswith(".tmp-")}
    with pytest.warns(UserWarning, match=r"removed 1 unfinished checkpoint write"):
        train(tiny_config("dcgan", tmp_path, max_steps=3, resume=first.run_dir, checkpoint_every=1))
    after = set(os.listdir(folder))
    assert not any(name.startswith(".tmp-") for name in after) and before <= after


def test_non_finite_weights_are_never_checkpointed(tmp_path, monkeypatch):
    """The losses of a step are computed before its update: an update that blows the weights up
    (e.g. a huge lr) shows only in the weights, which must not be saved as a good checkpoint."""
    from effgan.train.dcgan import DCGANFamily

    original = DCGANFamily.train_step

    def blown_up(self, batch, step):
        losses = original(self, batch, step)
        if step == 2:  # the 3rd step's update goes wrong; its losses are finite
            with torch.no_grad():
                next(self.modules()["G"].parameters()).fill_(float("inf"))
        return losses

    monkeypatch.setattr(DCGANFamily, "train_step", blown_up)
    config = tiny_config("dcgan", tmp_path, run_name="inf", checkpoint_every=1, max_steps=6, epochs=2)
    with pytest.raises(NonFiniteLossError, match="G\\..*NaN or inf after step 3.*last good checkpoint"):
        train(config)
    state = ckpt.load(tmp_path / "inf" / "checkpoints" / "latest.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(t).all() for m in state["models"].values() for t in m.values() if t.is_floating_point())


def test_deterministic_mode_is_scoped_to_the_run(tmp_path):
    assert not torch.are_deterministic_algorithms_enabled()
    seen = []
    from effgan.train.dcgan import DCGANFamily

    original = DCGANFamily.train_step

    def spy(self, batch, step):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return original(self, batch, step)

    DCGANFamily.train_step = spy
    try:
        a = train(tiny_config("dcgan", tmp_path, run_name="a", max_steps=2, deterministic=True))
        b = train(tiny_config("dcgan", tmp_path, run_name="b", max_steps=2, deterministic=True))
    finally:
        DCGANFamily.train_step = original
    assert seen == [True] * 4 and not torch.are_deterministic_algorithms_enabled()
    assert _train_losses(a.run_dir) == _train_losses(b.run_dir)  # same seed, same numbers
