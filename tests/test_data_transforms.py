import pytest
import torch

from effgan.data import Transform, jitter_load_size


def _image(size=40, channels=3):
    return torch.linspace(-1, 1, channels * size * size).reshape(channels, size, size)


def test_jitter_load_size_matches_reference():
    assert jitter_load_size(256) == 286
    assert jitter_load_size(128) == 143
    assert Transform.jitter(64).resolved_load_size == 72


def test_random_transform_is_deterministic_under_a_seeded_generator():
    transform = Transform.jitter(32, vflip=True, max_rotation_deg=10)
    image = _image()
    first = transform(image, torch.Generator().manual_seed(5))
    again = transform(image, torch.Generator().manual_seed(5))
    assert first.shape == (3, 32, 32)
    assert torch.equal(first, again)
    outputs = {transform(image, torch.Generator().manual_seed(s)).sum().item() for s in range(8)}
    assert len(outputs) > 4  # different seeds give different crops/flips


def test_flip_and_crop_are_exact_pixel_operations():
    image = torch.arange(3 * 8 * 8, dtype=torch.float32).reshape(3, 8, 8)
    hflip = Transform(crop_size=8, hflip=True)
    results = {tuple(hflip(image, torch.Generator().manual_seed(s)).flatten().tolist()) for s in range(16)}
    assert results == {tuple(image.flatten().tolist()), tuple(image.flip(-1).flatten().tolist())}
    crop = Transform(crop_size=4, load_size=8, random_crop=True)
    out = crop(image, torch.Generator().manual_seed(0))
    windows = [image[:, i:i + 4, j:j + 4] for i in range(5) for j in range(5)]
    assert any(torch.equal(out, w) for w in windows)
    centre = Transform(crop_size=4, load_size=8)
    assert torch.equal(centre(image), image[:, 2:6, 2:6])


def test_resize_upscales_small_images_and_keeps_range():
    out = Transform.resize(32)(torch.rand(1, 8, 8) * 2 - 1)
    assert out.shape == (1, 32, 32) and out.min() >= -1 and out.max() <= 1
    rotated = Transform(crop_size=16, max_rotation_deg=30)(_image(16), torch.Generator().manual_seed(1))
    assert rotated.shape == (3, 16, 16) and rotated.min() >= -1 and rotated.max() <= 1
    # saturated pixels: the filters' weights round to a sum an ulp off 1, which must not leave the range
    white = torch.ones(3, 300, 300)
    assert Transform.resize(256)(white).max() <= 1.0
    binary = torch.randint(0, 2, (3, 100, 73), generator=torch.Generator().manual_seed(0)).float() * 2 - 1
    for transform in (Transform.resize(64), Transform.jitter(256), Transform(crop_size=64, max_rotation_deg=10.0)):
        for seed in range(6):
            assert transform(binary, torch.Generator().manual_seed(seed)).abs().max() <= 1.0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="load_size"):
        Transform(crop_size=32, load_size=16)
    with pytest.raises(TypeError, match="crop_size"):
        Transform(crop_size=32.0)
    with pytest.raises(ValueError, match="generator"):
        Transform.jitter(16)(_image())
    with pytest.raises(ValueError, match="CHW"):
        Transform.resize(16)(torch.zeros(1, 3, 16, 16))
    with pytest.raises(TypeError, match="floating"):
        Transform.resize(16)(torch.zeros(3, 16, 16, dtype=torch.uint8))
