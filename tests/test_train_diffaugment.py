"""--diffaugment: every family augments every discriminator input, real and fake, differentiably."""
from __future__ import annotations

import math
import os
import warnings

import pytest
import torch

from effgan.train import config as cfg
from effgan.train import train
from effgan.train.augment import DiscriminatorAugment
from effgan.train.cli import parse_config
from effgan.train.run_logger import read_jsonl
from train_support import one_thread, stylegan_available, tiny_config  # noqa: F401 (fixture)

POLICY = "color,translation,cutout"
NEEDS_ADAIN = pytest.mark.skipif(not stylegan_available(), reason="needs effgan.nn.AdaIN")
FAMILIES = ["cyclegan", "dcgan", "cgan", pytest.param("stylegan", marks=NEEDS_ADAIN)]
# augmentation calls per step: cyclegan D_A + D_B on their [real, pooled fake] batches and on G's two
# fakes; the others D on real and on fake, then D on G's fake
CALLS_PER_STEP = {"cyclegan": 4, "dcgan": 3, "cgan": 3, "stylegan": 3}


def _train_losses(run_dir: str) -> list[dict[str, float]]:
    return [{k: v for k, v in r.items() if k not in ("kind", "step", "epoch")}
            for r in read_jsonl(os.path.join(run_dir, "metrics.jsonl")) if r["kind"] == "train"]


def _real_images(batch) -> list[torch.Tensor]:
    if isinstance(batch, dict):
        return [batch["A"], batch["B"]]
    return [batch[0] if isinstance(batch, (tuple, list)) else batch]


@pytest.fixture
def spy(monkeypatch):
    """Record every augmentation call (input, output, double_backward) and each step's real images."""
    from effgan.train.trainer import family_class

    calls, reals = [], []
    original_call = DiscriminatorAugment.__call__

    def recording_call(self, images, *, double_backward=False):
        out = original_call(self, images, double_backward=double_backward)
        calls.append((images, out, double_backward))
        return out

    monkeypatch.setattr(DiscriminatorAugment, "__call__", recording_call)
    for model in ("cyclegan", "dcgan", "stylegan"):
        cls = family_class(model)

        def recording_step(self, batch, step, _original=cls.train_step):
            reals.extend(_real_images(batch))
            return _original(self, batch, step)

        monkeypatch.setattr(cls, "train_step", recording_step)
    return calls, reals


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("model", FAMILIES)
def test_every_family_trains_with_diffaugment_on_real_and_fake(tmp_path, model, spy):
    calls, reals = spy
    result = train(tiny_config(model, tmp_path, run_name="aug", max_steps=2, diffaugment=POLICY))
    losses = _train_losses(result.run_dir)
    assert len(losses) == 2 and all(math.isfinite(v) for record in losses for v in record.values())

    assert len(calls) == 2 * CALLS_PER_STEP[model]
    assert all(not torch.equal(images, out) for images, out, _ in calls)  # the policy changed every batch
    # real images reach D only through the augmentation (cyclegan: as the first half of D's batch)
    real_inputs = [images for images, _, _ in calls
                   if any(images.shape[1:] == r.shape[1:] and torch.equal(images[: r.shape[0]], r) for r in reals)]
    assert len(real_inputs) == 2 * (2 if model == "cyclegan" else 1)
    # the fakes of G's adversarial term: still attached to G's graph, and so is the augmented output
    # (stylegan's R1 reals also require grad, but as leaves)
    g_term = [(images, out) for images, out, _ in calls if images.grad_fn is not None]
    assert len(g_term) == 2 * (2 if model == "cyclegan" else 1)
    assert all(out.requires_grad and out.grad_fn is not None for _, out in g_term)


@pytest.mark.usefixtures("one_thread")
def test_diffaugment_changes_what_d_sees(tmp_path):
    plain = train(tiny_config("dcgan", tmp_path, run_name="plain", max_steps=2))
    augmented = train(tiny_config("dcgan", tmp_path, run_name="aug", max_steps=2, diffaugment=POLICY))
    again = train(tiny_config("dcgan", tmp_path, run_name="plain2", max_steps=2))
    first_plain, first_aug = _train_losses(plain.run_dir)[0], _train_losses(augmented.run_dir)[0]
    assert first_plain["loss_D"] != pytest.approx(first_aug["loss_D"], rel=1e-4)  # same seed, same weights
    assert _train_losses(again.run_dir) == _train_losses(plain.run_dir)  # the option off changes nothing


@pytest.mark.usefixtures("one_thread")
@NEEDS_ADAIN
def test_stylegan_r1_steps_augment_reals_with_the_double_differentiable_reference(tmp_path, spy):
    calls, _ = spy
    train(tiny_config("stylegan", tmp_path, max_steps=2, diffaugment="translation"))  # R1 every 2nd step
    assert [double for _, _, double in calls] == [True, False, False, False, False, False]


def test_double_backward_calls_take_the_reference(monkeypatch):
    seen = []
    augment = DiscriminatorAugment("color", impl="cpp")
    monkeypatch.setattr(augment, "_op", lambda x, policy, generator, impl: seen.append(impl) or x)
    augment(torch.zeros(1, 1, 8, 8))
    augment(torch.zeros(1, 1, 8, 8), double_backward=True)
    assert seen == ["cpp", "ref"]
    off = DiscriminatorAugment("", impl="cpp")
    x = torch.ones(2, 3, 8, 8)
    assert off(x) is x and not off.enabled


@pytest.mark.parametrize("policy", ["colour", "color,zoom", "cutout,color", "color,color"])
def test_bad_policy_is_a_value_error_naming_diffaugment(policy):
    with pytest.raises(ValueError, match="diffaugment"):
        cfg.resolve(cfg.TrainConfig(model="dcgan", diffaugment=policy))


def test_diffaugment_with_cuda_graphs_is_refused():
    with pytest.raises(ValueError, match="diffaugment cannot be combined with cuda_graphs"):
        cfg.resolve(cfg.TrainConfig(diffaugment="color", cuda_graphs=True))


def test_flag_alias_and_file_forms(tmp_path):
    assert parse_config(["dcgan", "--diffaugment", POLICY]).diffaugment == POLICY
    assert parse_config(["cyclegan", "--diffaug", "translation"]).diffaugment == "translation"
    path = tmp_path / "run.yaml"
    path.write_text("model: cgan\ndiffaugment: color,cutout\n")
    assert parse_config(["--config", str(path)]).diffaugment == "color,cutout"


def test_old_stylegan_section_option_is_migrated():
    with pytest.warns(FutureWarning, match="stylegan.diffaugment is now the top-level option diffaugment"):
        config = cfg.from_dict({"model": "stylegan", "stylegan": {"diffaugment": "color"}})
    assert config.diffaugment == "color" and not hasattr(config.stylegan, "diffaugment")
    # every older checkpoint's config carries the default: it loads without a warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cfg.from_dict({"stylegan": {"diffaugment": "", "r1_gamma": 2.0}}).diffaugment == ""
    with pytest.raises(ValueError, match="keep only diffaugment"):
        cfg.from_dict({"diffaugment": "cutout", "stylegan": {"diffaugment": "color"}})
