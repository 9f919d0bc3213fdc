"""Checkpoint writing, loading, RNG capture, the image pool and the lr schedules."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from effgan.train import checkpoint as ckpt
from effgan.train.image_pool import ImagePool
from effgan.train.schedule import LRMultiplier, make_scheduler


def test_atomic_save_survives_a_crash_mid_write(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    good = {"format": ckpt.FORMAT_VERSION, "step": 1, "w": torch.arange(5.0)}
    ckpt.save_atomic(good, path)
    real_save = torch.save

    def crash_midway(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip file")  # some bytes reach the disk, then the process "dies"
        raise OSError("simulated crash while writing")

    monkeypatch.setattr(torch, "save", crash_midway)
    with pytest.raises(OSError, match="simulated crash"):
        ckpt.save_atomic({"format": ckpt.FORMAT_VERSION, "step": 2, "w": torch.zeros(5)}, path)
    monkeypatch.setattr(torch, "save", real_save)
    loaded = ckpt.load(path, require=())
    assert loaded["step"] == 1 and torch.equal(loaded["w"], torch.arange(5.0))
    assert sorted(os.listdir(tmp_path)) == ["latest.pt"]  # no temp file left behind


def test_load_is_weights_only(tmp_path):
    from fractions import Fraction  # any class outside the weights-only allow-list

    path = tmp_path / "evil.pt"
    torch.save({"format": ckpt.FORMAT_VERSION, "obj": Fraction(1, 3)}, path)
    with pytest.raises(Exception, match="(?i)weights_only|unsupported|global"):
        ckpt.load(path)
    torch.save({"format": 99}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an effgan training checkpoint"):
        ckpt.load(tmp_path / "other.pt")


def test_find_resolves_run_dirs_and_reports_missing(tmp_path):
    run = tmp_path / "run"
    (run / ckpt.CHECKPOINT_DIR).mkdir(parents=True)
    with pytest.raises(ValueError, match="no latest.pt"):
        ckpt.find(run)
    ckpt.save_atomic({"format": ckpt.FORMAT_VERSION}, run / ckpt.CHECKPOINT_DIR / ckpt.LATEST)
    found = ckpt.find(run)
    assert found.endswith(os.path.join(ckpt.CHECKPOINT_DIR, ckpt.LATEST))
    assert ckpt.run_dir_of(found) == str(run)
    with pytest.raises(ValueError, match="does not exist"):
        ckpt.find(tmp_path / "nope")


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.random(), np.random.randn(), torch.randn(3)
    state = ckpt.capture_rng_state()
    ckpt.save_atomic({"format": ckpt.FORMAT_VERSION, "rng": state}, tmp_path / "rng.pt")
    expected = (random.random(), float(np.random.randn()), torch.randn(4))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    ckpt.restore_rng_state(ckpt.load(tmp_path / "rng.pt", require=())["rng"])
    again = (random.random(), float(np.random.randn()), torch.randn(4))
    assert again[0] == expected[0] and again[1] == expected[1] and torch.equal(again[2], expected[2])


def test_image_pool_fills_then_swaps_and_restores():
    pool = ImagePool(3, seed=0)
    first = torch.arange(2.0).view(2, 1, 1, 1)
    assert torch.equal(pool.query(first), first) and len(pool) == 2
    out = pool.query(torch.full((8, 1, 1, 1), 10.0))
    assert len(pool) == 3 and out.shape == (8, 1, 1, 1)
    # past a full pool about half the queries return a stored image (the pool's seed is fixed)
    assert (out != 10.0).any()
    state = pool.state_dict()
    clone = ImagePool(3, seed=123)
    clone.load_state_dict(state)
    batch = torch.full((6, 1, 1, 1), 20.0)
    assert torch.equal(pool.query(batch), clone.query(batch))
    assert torch.equal(ImagePool(0).query(first), first)
    with pytest.raises(ValueError, match="pool_size"):
        ImagePool(-1)
    with pytest.raises(ValueError, match="pool_size mismatch"):
        ImagePool(2).load_state_dict(state)


def test_linear_schedule_matches_the_reference_formula():
    m = LRMultiplier("linear", epochs=3, epochs_decay=3)
    assert [m(e) for e in range(6)] == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25])
    cos = LRMultiplier("cosine", epochs=1, epochs_decay=3)
    values = [cos(e) for e in range(4)]
    assert values[0] == 1 and all(a > b for a, b in zip(values, values[1:]))
    # step: every decay epoch lowered like linear's first, then x0.1 every step_epochs epochs (the
    # first group of decay epochs was one epoch short: 1, 0.1, 0.1, 0.01 for step_epochs=2)
    step = LRMultiplier("step", epochs=1, epochs_decay=4, step_epochs=2)
    assert [step(e) for e in range(5)] == pytest.approx([1, 0.1, 0.1, 0.01, 0.01])
    step3 = LRMultiplier("step", epochs=0, epochs_decay=7, step_epochs=3)
    assert [step3(e) for e in range(7)] == pytest.approx([0.1] * 3 + [0.01] * 3 + [0.001])
    assert [LRMultiplier("step", 2, 3)(e) for e in range(5)] == pytest.approx([1, 1, 0.1, 0.01, 0.001])
    assert LRMultiplier("constant", 1, 5)(4) == 1.0
    with pytest.raises(ValueError, match="policy"):
        LRMultiplier("exp", 1, 1)


def test_scheduler_state_is_weights_only_safe(tmp_path):
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make_scheduler(opt, LRMultiplier("linear", 1, 3))
    opt.step()  # (no gradients: a no-op) so the scheduler sees the order training uses
    sched.step()
    sched.step()
    ckpt.save_atomic({"format": ckpt.FORMAT_VERSION, "s": sched.state_dict()}, tmp_path / "s.pt")
    opt2 = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched2 = make_scheduler(opt2, LRMultiplier("linear", 1, 3))
    sched2.load_state_dict(ckpt.load(tmp_path / "s.pt", require=())["s"])
    opt2.step()
    sched.step()
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"]) == pytest.approx(0.025)


def test_a_full_disk_is_an_os_error_naming_the_checkpoint(tmp_path, monkeypatch):
    """torch.save turns a failed write into a cryptic RuntimeError ("unexpected pos ..."); the
    caller must see the disk's own error (python -m effgan.train reports OSErrors without a traceback)."""
    import errno
    import io

    path = tmp_path / "latest.pt"
    ckpt.save_atomic({"format": ckpt.FORMAT_VERSION, "step": 1, "w": torch.arange(5.0)}, path)

    class FullDisk(io.BufferedWriter):
        failed = False

        def write(self, data):  # the disk fills once; the writes torch's cleanup makes then go through
            if not FullDisk.failed and self.tell() + len(data) > 2000:
                FullDisk.failed = True
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDisk(io.FileIO(fd, mode)))
    with pytest.raises(OSError) as raised:
        ckpt.save_atomic({"format": ckpt.FORMAT_VERSION, "step": 2, "w": torch.randn(1000)}, path)
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC
    assert str(path) in str(raised.value) and "No space left" in str(raised.value)
    assert ckpt.load(path, require=())["step"] == 1  # the previous checkpoint is intact
    assert sorted(os.listdir(tmp_path)) == ["latest.pt"]
