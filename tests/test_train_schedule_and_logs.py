"""What the optimizers run with, and what the logs report: StyleGAN's D takes --lr and the betas as
given, a loss reported on some steps only is averaged over those steps, and a learning-rate change
reaches families whose CUDA graphs keep the lr of their capture."""
from __future__ import annotations

import os

import pytest
import torch

from effgan.train import train
from effgan.train import checkpoint as ckpt
from effgan.train.run_logger import read_jsonl
from train_support import one_thread, stylegan_available, tiny_config  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")


def _train_records(run_dir: str) -> list[dict]:
    return [r for r in read_jsonl(os.path.join(run_dir, "metrics.jsonl")) if r["kind"] == "train"]


@pytest.mark.skipif(not stylegan_available(), reason="effgan.nn.AdaIN (the StyleGAN layers) is not available yet")
def test_stylegan_d_optimizer_and_lazy_r1_log(tmp_path):
    # r1_interval 2: R1 on the 1st and 3rd steps. Logged every step, then every 2 steps.
    every = train(tiny_config("stylegan", tmp_path, run_name="every", max_steps=4, lr=1e-3, beta1=0.1, beta2=0.9))
    pairs = train(tiny_config("stylegan", tmp_path, run_name="pairs", max_steps=4, lr=1e-3, beta1=0.1, beta2=0.9,
                              log_every=2))
    state = ckpt.load(every.checkpoint)
    for name in ("G", "D"):
        group = state["optimizers"][name]["param_groups"][0]
        assert group["lr"] == pytest.approx(1e-3) and tuple(group["betas"]) == pytest.approx((0.1, 0.9)), name
    r1_steps = [r["r1"] for r in _train_records(every.run_dir) if "r1" in r]
    paired = _train_records(pairs.run_dir)
    assert len(r1_steps) == 2 and len(paired) == 2
    # each two-step window holds one R1 step: its mean is that step's penalty, not half of it
    for logged, step_value in zip((r["r1"] for r in paired), r1_steps):
        assert logged == pytest.approx(step_value, rel=1e-6)


def test_lr_change_reaches_the_family(tmp_path, monkeypatch):
    from effgan.train.dcgan import DCGANFamily

    seen = []
    monkeypatch.setattr(DCGANFamily, "lr_changed", lambda self: seen.append(
        [float(g["lr"]) for opt in self.optimizers().values() for g in opt.param_groups]), raising=True)
    # 16 images, batch 4: 4 steps an epoch; one constant epoch, then two decaying ones (lr x 2/3, x 1/3),
    # and the schedule's end (0)
    train(tiny_config("dcgan", tmp_path, run_name="decay", max_steps=12, epochs=1, epochs_decay=2, lr=3e-4))
    assert seen == [pytest.approx([2e-4, 2e-4]), pytest.approx([1e-4, 1e-4]), [0.0, 0.0]]
    seen.clear()
    train(tiny_config("dcgan", tmp_path, run_name="constant", max_steps=8, epochs=2, epochs_decay=0))
    assert seen == []  # nothing changed, nothing re-captured


def test_each_log_record_carries_the_epoch_and_lr_its_steps_trained_with(tmp_path):
    """A record at an epoch's last step describes that epoch: not the next one, whose decayed lr
    (0 after the last) no step of the record used."""
    run = train(tiny_config("dcgan", tmp_path, run_name="logs", max_steps=12, epochs=1, epochs_decay=2, lr=3e-4,
                            log_every=2))
    records = _train_records(run.run_dir)
    assert [r["step"] for r in records] == [2, 4, 6, 8, 10, 12]
    assert [r["epoch"] for r in records] == [0, 0, 1, 1, 2, 2]
    for record, lr in zip(records, (3e-4, 3e-4, 2e-4, 2e-4, 1e-4, 1e-4)):
        assert record["lr_G"] == pytest.approx(lr) and record["lr_D"] == pytest.approx(lr), record


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graphs_follow_the_lr_schedule(tmp_path):
    """With graphs replayed, the decayed epochs must train as eager ones do (the lr is not frozen)."""
    common = dict(max_steps=12, epochs=1, epochs_decay=2, device="cuda", impl="auto", checkpoint_every=0)
    eager = train(tiny_config("dcgan", tmp_path, run_name="eager", **common))
    graphs = train(tiny_config("dcgan", tmp_path, run_name="graphs", cuda_graphs=True, **common))
    a, b = ckpt.load(eager.checkpoint)["models"]["G"], ckpt.load(graphs.checkpoint)["models"]["G"]
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(b[key], a[key], rtol=1e-3, atol=1e-4, msg=lambda m: f"{key}: {m}")
