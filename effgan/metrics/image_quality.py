"""Paired image errors: MAE, PSNR and SSIM between a prediction and its ground truth.

Images are (N, C, H, W) tensors. effgan images live in [-1, 1]: PSNR's default data_range is 2,
and SSIM's default value_range is (-1, 1), which it shifts to [0, 2] before comparing (its
luminance term assumes intensities of 0 or more). Each metric is computed per image and then
averaged over the batch, so a batch's number does not depend on how images are grouped into
batches.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DEFAULT_DATA_RANGE = 2.0  # max - min of [-1, 1] images
DEFAULT_VALUE_RANGE = (-1.0, 1.0)


def _check_pair(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(prediction, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("prediction and target must be torch.Tensor")
    if prediction.shape != target.shape:
        raise ValueError(f"prediction and target shapes differ: {tuple(prediction.shape)} vs {tuple(target.shape)}")
    if prediction.dim() != 4:
        raise ValueError(f"prediction must be (N, C, H, W), got shape {tuple(prediction.shape)}")


def mae_per_image(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of each image, shape (N,)."""
    _check_pair(prediction, target)
    return (prediction.double() - target.double()).abs().flatten(1).mean(dim=1)


def psnr_per_image(prediction: torch.Tensor, target: torch.Tensor, *,
                   data_range: float = DEFAULT_DATA_RANGE) -> torch.Tensor:
    """PSNR in dB of each image, 10 log10(data_range^2 / MSE), shape (N,); inf for identical images."""
    _check_pair(prediction, target)
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    mse = (prediction.double() - target.double()).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range**2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-D Gaussian of `size` taps, float64."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size must be a positive odd int, got {size}")
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    taps = torch.exp(-(coords**2) / (2 * sigma**2))
    return taps / taps.sum()


def ssim_per_image(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    value_range: tuple[float, float] = DEFAULT_VALUE_RANGE,
    window_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean SSIM of each image (Wang et al. 2004), shape (N,).

    Local statistics use a Gaussian window (11 taps, sigma 1.5) applied as a 'valid'
    convolution, so no padded border enters the map; the map is averaged over
    positions and channels. Images must be at least window_size pixels on each side.

    value_range = (lo, hi) is the range the images' values live in. SSIM is computed on the values
    minus lo, with data range hi - lo, as for [0, 255] or [0, 1] images: the luminance term
    (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) is meant for non-negative intensities, and on
    zero-centred values it scores an inverted image close to 1 (SSIM(-x, x) on [-1, 1] values).
    The result is the same for any (lo, hi) that maps the images the same way onto [0, 1].
    """
    _check_pair(prediction, target)
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"value_range must be a pair (lo, hi) of numbers, got {value_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"value_range must be a finite pair (lo, hi) with hi > lo, got {value_range!r}")
    data_range = hi - lo
    n, c, h, w = prediction.shape
    if h < window_size or w < window_size:
        raise ValueError(f"images must be at least {window_size}x{window_size} for SSIM, got {h}x{w}")
    taps = gaussian_window(window_size, sigma).to(prediction.device)
    window = torch.outer(taps, taps).expand(c, 1, window_size, window_size).contiguous()

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=c)

    x = prediction.double() - lo
    y = target.double() - lo
    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov_xy = local_mean(x * y) - mu_x * mu_y
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return ssim_map.flatten(1).mean(dim=1)


def mae(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """Batch mean of the per-image mean absolute error."""
    return float(mae_per_image(prediction, target).mean())


def psnr(prediction: torch.Tensor, target: torch.Tensor, *, data_range: float = DEFAULT_DATA_RANGE) -> float:
    """Batch mean of the per-image PSNR in dB: inf if a pair is identical, NaN if a value is NaN and
    -inf for an infinite error (a diverged output must not score as a perfect one)."""
    return float(psnr_per_image(prediction, target, data_range=data_range).mean())


def ssim(prediction: torch.Tensor, target: torch.Tensor, **kwargs) -> float:
    """Batch mean of the per-image SSIM; keyword arguments as ssim_per_image."""
    return float(ssim_per_image(prediction, target, **kwargs).mean())
