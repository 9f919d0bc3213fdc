"""MAE, PSNR and SSIM against direct computations."""
import math

import numpy as np
import pytest
import torch

from effgan.metrics.image_quality import gaussian_window, mae, psnr, psnr_per_image, ssim, ssim_per_image


def direct_ssim(x, y, data_range=2.0, size=11, sigma=1.5, k1=0.01, k2=0.03):
    """SSIM of two (H, W) arrays from Wang et al.'s formula, one window position at a time."""
    coords = np.arange(size) - (size - 1) / 2
    g = np.exp(-coords**2 / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    values = []
    for i in range(x.shape[0] - size + 1):
        for j in range(x.shape[1] - size + 1):
            px, py = x[i : i + size, j : j + size], y[i : i + size, j : j + size]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cov = (w * (px - mx) * (py - my)).sum()
            values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def images(seed, shape=(3, 2, 17, 19)):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_ssim_of_identical_images_is_one():
    x = images(0)
    assert ssim(x, x) == pytest.approx(1.0, abs=1e-12)


def test_ssim_matches_direct_numpy_per_channel_mean():
    """[-1, 1] images are scored as the same images on [0, 1] with data range 1."""
    x = images(1, (2, 2, 16, 15))
    y = (x + 0.3 * images(2, (2, 2, 16, 15))).clamp(-1, 1)
    got = ssim_per_image(x, y)
    for n in range(2):
        expected = np.mean([direct_ssim((x[n, c].double().numpy() + 1) / 2, (y[n, c].double().numpy() + 1) / 2,
                                        data_range=1.0) for c in range(2)])
        assert float(got[n]) == pytest.approx(expected, rel=1e-9)


def test_ssim_value_range_maps_images_onto_the_same_scale():
    x = images(10, (2, 3, 16, 16)).double()
    y = (x + 0.4 * images(11, (2, 3, 16, 16))).clamp(-1, 1)
    on_unit = ssim((x + 1) / 2, (y + 1) / 2, value_range=(0, 1))
    assert ssim(x, y) == pytest.approx(on_unit, rel=1e-12)
    assert ssim((x + 1) * 127.5, (y + 1) * 127.5, value_range=(0, 255)) == pytest.approx(on_unit, rel=1e-12)


def test_ssim_scores_an_inverted_image_as_dissimilar():
    """On zero-centred values the luminance term would score -x against x close to 1."""
    x = 0.8 * images(12, (2, 3, 24, 24))
    assert ssim(-x, x) < -0.9
    assert ssim(x + 0.05 * images(13, x.shape), x) > 0.9


def test_ssim_rejects_a_bad_value_range():
    x = images(14)
    for bad in [(1, 1), (1, -1), (0, float("inf")), 2.0, (0, "a")]:
        with pytest.raises(ValueError, match="value_range"):
            ssim(x, x, value_range=bad)


def test_ssim_is_symmetric_and_drops_with_noise():
    x = images(3)
    slight = (x + 0.05 * images(4)).clamp(-1, 1)
    heavy = (x + 0.8 * images(5)).clamp(-1, 1)
    assert ssim(x, slight) == pytest.approx(ssim(slight, x), rel=1e-12)
    assert 1.0 > ssim(x, slight) > ssim(x, heavy)


def test_gaussian_window_is_normalised_and_symmetric():
    w = gaussian_window(11, 1.5)
    assert float(w.sum()) == pytest.approx(1.0)
    assert torch.equal(w, w.flip(0))
    assert int(w.argmax()) == 5


def test_psnr_of_constant_offset():
    x = images(6).double()
    # MSE = 0.1^2 with data range 2: PSNR = 10 log10(4 / 0.01)
    assert psnr(x, x + 0.1) == pytest.approx(10 * math.log10(4 / 0.01), rel=1e-9)
    assert psnr(x, x + 0.1, data_range=1.0) == pytest.approx(20.0, rel=1e-9)
    assert math.isinf(psnr(x, x))


def test_psnr_of_a_diverged_output_is_not_perfect():
    x = images(15)
    nan_out = x.clone()
    nan_out[0] = float("nan")
    assert math.isnan(psnr(nan_out, x))
    inf_out = x + 0.1
    inf_out[1, 0, 0, 0] = float("inf")
    assert psnr(inf_out, x) == -math.inf


def test_psnr_averages_per_image_values():
    x = torch.zeros(2, 1, 4, 4)
    y = torch.stack([torch.full((1, 4, 4), 0.1), torch.full((1, 4, 4), 0.2)])
    per_image = psnr_per_image(x, y)
    np.testing.assert_allclose(per_image.numpy(), [10 * math.log10(4 / 0.01), 10 * math.log10(4 / 0.04)])
    assert psnr(x, y) == pytest.approx(float(per_image.mean()))


def test_mae_matches_direct_computation():
    x, y = images(7), images(8)
    assert mae(x, y) == pytest.approx(float(np.abs(x.numpy() - y.numpy()).mean()), rel=1e-6)


def test_bad_inputs_raise():
    x = images(9)
    with pytest.raises(ValueError, match="shapes differ"):
        mae(x, x[:, :1])
    with pytest.raises(TypeError):
        psnr(x.numpy(), x)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(x[..., :8, :8], x[..., :8, :8])
    with pytest.raises(ValueError, match="data_range"):
        psnr(x, x, data_range=0)
