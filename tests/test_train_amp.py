"""--amp bf16 / fp16 on the CPU: every family runs, and fp16's GradScaler state survives a resume."""
from __future__ import annotations

import math
import os

import pytest
import torch

from effgan.train import checkpoint as ckpt
from effgan.train import train
from effgan.train.precision import Precision
from effgan.train.run_logger import read_jsonl
from train_support import one_thread, stylegan_available, tiny_config  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

NEEDS_ADAIN = pytest.mark.skipif(not stylegan_available(), reason="needs effgan.nn.AdaIN")
FAMILIES = ["cyclegan", "dcgan", "cgan", pytest.param("stylegan", marks=NEEDS_ADAIN)]


def _train_losses(run_dir: str) -> dict[int, dict[str, float]]:
    records = read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
    return {r["step"]: {k: v for k, v in r.items() if k not in ("kind", "step", "epoch")}
            for r in records if r["kind"] == "train"}


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
@pytest.mark.parametrize("model", FAMILIES)
def test_every_family_runs_under_amp(tmp_path, model, amp):
    result = train(tiny_config(model, tmp_path, max_steps=2, amp=amp))
    losses = _train_losses(result.run_dir)
    assert sorted(losses) == [1, 2]
    assert all(math.isfinite(v) for record in losses.values() for v in record.values())
    scalers = ckpt.load(result.checkpoint)["scalers"]
    assert set(scalers) == {"G", "D"}
    if amp == "fp16":  # an enabled scaler per optimiser; bf16 needs none (disabled: empty state)
        assert all(s["scale"] > 0 for s in scalers.values())
    else:
        assert all(s == {} for s in scalers.values())


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_amp_resume_restores_the_scaler_and_equals_the_uninterrupted_run(tmp_path, amp):
    extra = dict(train_length=12, batch_size=4, epochs=2, amp=amp)
    whole = train(tiny_config("dcgan", tmp_path, run_name="whole", max_steps=5, **extra))
    first = train(tiny_config("dcgan", tmp_path, run_name="split", max_steps=2, **extra))
    saved = ckpt.load(first.checkpoint)["scalers"]
    if amp == "fp16":
        # the scale moved off its initial 2**16 (early fp16 steps overflow and back off), so a resume
        # that started from a fresh scaler would train differently from here on
        assert saved["G"]["scale"] != 2.0**16 or saved["D"]["scale"] != 2.0**16
    resumed = train(tiny_config("dcgan", tmp_path, max_steps=5, resume=first.run_dir, **extra))
    expected, got = _train_losses(whole.run_dir), _train_losses(resumed.run_dir)
    assert sorted(got) == [1, 2, 3, 4, 5]
    for step in (3, 4, 5):
        assert got[step] == expected[step], f"step {step} differs after resume"
    assert ckpt.load(resumed.checkpoint)["scalers"] == ckpt.load(whole.checkpoint)["scalers"]


def test_resume_loads_the_saved_scaler_state(tmp_path, monkeypatch):
    first = train(tiny_config("dcgan", tmp_path, max_steps=2, amp="fp16"))
    saved = ckpt.load(first.checkpoint)["scalers"]
    loaded = []
    original = torch.amp.GradScaler.load_state_dict

    def spy(self, state):
        loaded.append(dict(state))
        return original(self, state)

    monkeypatch.setattr(torch.amp.GradScaler, "load_state_dict", spy)
    train(tiny_config("dcgan", tmp_path, max_steps=3, amp="fp16", resume=first.run_dir))
    assert loaded == [saved["G"], saved["D"]]


def test_an_unsupported_autocast_dtype_is_a_clear_startup_error(tmp_path, monkeypatch):
    """What a torch without CPU fp16 autocast does (it silently runs in another dtype) becomes an error."""
    monkeypatch.setattr(torch, "get_autocast_dtype", lambda device_type: torch.bfloat16)
    with pytest.raises(ValueError, match="amp='fp16' on cpu: .* does not autocast to torch.float16.*--amp bf16"):
        train(tiny_config("dcgan", tmp_path, max_steps=1, amp="fp16"))
    assert not os.listdir(tmp_path)
    Precision("bf16", "cpu").check_supported()  # unaffected: the patched dtype is bf16
    Precision("none", "cpu").check_supported()


def test_efficientnet_generator_trains_under_bf16(tmp_path):
    """Depthwise convs and squeeze-excite see bf16 activations next to float32 weights there."""
    # ngf=None: an effnet generator's widths come from its scaling (a width would be refused)
    result = train(tiny_config("cyclegan", tmp_path, max_steps=1, amp="bf16", ngf=None, ndf=4,
                               **{"cyclegan.generator": "effnet-b0"}))
    losses = _train_losses(result.run_dir)
    assert sorted(losses) == [1]
    assert all(math.isfinite(v) for record in losses.values() for v in record.values())
