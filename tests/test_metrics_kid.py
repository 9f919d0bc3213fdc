"""KID: the unbiased estimator against a direct computation, its expectation, and seeding."""
import importlib

import numpy as np
import pytest

from effgan.metrics.kid import kernel_inception_distance, mmd2_unbiased


def direct_mmd2_unbiased(x, y):
    """The estimator written out term by term (i != j in the within-set sums)."""
    d = x.shape[1]
    k = lambda u, v: (u @ v / d + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_unbiased_estimator_matches_direct_sum():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 5)), rng.normal(size=(11, 5)) + 0.3
    assert mmd2_unbiased(x, y) == pytest.approx(direct_mmd2_unbiased(x, y), rel=1e-10)


def test_full_subset_equals_estimator_on_whole_sets():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(12, 4))
    mean, std = kernel_inception_distance(x, y, n_subsets=3, subset_size=50)
    # Subsets are capped at the set size, so each is a permutation of the whole set.
    assert mean == pytest.approx(mmd2_unbiased(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_whole_set_subsets_are_computed_once(monkeypatch):
    kid = importlib.import_module("effgan.metrics.kid")  # the package exports a function of that name

    calls = []
    monkeypatch.setattr(kid, "mmd2_unbiased", lambda a, b: calls.append(len(a)) or 0.5)
    rng = np.random.default_rng(1)
    assert kid.kernel_inception_distance(rng.normal(size=(12, 4)), rng.normal(size=(12, 4)), n_subsets=100,
                                         subset_size=50) == (0.5, 0.0)
    assert calls == [12]
    calls.clear()
    kid.kernel_inception_distance(rng.normal(size=(12, 4)), rng.normal(size=(20, 4)), n_subsets=5, subset_size=50)
    assert calls == [12] * 5  # the larger set's subsets still differ


def test_same_distribution_is_zero_in_expectation_and_different_is_positive():
    rng = np.random.default_rng(2)
    same = [mmd2_unbiased(rng.normal(size=(40, 8)), rng.normal(size=(40, 8))) for _ in range(300)]
    standard_error = np.std(same) / np.sqrt(len(same))
    assert abs(np.mean(same)) < 4 * standard_error
    assert min(same) < 0 < max(same)  # unbiased: individual estimates fall on both sides of 0

    shifted = mmd2_unbiased(rng.normal(size=(40, 8)), rng.normal(size=(40, 8)) + 1.0)
    assert shifted > 10 * np.std(same)


def test_seeded_subsets_are_reproducible():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(60, 4)), rng.normal(size=(50, 4)) + 0.2
    first = kernel_inception_distance(x, y, n_subsets=10, subset_size=20, seed=7)
    assert first == kernel_inception_distance(x, y, n_subsets=10, subset_size=20, seed=7)
    assert first != kernel_inception_distance(x, y, n_subsets=10, subset_size=20, seed=8)
    assert first[1] > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_subsets=0), "n_subsets"),
    (dict(subset_size=1), "subset_size"),
])
def test_bad_arguments_raise(kwargs, match):
    x = np.zeros((5, 3))
    with pytest.raises(ValueError, match=match):
        kernel_inception_distance(x, x, **kwargs)


def test_mismatched_dims_raise():
    with pytest.raises(ValueError, match="feature dims"):
        kernel_inception_distance(np.zeros((5, 3)), np.zeros((5, 4)))
