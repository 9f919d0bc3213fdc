import numpy as np
import pytest
import torch

from effgan.data import CansDomain, CansPairs, build_dataset, render_scene, sample_scene
from effgan.data.seeding import numpy_rng


@pytest.mark.parametrize("size", [64, 128])
def test_unpaired_items_have_shape_and_range(size):
    ds = build_dataset("cans", "train", image_size=size, length=6, seed=3)
    item = ds[2]
    for key in ("A", "B"):
        assert item[key].shape == (3, size, size)
        assert item[key].dtype == torch.float32
        assert item[key].min() >= -1 and item[key].max() <= 1
        assert item[key].std() > 0.05  # not a flat image
    assert 0 <= item["B_index"] < 6 and item["A_index"] == 2


def test_same_seed_same_images_and_different_seed_differs():
    first = CansDomain("A", size=64, length=4, seed=11)
    again = CansDomain("A", size=64, length=4, seed=11)
    other = CansDomain("A", size=64, length=4, seed=12)
    assert torch.equal(first.image(3), again.image(3))
    assert not torch.equal(first.image(3), other.image(3))
    assert not torch.equal(first.image(2), first.image(3))


def test_items_do_not_depend_on_access_order():
    domain = CansDomain("B", size=64, length=5, seed=1)
    forward = [domain.image(i) for i in range(5)]
    backward = [domain.image(i) for i in reversed(range(5))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(forward, backward, strict=True))


def test_train_domains_come_from_different_scenes():
    a = CansDomain("A", size=64, length=3, seed=0)
    b = CansDomain("B", size=64, length=3, seed=0)
    assert a.scene(0) != b.scene(0)


def _redness(image: torch.Tensor, mask: torch.Tensor) -> float:
    # mean (red - blue) over the can's pixels, in [-2, 2] units
    weights = mask / mask.sum()
    return float(((image[0] - image[2]) * weights).sum())


def test_domains_differ_in_paint_colour():
    pairs = CansPairs(size=64, length=4, seed=5)
    for index in range(4):
        item = pairs[index]
        mask_a, _ = pairs.masks(index)
        assert _redness(item["A"], mask_a) > 0.2, "domain A can should be red"
        assert _redness(item["A_true_B"], mask_a) < -0.2, "domain B can should be blue"


@pytest.mark.parametrize("size", [64, 128])
def test_test_pairs_share_the_scene_outside_the_can(size):
    pairs = CansPairs(size=size, length=3, seed=2)
    for index in range(3):
        item = pairs[index]
        mask_a, mask_b = pairs.masks(index)
        for image, truth, mask in ((item["A"], item["A_true_B"], mask_a), (item["B"], item["B_true_A"], mask_b)):
            assert image.shape == truth.shape == (3, size, size)
            diff = (image - truth).abs().amax(0)
            outside = mask == 0
            assert outside.float().mean() > 0.5  # the can does not fill the frame
            assert torch.equal(diff[outside], torch.zeros_like(diff[outside]))
            inside = mask > 0.99
            # The paint changes on most of the can (the metal top and rims stay the same).
            assert (diff[inside] > 0.1).float().mean() > 0.5


def test_paired_items_are_deterministic():
    a = CansPairs(size=64, length=2, seed=9)[1]
    b = CansPairs(size=64, length=2, seed=9)[1]
    assert all(torch.equal(a[k], b[k]) for k in ("A", "B", "A_true_B", "B_true_A"))


def test_paired_augmentation_keeps_pairs_aligned():
    pairs = build_dataset("cans", "test", image_size=64, length=2, seed=4, augment=True)
    plain = build_dataset("cans", "test", image_size=64, length=2, seed=4)
    item, reference = pairs[0], plain[0]
    assert not torch.equal(item["A"], reference["A"])  # the jitter did something
    # Aligned: same pixels outside the can after the shared crop/flip, so the difference stays small in area.
    changed = ((item["A"] - item["A_true_B"]).abs().amax(0) > 1e-6).float().mean()
    changed_ref = ((reference["A"] - reference["A_true_B"]).abs().amax(0) > 1e-6).float().mean()
    assert changed < 1.5 * changed_ref + 0.02


def test_render_rejects_bad_arguments():
    scene = sample_scene(numpy_rng(0))
    with pytest.raises(ValueError, match="domain"):
        render_scene(scene, "C", 64)
    with pytest.raises(ValueError, match="size"):
        CansDomain("A", size=100)
    with pytest.raises(ValueError, match="split"):
        CansDomain("A", split="val")
    with pytest.raises(IndexError):
        CansDomain("A", size=64, length=2).image(2)


def test_render_alpha_is_coverage():
    image, alpha = render_scene(sample_scene(numpy_rng(1)), "A", 64)
    assert image.shape == (64, 64, 3) and alpha.shape == (64, 64)
    assert alpha.min() == 0 and alpha.max() == 1
    assert np.all((alpha >= 0) & (alpha <= 1))


def test_cache_dir_round_trip(tmp_path):
    cached = build_dataset("cans", "train", image_size=64, length=3, seed=7, cache_dir=tmp_path)
    fresh = build_dataset("cans", "train", image_size=64, length=3, seed=7)
    assert len(list(tmp_path.glob("*.npy"))) == 2
    item, reference = cached[1], fresh[1]
    assert (item["A"] - reference["A"]).abs().max() < 2e-3  # float16 storage
    assert item["B_index"] == reference["B_index"]
    reopened = build_dataset("cans", "train", image_size=64, length=3, seed=7, cache_dir=tmp_path)
    assert torch.equal(reopened[1]["A"], item["A"])



@pytest.mark.parametrize("damage", ["truncated", "empty", "other length"])
def test_a_damaged_cache_file_is_rendered_again(tmp_path, damage):
    from effgan.data import CachedImages, Digits

    source = Digits(split="train", size=28, length=4, seed=3)
    first = CachedImages(source, tmp_path, "digits").image(2)
    [path] = tmp_path.glob("*.npy")
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        np.save(path, np.zeros((3, 1, 28, 28), np.float16))
    with pytest.warns(UserWarning, match="is damaged; rendering it again"):
        again = CachedImages(source, tmp_path, "digits")
    assert torch.equal(again.image(2), first)
