"""Fréchet distance between two Gaussians fitted to feature sets (the "FID" formula).

FD = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrtm(S1 S2)), computed the way the reference
FID implementations do, so that numbers from the standard Inception extractor are
comparable with published ones.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

# A covariance product that is singular (fewer samples than feature dimensions, or
# rank-deficient features) can make sqrtm return non-finite values; the reference
# implementations then retry with this diagonal offset.
DEFAULT_SQRTM_EPS = 1e-6
# Imaginary parts of sqrtm's diagonal beyond this mean the result is not trustworthy.
IMAGINARY_TOLERANCE = 1e-3


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, N-1) covariance of an (N, D) feature matrix, in float64."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"features must be a 2-D (N, D) array, got shape {feats.shape}")
    if feats.shape[0] < 2:
        raise ValueError(f"features needs at least 2 rows to estimate a covariance, got {feats.shape[0]}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _check_moments(name: str, mu: np.ndarray, sigma: np.ndarray) -> None:
    if mu.ndim != 1:
        raise ValueError(f"{name}: mean must be 1-D, got shape {mu.shape}")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{name}: covariance must be ({mu.shape[0]}, {mu.shape[0]}), got {sigma.shape}")


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """scipy.linalg.sqrtm(matrix, disp=False) without its warnings.

    disp=False is what the reference implementations call (no singular-matrix print);
    SciPy >= 1.17 deprecates the argument, and a release without it gets the plain call.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        # its error estimate divides by the matrix's norm: 0 / 0 for a zero product (a collapsed
        # generator's features), which warns though the root (0) is exact
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            root = linalg.sqrtm(matrix, disp=False)
        except TypeError:
            root = linalg.sqrtm(matrix)
    # disp=False returns (root, error estimate), except for 1x1 input on SciPy 1.17.
    return root[0] if isinstance(root, tuple) else root


def frechet_distance(mu1, sigma1, mu2, sigma2, *, eps: float = DEFAULT_SQRTM_EPS) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Raises ValueError when the matrix square root has significant imaginary parts
    (max |imag| on its diagonal beyond 1e-3). Non-finite moments (features of a diverged generator's
    NaN images) give NaN, as KID does, instead of an error from the matrix square root.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    _check_moments("mu1/sigma1", mu1, sigma1)
    _check_moments("mu2/sigma2", mu2, sigma2)
    if mu1.shape != mu2.shape:
        raise ValueError(f"mu1 and mu2 differ in dimension: {mu1.shape} vs {mu2.shape}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    if not all(np.isfinite(m).all() for m in (mu1, sigma1, mu2, sigma2)):
        return float("nan")

    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))

    if np.iscomplexobj(covmean):
        largest_imag = np.max(np.abs(covmean.diagonal().imag))
        if largest_imag > IMAGINARY_TOLERANCE:
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) has imaginary diagonal components up to {largest_imag:.3g} "
                f"(> {IMAGINARY_TOLERANCE}); the covariances are too ill-conditioned for a Fréchet distance"
            )
        covmean = covmean.real

    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance_from_features(features1, features2, *, eps: float = DEFAULT_SQRTM_EPS) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature matrices."""
    mu1, sigma1 = feature_statistics(features1)
    mu2, sigma2 = feature_statistics(features2)
    return frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps)
