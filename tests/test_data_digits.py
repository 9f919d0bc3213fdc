import numpy as np
import pytest
import torch

from effgan.data import Digits, build_dataset, render_digit
from effgan.data.seeding import numpy_rng


def test_digits_shape_range_and_labels():
    ds = build_dataset("digits", "train", length=30, seed=0)
    image, label = ds[13]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert image.min() >= -1 and image.max() <= 1
    assert image.max() > 0.5 and (image < -0.99).float().mean() > 0.5  # white strokes on black
    assert label == 3
    assert ds.classes == tuple("0123456789")


def test_labels_are_balanced():
    digits = Digits(length=200)
    counts = np.bincount([digits.label(i) for i in range(200)], minlength=10)
    assert counts.tolist() == [20] * 10


def test_digits_are_deterministic_by_seed():
    assert torch.equal(Digits(seed=4).image(7), Digits(seed=4).image(7))
    assert not torch.equal(Digits(seed=4).image(7), Digits(seed=5).image(7))
    assert not torch.equal(Digits(split="train").image(7), Digits(split="test").image(7))


def test_nearest_centroid_classifier_learns_the_classes():
    train, test = Digits(split="train", length=400, seed=0), Digits(split="test", length=200, seed=0)

    def features(ds):
        x = torch.stack([ds.image(i) for i in range(len(ds))]).flatten(1)
        return x, torch.tensor([ds.label(i) for i in range(len(ds))])

    x_train, y_train = features(train)
    x_test, y_test = features(test)
    centroids = torch.stack([x_train[y_train == k].mean(0) for k in range(10)])
    predictions = torch.cdist(x_test, centroids).argmin(1)
    accuracy = (predictions == y_test).float().mean().item()
    assert accuracy > 0.6, f"nearest-centroid accuracy {accuracy:.2f}"


def test_other_sizes_and_bad_arguments():
    assert render_digit(8, numpy_rng(0), 32).shape == (32, 32)
    with pytest.raises(ValueError, match="label"):
        render_digit(10, numpy_rng(0))
    with pytest.raises(ValueError, match="length"):
        Digits(length=0)
    with pytest.raises(ValueError, match="kind"):
        build_dataset("digits", kind="unpaired", length=10)
