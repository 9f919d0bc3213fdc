"""Kernel Inception Distance: the unbiased MMD^2 with a cubic polynomial kernel.

k(x, y) = (x.y / d + 1)^3, averaged over random subsets of both feature sets; the
subset draws come from a seeded generator so the same features give the same number.
"""
from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Gram matrix of k(x, y) = (x.y / d + 1)^3 between rows of x (n, d) and y (m, d)."""
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
    """Unbiased estimate of MMD^2 between samples x (m, d) and y (n, d) under the cubic kernel.

    The within-set sums leave out the diagonal (k(x_i, x_i)), which is what makes the
    estimate unbiased: its expectation is 0 when x and y come from the same distribution.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be 2-D with equal feature dims, got {x.shape} and {y.shape}")
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"x and y need at least 2 rows each, got {m} and {n}")
    k_xx = polynomial_kernel(x, x)
    k_yy = polynomial_kernel(y, y)
    k_xy = polynomial_kernel(x, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.mean())


# The defaults of every KID in effgan (evaluation during training and python -m effgan.evaluate),
# so the two report the same numbers for the same checkpoint.
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def kernel_inception_distance(
    features1, features2, *, n_subsets: int = KID_SUBSETS, subset_size: int = KID_SUBSET_SIZE, seed: int = 0
) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over n_subsets random subsets of both feature sets.

    The subset size is capped at the smaller set's size (as the reference
    implementations do), and subsets are drawn without replacement. When that size takes both
    whole sets, the subsets differ only in order: the estimate is computed once, with std 0.
    """
    x = np.asarray(features1, dtype=np.float64)
    y = np.asarray(features2, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features1 and features2 must be 2-D with equal feature dims, got {x.shape} and {y.shape}")
    if not isinstance(n_subsets, int) or n_subsets < 1:
        raise ValueError(f"n_subsets must be a positive int, got {n_subsets!r}")
    if not isinstance(subset_size, int) or subset_size < 2:
        raise ValueError(f"subset_size must be an int >= 2, got {subset_size!r}")
    size = min(x.shape[0], y.shape[0], subset_size)
    if size < 2:
        raise ValueError(f"each feature set needs at least 2 rows, got {x.shape[0]} and {y.shape[0]}")

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if size == x.shape[0] == y.shape[0]:
        # every "subset" is a reordering of both whole sets, under which MMD^2 is invariant: one
        # estimate stands for all of them (n_subsets copies of the same work otherwise)
        return mmd2_unbiased(x, y), 0.0
    rng = np.random.default_rng(seed)
    estimates = np.empty(n_subsets)
    for i in range(n_subsets):
        x_subset = x[rng.choice(x.shape[0], size, replace=False)]
        y_subset = y[rng.choice(y.shape[0], size, replace=False)]
        estimates[i] = mmd2_unbiased(x_subset, y_subset)
    return float(estimates.mean()), float(estimates.std())
