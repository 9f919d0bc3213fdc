"""The effgan.train metric hooks, driven by stand-in families exposing what a Family exposes."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn

from effgan.data import CansPairs
from effgan.metrics import CycleGANEvalHook, LatentGeneratorEvalHook, latent_sampler
from effgan.metrics.small_cnn import SmallCNN


class Shift(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return x + self.value


class ToyConditional(nn.Module):
    """G(z, labels): a 1x8x8 image whose brightness encodes the label; deterministic in z."""

    def __init__(self, latent_dim=4):
        super().__init__()
        self.latent_dim = latent_dim

    def forward(self, z, labels=None):
        base = torch.tanh(z[:, :1, None, None]).expand(-1, 1, 8, 8) * 0.1
        level = torch.zeros(z.shape[0]) if labels is None else labels.float() / 2 - 0.5
        return base + level[:, None, None, None]


def family(generators, latent_dim=4, num_classes=None):
    return SimpleNamespace(sample_modules=lambda: generators, runtime=SimpleNamespace(device=torch.device("cpu")),
                           config=SimpleNamespace(latent_dim=latent_dim), num_classes=num_classes)


def test_cyclegan_hook_reads_the_family_generators():
    hook = CycleGANEvalHook(CansPairs(split="test", size=64, length=3), max_items=3)
    metrics = hook(family({"G_A": Shift(0.1), "G_B": Shift(0.3), "D_A": None}))
    assert metrics["cycle_mae_a"] == pytest.approx(0.4)
    assert metrics["identity_mae_a"] == pytest.approx(0.3)  # G_B on domain A
    assert "paired_ssim_ab" in metrics


def test_latent_hook_scores_a_conditional_generator_with_a_classifier():
    labels = torch.arange(30) % 3
    real = [(ToyConditional()(torch.zeros(1, 4), labels[i : i + 1])[0], int(labels[i])) for i in range(30)]
    classifier = SmallCNN(1, 3, width=4)
    hook = LatentGeneratorEvalHook(real, max_items=30, classifier=classifier)
    first = hook(family({"G": ToyConditional()}, num_classes=3))
    again = hook(family({"G": ToyConditional()}, num_classes=3))
    assert first == again  # fixed seed: the same latents at every checkpoint
    assert {"classifier_acc/generated", "classifier_acc/real_test", "classifier_acc/generated_class_2"} <= set(first)


def test_latent_sampler_is_seeded_and_checks_labels():
    g = ToyConditional()
    a = latent_sampler(g, 4, device="cpu", seed=1, conditional=True)(5, torch.zeros(5, dtype=torch.long))
    b = latent_sampler(g, 4, device="cpu", seed=1, conditional=True)(5, torch.zeros(5, dtype=torch.long))
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="labels"):
        latent_sampler(g, 4, device="cpu", conditional=True)(5)
    with pytest.raises(ValueError, match="latent_dim"):
        latent_sampler(g, 0, device="cpu", conditional=False)


class NoisyBatchNormG(nn.Module):
    """G(z) with a BatchNorm (its statistics move in train mode) and noise from the global RNG, as
    StyleGAN's per-layer noise."""

    def __init__(self, latent_dim=4):
        super().__init__()
        self.bn = nn.BatchNorm1d(latent_dim)

    def forward(self, z):
        h = self.bn(z) + torch.randn(z.shape)
        return h[:, :1, None, None].expand(-1, 1, 8, 8)


def test_latent_sampler_leaves_the_global_rng_and_training_state_alone():
    g = NoisyBatchNormG()
    g.train()
    before = g.bn.running_mean.clone()
    outs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        state = torch.random.get_rng_state()
        outs.append(latent_sampler(g, 4, device="cpu", seed=3, conditional=False)(6))
        assert torch.equal(torch.random.get_rng_state(), state)  # the caller's stream did not move
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)  # the global seed does not leak in
    assert g.training and torch.equal(g.bn.running_mean, before) and int(g.bn.num_batches_tracked) == 0
    sampler = latent_sampler(g, 4, device="cpu", seed=3, conditional=False)
    assert not torch.equal(sampler(6), sampler(6))  # successive calls draw fresh noise


def test_latent_hook_gives_tagged_fid_for_an_unconditional_generator():
    from effgan.metrics import train_feature_net

    real = torch.rand(40, 1, 8, 8) * 2 - 1
    extractor = train_feature_net(real, steps=1, width=4, batch_size=8)
    hook = LatentGeneratorEvalHook(real, max_items=40, extractor=extractor, kid_subsets=3, kid_subset_size=20)
    metrics = hook(family({"G": ToyConditional()}))
    assert set(metrics) == {f"fid/{extractor.name}", f"kid_mean/{extractor.name}", f"kid_std/{extractor.name}"}
    assert metrics[f"fid/{extractor.name}"] >= 0


def test_latent_hook_samples_from_the_ema_generator_where_the_family_keeps_one():
    real = torch.rand(8, 1, 8, 8) * 2 - 1

    class Recording(ToyConditional):
        calls = 0

        def forward(self, z, labels=None):
            type(self).calls += 1
            return super().forward(z, labels)

    hook = LatentGeneratorEvalHook(real, max_items=8)
    hook(family({"G_ema": Recording()}))  # stylegan's sample_modules() hold the EMA copy only
    assert Recording.calls == 1


def test_cached_score_classifier_is_the_classifier_train_score_classifier_trains(tmp_path):
    from effgan.metrics import train_score_classifier
    from effgan.metrics.extractors import build_score_classifier

    images, labels = torch.rand(12, 1, 8, 8) * 2 - 1, torch.arange(12) % 3
    kwargs = dict(num_classes=3, steps=2, width=4, seed=1)
    cached = build_score_classifier(images, labels, cache_dir=tmp_path, **kwargs)
    assert len(list(tmp_path.glob("feature_net_*.pt"))) == 1
    again = build_score_classifier(images, labels, cache_dir=tmp_path, **kwargs)  # read back from the cache
    plain = train_score_classifier(images, labels, **kwargs)
    for a, b, c in zip(cached.state_dict().values(), again.state_dict().values(), plain.state_dict().values()):
        torch.testing.assert_close(a, c)
        torch.testing.assert_close(b, c)
