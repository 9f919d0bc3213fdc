import numpy as np
import pytest
import torch
from PIL import Image

from effgan.data import make_image_grid, save_image_grid


def test_grid_layout_and_value_mapping(tmp_path):
    real = torch.full((3, 3, 4, 5), -1.0)
    fake = torch.full((3, 3, 4, 5), 1.0)
    path = save_image_grid([real, fake], tmp_path / "sub" / "grid.png", nrow=3, padding=1)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (2 * (4 + 1) + 1, 3 * (5 + 1) + 1, 3)
    assert (grid[1:5, 1:6] == 0).all()  # first row: real, -1 -> 0
    assert (grid[6:10, 1:6] == 255).all()  # second row: fake, 1 -> 255
    assert (grid[0] == 255).all()  # padding in pad_value 1.0


def test_grid_clamps_and_handles_grayscale_and_partial_rows():
    grid = make_image_grid(torch.tensor([[[[-3.0, 0.0], [3.0, 1.0]]]]).repeat(3, 1, 1, 1), nrow=2, padding=0)
    assert grid.shape == (4, 4, 1)
    assert grid[0, 0, 0] == 0 and grid[0, 1, 0] == 128 and grid[1, 0, 0] == 255
    mixed = make_image_grid([torch.zeros(1, 2, 2), torch.zeros(3, 2, 2)], nrow=2, padding=0)
    assert mixed.shape == (2, 4, 3)


def test_grid_rejects_bad_input():
    with pytest.raises(TypeError):
        make_image_grid([])
    with pytest.raises(ValueError, match="height and width"):
        make_image_grid([torch.zeros(3, 2, 2), torch.zeros(3, 4, 4)])
    with pytest.raises(ValueError, match="nrow"):
        make_image_grid(torch.zeros(1, 3, 2, 2), nrow=0)
