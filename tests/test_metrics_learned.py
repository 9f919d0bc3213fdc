"""The learned metrics: feature net (determinism, naming, cache), classifier score and C2ST on toy data."""
from pathlib import Path

import numpy as np
import pytest
import torch

from effgan.metrics import (FeatureSet, build_extractor, c2st, classifier_score, extract_features, fid,
                            load_or_train_feature_net, train_feature_net, train_score_classifier)
from effgan.metrics.c2st import classifier_two_sample_test
from effgan.metrics.features import comparable_values, distribution_metrics, lower_is_better, metric_value

NUM_CLASSES = 4
SIZE = 16


def toy_labelled(n, seed):
    """Class k: a bright square in quadrant k of a noisy dark 16x16 image, in [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_CLASSES
    images = -0.6 + 0.25 * torch.randn(n, 1, SIZE, SIZE, generator=gen)
    for i, k in enumerate(labels.tolist()):
        row, col = divmod(k, 2)
        images[i, :, row * 8 + 1 : row * 8 + 7, col * 8 + 1 : col * 8 + 7] += 1.4
    return images.clamp(-1, 1), labels


@pytest.fixture(scope="module")
def toy_train():
    return toy_labelled(160, seed=0)


@pytest.fixture(scope="module")
def toy_test():
    return toy_labelled(80, seed=1)


def test_feature_net_is_deterministic_by_seed_and_named_by_its_training(toy_train):
    images, labels = toy_train
    kwargs = dict(steps=4, width=8, batch_size=32)
    first = train_feature_net(images, labels, seed=3, **kwargs)
    again = train_feature_net(images, labels, seed=3, **kwargs)
    other_seed = train_feature_net(images, labels, seed=4, **kwargs)
    probe = images[:10]
    with torch.no_grad():
        torch.testing.assert_close(first(probe), again(probe), rtol=0, atol=0)
        assert not torch.allclose(first(probe), other_seed(probe))
    assert first.name == again.name != other_seed.name
    assert first.name.startswith("featnet-classifier-")
    assert first(probe).shape == (10, first.feature_dim) == (10, 32)
    rotation = train_feature_net(images, seed=3, **kwargs)
    assert rotation.name.startswith("featnet-rotation-") and rotation.name != first.name


def test_feature_net_cache_reuses_weights(toy_train, tmp_path):
    images, labels = toy_train
    trained = load_or_train_feature_net(tmp_path, images, labels, steps=4, width=8, seed=0)
    cached_files = list(tmp_path.glob("feature_net_*.pt"))
    assert len(cached_files) == 1
    before = cached_files[0].stat().st_mtime_ns
    loaded = load_or_train_feature_net(tmp_path, images, labels, steps=4, width=8, seed=0)
    assert cached_files[0].stat().st_mtime_ns == before  # not retrained
    assert loaded.name == trained.name
    with torch.no_grad():
        torch.testing.assert_close(loaded(images[:5]), trained(images[:5]), rtol=0, atol=0)
    # Other data must not hit the same cache entry.
    load_or_train_feature_net(tmp_path, images[:100], labels[:100], steps=4, width=8, seed=0)
    assert len(list(tmp_path.glob("feature_net_*.pt"))) == 2


def test_a_cache_folder_that_cannot_be_written_still_gives_the_network(toy_train, tmp_path):
    """Evaluating a run on a read-only share (its <run>/feature_nets cannot be created) ended in an
    OSError traceback; the network is trained all the same, and a warning says it was not cached."""
    import errno

    from effgan.metrics import feature_net

    images, labels = toy_train
    expected = train_feature_net(images, labels, steps=4, width=8, seed=0)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feature_net.Path, "mkdir", read_only)
        with pytest.warns(UserWarning, match=r"(?s)feature_nets.*Read-only file system.*not cached"):
            net = load_or_train_feature_net(tmp_path / "feature_nets", images, labels, steps=4, width=8, seed=0)
    assert net.name == expected.name and not (tmp_path / "feature_nets").exists()
    with torch.no_grad():
        torch.testing.assert_close(net(images[:5]), expected(images[:5]), rtol=0, atol=0)


def test_each_cache_write_goes_through_a_temp_file_of_its_own(toy_train, tmp_path):
    """Two evaluations training the same network at once (say, evaluate beside a training run's
    --eval-every) wrote one fixed feature_net_<key>.tmp: the second truncated the first's file
    mid-write and the rename could publish a torn network. Each writer now has its own temp file."""
    from effgan.metrics import feature_net

    images, labels = toy_train
    written = []
    save = feature_net.save_feature_net

    def recording_save(net, path):
        written.append(Path(path))
        save(net, path)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feature_net, "save_feature_net", recording_save)
        for _ in range(2):  # the second call finds no cache (removed) and writes again
            load_or_train_feature_net(tmp_path / "a", images, labels, steps=2, width=8, seed=0)
            for cached in (tmp_path / "a").glob("feature_net_*.pt"):
                cached.unlink()
    assert len(written) == 2 and written[0] != written[1]
    assert all(p.parent == tmp_path / "a" and not p.exists() for p in written)


def test_numbers_from_different_extractors_cannot_be_compared(toy_train):
    images, labels = toy_train
    a = build_extractor(real_images=images, real_labels=labels, steps=2, width=8, seed=0)
    b = build_extractor(real_images=images, real_labels=labels, steps=2, width=8, seed=1)
    features_a, features_b = extract_features(a, images), extract_features(b, images)
    assert features_a.features.shape == (160, 32)
    with pytest.raises(ValueError, match="different extractors"):
        fid(features_a, features_b)
    metrics = distribution_metrics(features_a, extract_features(a, images[:80]), suffix="_ab",
                                   kid_subsets=5, kid_subset_size=40)
    assert set(metrics) == {f"fid_ab/{a.name}", f"kid_mean_ab/{a.name}", f"kid_std_ab/{a.name}"}
    assert metric_value(metrics, "fid_ab") == metrics[f"fid_ab/{a.name}"]
    with pytest.raises(ValueError, match="matches 0 keys"):
        metric_value(metrics, "fid_ba")
    assert lower_is_better("fid_ab/x") and not lower_is_better("paired_ssim_ab")
    # Two evaluations' numbers compare only when the same extractor made them.
    other = distribution_metrics(features_b, extract_features(b, images[:80]), suffix="_ab", kid_subsets=5,
                                 kid_subset_size=40)
    assert comparable_values(metrics, dict(metrics), "fid_ab") == (metrics[f"fid_ab/{a.name}"],) * 2
    with pytest.raises(ValueError, match="different feature extractors"):
        comparable_values(metrics, other, "fid_ab")
    assert comparable_values({"paired_mae_ab": 0.5}, {"paired_mae_ab": 0.25}, "paired_mae_ab") == (0.5, 0.25)


def test_feature_set_validates():
    with pytest.raises(TypeError):
        FeatureSet("", np.zeros((2, 2)))
    with pytest.raises(ValueError):
        FeatureSet("x", np.zeros(3))


@pytest.fixture(scope="module")
def score_classifier(toy_train):
    images, labels = toy_train
    return train_score_classifier(images, labels, num_classes=NUM_CLASSES, steps=25, width=8, seed=0)


def test_generator_returning_real_images_scores_like_the_real_test_set(score_classifier, toy_test):
    test_images, test_labels = toy_test
    per_class = len(test_labels) // NUM_CLASSES

    def real_image_generator(n, labels):
        # Hand back, for each requested label, the next unused real test image of that class.
        used = {k: 0 for k in range(NUM_CLASSES)}
        out = []
        for k in labels.tolist():
            candidates = (test_labels == k).nonzero().flatten()
            out.append(test_images[candidates[used[k]]])
            used[k] += 1
        return torch.stack(out)

    result = classifier_score(real_image_generator, score_classifier, num_classes=NUM_CLASSES,
                              per_class=per_class, real_test_images=test_images, real_test_labels=test_labels)
    assert result["classifier_acc/real_test"] > 0.9
    assert result["classifier_acc/generated"] == pytest.approx(result["classifier_acc/real_test"])
    per_class_values = [result[f"classifier_acc/generated_class_{k}"] for k in range(NUM_CLASSES)]
    assert np.mean(per_class_values) == pytest.approx(result["classifier_acc/generated"])


def test_labelled_evaluation_generates_as_many_images_as_it_reads():
    from effgan.metrics import evaluate_labelled_generator

    asked = []

    def generator(n, labels):
        asked.append(labels.clone())
        return torch.zeros(n, 1, SIZE, SIZE)

    images, labels = toy_labelled(25, seed=2)
    evaluate_labelled_generator(generator, list(zip(images, labels.tolist())), max_items=25, num_classes=10)
    counts = torch.bincount(torch.cat(asked), minlength=10).tolist()
    assert counts == [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]  # 25, not 10 * (25 // 10)
    asked.clear()
    evaluate_labelled_generator(generator, list(zip(images[:4], labels[:4].tolist())), max_items=4, num_classes=10)
    assert torch.bincount(torch.cat(asked), minlength=10).tolist() == [1] * 10  # every class at least once


def test_wrongly_shaped_labels_are_refused_not_broadcast(score_classifier, toy_test):
    from effgan.metrics import collect_images
    from effgan.metrics.classifier_score import score_generated

    images, labels = toy_test
    with pytest.raises(ValueError, match=r"real_test_labels must have shape \(80,\), got \(80, 1\)"):
        score_generated(score_classifier, images, labels, num_classes=NUM_CLASSES, real_test_images=images,
                        real_test_labels=labels[:, None])
    with pytest.raises(ValueError, match=r"labels must have shape \(80,\), got \(80, 1\)"):
        score_generated(score_classifier, images, labels[:, None], num_classes=NUM_CLASSES)
    with pytest.raises(ValueError, match="source holds no images"):
        collect_images(torch.empty(0, 1, SIZE, SIZE))


def test_label_ignoring_generator_scores_chance_exactly(score_classifier):
    noise = torch.rand(5, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(9)) * 2 - 1

    def ignores_labels(n, labels):
        # The same images for every class, so each image is "right" for exactly one class.
        position = torch.cat([torch.arange((labels == k).sum()) for k in labels.unique(sorted=True)])
        return noise[position % 5]

    result = classifier_score(ignores_labels, score_classifier, num_classes=NUM_CLASSES, per_class=5)
    assert result["classifier_acc/generated"] == pytest.approx(1 / NUM_CLASSES)
    assert "classifier_acc/real_test" not in result


def test_c2st_is_chance_for_one_distribution_and_high_for_two(toy_train):
    gen = torch.Generator().manual_seed(5)
    same_a = torch.randn(160, 1, SIZE, SIZE, generator=gen).clamp(-1, 1)
    same_b = torch.randn(160, 1, SIZE, SIZE, generator=gen).clamp(-1, 1)
    different = (0.5 * torch.randn(160, 1, SIZE, SIZE, generator=gen) + 0.5).clamp(-1, 1)
    kwargs = dict(steps=25, width=8, seed=0)
    indistinguishable = classifier_two_sample_test(same_a, same_b, **kwargs)
    separable = classifier_two_sample_test(same_a, different, **kwargs)
    assert indistinguishable["c2st_n_test"] == 160
    assert 0.35 < indistinguishable["c2st_accuracy"] < 0.65
    assert separable["c2st_accuracy"] > 0.9


def test_c2st_rejects_bad_input():
    x = torch.zeros(10, 1, 8, 8)
    with pytest.raises(ValueError, match="shapes differ"):
        c2st.classifier_two_sample_test(x, torch.zeros(10, 3, 8, 8))
    with pytest.raises(ValueError, match="test_fraction"):
        c2st.classifier_two_sample_test(x, x, test_fraction=1.0)
