"""Fréchet distance against closed forms, the singular-covariance path and the error checks."""
import numpy as np
import pytest

from effgan.metrics import frechet
from effgan.metrics.frechet import feature_statistics, frechet_distance, frechet_distance_from_features


def diagonal_closed_form(mu1, var1, mu2, var2):
    # For diagonal (commuting) covariances sqrtm(S1 S2) = diag(sqrt(v1 v2)), so
    # FD = |mu1 - mu2|^2 + sum (sqrt(v1) - sqrt(v2))^2.
    return float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2))


@pytest.mark.parametrize("dim", [1, 7, 33])
def test_diagonal_gaussians_match_closed_form(dim):
    rng = np.random.default_rng(dim)
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    var1, var2 = rng.uniform(0.1, 3.0, dim), rng.uniform(0.1, 3.0, dim)
    got = frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(diagonal_closed_form(mu1, var1, mu2, var2), rel=1e-9, abs=1e-9)


def test_rotated_covariance_matches_closed_form():
    # S2 = R S1 R^T with the same spectrum does not commute with S1; for 2x2 use the
    # identity Tr sqrtm(S1 S2) = sqrt(Tr(S1 S2) + 2 sqrt(det(S1 S2))) (eigenvalues are real, positive).
    s1 = np.diag([4.0, 1.0])
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    s2 = rot @ np.diag([2.0, 0.5]) @ rot.T
    product = s1 @ s2
    trace_sqrt = np.sqrt(np.trace(product) + 2 * np.sqrt(np.linalg.det(product)))
    expected = np.trace(s1) + np.trace(s2) - 2 * trace_sqrt
    assert frechet_distance(np.zeros(2), s1, np.zeros(2), s2) == pytest.approx(expected, rel=1e-9)


def test_identical_statistics_give_zero_and_mean_shift_adds_squared_norm():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 6))
    mu, sigma = feature_statistics(a)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)
    shift = np.arange(6.0)
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(float(shift @ shift), rel=1e-7)


def test_samples_approach_population_distance():
    rng = np.random.default_rng(1)
    var1, var2 = np.array([1.0, 2.0, 0.5]), np.array([2.0, 1.0, 1.5])
    a = rng.normal(size=(20000, 3)) * np.sqrt(var1)
    b = rng.normal(size=(20000, 3)) * np.sqrt(var2) + 1.0
    expected = diagonal_closed_form(np.zeros(3), var1, np.ones(3), var2)
    assert frechet_distance_from_features(a, b) == pytest.approx(expected, rel=0.05)


def test_statistics_use_unbiased_covariance():
    x = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    mu, sigma = feature_statistics(x)
    centred = x - x.mean(axis=0)
    np.testing.assert_allclose(mu, [2.0, 4.0])
    np.testing.assert_allclose(sigma, centred.T @ centred / 2)


def test_rank_deficient_covariances_give_finite_distance():
    # Fewer samples than dimensions: both covariances (and their product) are singular.
    rng = np.random.default_rng(2)
    a = rng.normal(size=(5, 20))
    b = rng.normal(size=(6, 20)) + 0.5
    value = frechet_distance_from_features(a, b)
    assert np.isfinite(value)
    # The mean term alone is a lower bound the distance cannot fall below by much.
    assert value > 0.9 * np.sum((a.mean(0) - b.mean(0)) ** 2)
    assert frechet_distance_from_features(a, a) == pytest.approx(0.0, abs=1e-6)


def test_a_collapsed_generator_gives_its_distance_without_warnings():
    """Identical fake features: a zero covariance, so a zero product under the square root."""
    import warnings

    rng = np.random.default_rng(3)
    real = rng.normal(size=(50, 4))
    collapsed = np.full((40, 4), 0.25)  # exactly representable: its covariance is exactly 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = frechet_distance_from_features(real, collapsed)
    mu, sigma = real.mean(0), np.cov(real, rowvar=False)
    assert value == pytest.approx(np.sum((mu - collapsed[0]) ** 2) + np.trace(sigma), rel=1e-9)


def test_non_finite_sqrtm_retries_with_offset(monkeypatch):
    seen = []
    real_sqrtm = frechet._sqrtm

    def first_call_fails(matrix):
        seen.append(matrix.copy())
        return np.full_like(matrix, np.nan) if len(seen) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(frechet, "_sqrtm", first_call_fails)
    s1, s2 = np.diag([1.0, 2.0]), np.diag([3.0, 4.0])
    value = frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=1e-3)
    assert len(seen) == 2
    np.testing.assert_allclose(seen[1], (s1 + 1e-3 * np.eye(2)) @ (s2 + 1e-3 * np.eye(2)))
    expected = np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt((np.diag(s1) + 1e-3) * (np.diag(s2) + 1e-3)))
    assert value == pytest.approx(expected, rel=1e-9)


def test_large_imaginary_component_raises():
    # Not a valid covariance: the product has a negative eigenvalue, so sqrtm is imaginary.
    with pytest.raises(ValueError, match="imaginary"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([-1.0, 1.0]))


@pytest.mark.parametrize("args, match", [
    ((np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)), "covariance"),
    ((np.zeros(2), np.eye(2), np.zeros(3), np.eye(3)), "dimension"),
])
def test_shape_mismatch_raises(args, match):
    with pytest.raises(ValueError, match=match):
        frechet_distance(*args)


def test_feature_statistics_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        feature_statistics(np.zeros(5))
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.zeros((1, 4)))


def test_fid_of_non_finite_features_is_nan():
    """A diverged generator's NaN images give NaN, as KID does, not an error from sqrtm."""
    import math

    from effgan.metrics import frechet_distance_from_features

    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
    fake[3, 1] = np.nan
    assert math.isnan(frechet_distance_from_features(real, fake))
    fake[3, 1] = np.inf
    assert math.isnan(frechet_distance_from_features(real, fake))
