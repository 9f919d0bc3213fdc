"""evaluate_cyclegan on the cans test pairs with generators whose errors are known exactly."""
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from effgan.data import CansPairs
from effgan.metrics import evaluate_cyclegan, psnr, ssim
from effgan.metrics.feature_net import train_feature_net


class AddConstant(nn.Module):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return x + self.value


@pytest.fixture(scope="module")
def pairs():
    return CansPairs(split="test", size=64, length=6, seed=0)


@pytest.fixture(scope="module")
def items(pairs):
    return {key: torch.stack([pairs[i][key] for i in range(len(pairs))]) for key in ("A", "B", "A_true_B", "B_true_A")}


def test_identity_translation_gives_the_direct_errors(pairs, items):
    g = nn.Identity()
    result = evaluate_cyclegan(g, g, pairs, max_items=6)
    assert result["cycle_mae_a"] == result["cycle_mae_b"] == 0.0
    assert result["identity_mae_a"] == result["identity_mae_b"] == 0.0
    # Doing nothing leaves exactly the can's repaint as the error.
    expected_mae = (items["A"].double() - items["A_true_B"].double()).abs().mean().item()
    assert result["paired_mae_ab"] == pytest.approx(expected_mae, rel=1e-9)
    assert 0.0 < result["paired_mae_ab"] < 0.5
    assert result["paired_psnr_ba"] == pytest.approx(psnr(items["B"], items["B_true_A"]))
    assert result["paired_ssim_ab"] == pytest.approx(ssim(items["A"], items["A_true_B"]))
    assert all(isinstance(v, float) for v in result.values())


def test_constant_offsets_give_known_cycle_and_identity_errors(pairs):
    result = evaluate_cyclegan(AddConstant(0.25), AddConstant(0.5), pairs, max_items=4)
    assert result["cycle_mae_a"] == pytest.approx(0.75)
    assert result["cycle_mae_b"] == pytest.approx(0.75)
    assert result["identity_mae_a"] == pytest.approx(0.5)  # G_BA applied to A
    assert result["identity_mae_b"] == pytest.approx(0.25)  # G_AB applied to B


def test_loader_batches_match_dataset_items_and_max_items_is_respected(pairs):
    g_ab, g_ba = AddConstant(0.1), AddConstant(-0.2)
    from_dataset = evaluate_cyclegan(g_ab, g_ba, pairs, max_items=5)
    from_loader = evaluate_cyclegan(g_ab, g_ba, DataLoader(pairs, batch_size=2), max_items=5)
    assert from_loader == pytest.approx(from_dataset)
    fewer = evaluate_cyclegan(g_ab, g_ba, pairs, max_items=2)
    assert fewer["paired_mae_ab"] != pytest.approx(from_dataset["paired_mae_ab"])


def test_extractor_adds_tagged_fid_kid_and_training_modes_are_restored(pairs, items):
    extractor = train_feature_net(torch.cat([items["A"], items["B"]]), steps=2, width=4, batch_size=8)
    g_ab, g_ba = nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1)
    g_ab.train()
    g_ba.eval()
    result = evaluate_cyclegan(g_ab, g_ba, pairs, max_items=6, extractor=extractor, kid_subsets=3,
                               kid_subset_size=6)
    for metric in ("fid_ab", "fid_ba", "kid_mean_ab", "kid_std_ba"):
        assert f"{metric}/{extractor.name}" in result
        assert result[f"{metric}/{extractor.name}"] == result[f"{metric}/{extractor.name}"]  # not NaN
    assert g_ab.training and not g_ba.training


def test_items_without_domains_raise():
    with pytest.raises(TypeError, match="'A' and 'B'"):
        evaluate_cyclegan(nn.Identity(), nn.Identity(), [torch.zeros(1, 3, 8, 8)], max_items=1)
    with pytest.raises(ValueError, match="max_items"):
        evaluate_cyclegan(nn.Identity(), nn.Identity(), [], max_items=0)


class ListSource:
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def image(self, index):
        return self.images[index]


def test_domains_of_different_sizes_count_each_image_once():
    """An unpaired set of 3 A and 5 B images has 5 items, repeating A images: each counts once."""
    from effgan.data.datasets import UnpairedDataset
    from effgan.metrics.cyclegan_eval import collect_domain_items

    g = torch.Generator().manual_seed(0)
    a = [torch.rand(3, 8, 8, generator=g) * 2 - 1 for _ in range(3)]
    b = [torch.rand(3, 8, 8, generator=g) * 2 - 1 for _ in range(5)]
    data = UnpairedDataset(ListSource(a), ListSource(b), seed=0)
    assert len(data) == 5
    items = collect_domain_items(data, max_items=None)
    assert items["A"].shape[0] == 3 and items["B"].shape[0] == 5
    assert torch.equal(items["A"], torch.stack(a))
    assert sorted(map(tuple, items["B"].flatten(1)[:, :4].tolist())) == sorted(
        map(tuple, torch.stack(b).flatten(1)[:, :4].tolist()))
    capped = collect_domain_items(data, max_items=2)
    assert capped["A"].shape[0] == capped["B"].shape[0] == 2
    for loader in (DataLoader(data, batch_size=2), DataLoader(data, batch_size=5)):
        batched = collect_domain_items(loader, max_items=None)
        assert torch.equal(batched["A"], items["A"]) and torch.equal(batched["B"], items["B"])

    # |G(x) - x| per image: the mean over the 3 distinct A images, not over 5 items with 2 repeats.
    class Scale(nn.Module):
        def forward(self, x):
            return 0.5 * x

    result = evaluate_cyclegan(Scale(), nn.Identity(), data, max_items=None)
    expected = torch.stack([(0.5 * x - x).abs().mean() for x in a]).mean().item()
    assert result["cycle_mae_a"] == pytest.approx(expected, rel=1e-6)
