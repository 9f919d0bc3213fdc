import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from effgan.data import DataWarning, ImageFiles, build_dataset, image_folder, make_loader
from effgan.data.image_io import UnreadableDataError


def _save(path, mode, size=(48, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    if mode == "P":
        img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert("P")
    else:
        bands = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        array = rng.integers(0, 255, (size[1], size[0], bands), dtype=np.uint8)
        img = Image.fromarray(array[..., 0] if bands == 1 else array, mode)
    img.save(path)
    return path


def _bad_folder(root):
    _save(root / "a_good.png", "RGB")
    _save(root / "b_gray.png", "L")
    _save(root / "c_rgba.png", "RGBA")
    _save(root / "d_palette.png", "P")
    _save(root / "e_tiny.png", "RGB", size=(8, 8))
    good = (root / "a_good.png").read_bytes()
    (root / "f_corrupt.png").write_bytes(good[: len(good) // 2])  # truncated mid-stream
    (root / "g_text.jpg").write_text("this is not a jpeg\n")
    (root / "notes.txt").write_text("ignored: not an image extension\n")


def test_bad_images_are_converted_or_skipped_with_one_warning_each(tmp_path):
    _bad_folder(tmp_path)
    ds = build_dataset(tmp_path, "train", image_size=32, augment=True)
    assert len(ds) == 7  # notes.txt is not listed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [ds[i] for i in range(len(ds))]
        items += [ds[i] for i in range(len(ds))]  # second pass: nothing new to report
    for image, label in items:
        assert image.shape == (3, 32, 32) and label == 0
        assert image.min() >= -1 and image.max() <= 1
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    for name in ("b_gray", "c_rgba", "d_palette", "f_corrupt", "g_text"):
        assert sum(name in m for m in messages) == 1, (name, messages)
    assert sum("smaller than" in m and "e_tiny" in m for m in messages) == 1
    assert not any("a_good" in m for m in messages)
    assert len(messages) == 6


def test_unreadable_file_is_replaced_by_the_next_readable_one(tmp_path):
    _save(tmp_path / "a.png", "RGB")
    (tmp_path / "b.jpg").write_text("garbage")
    _save(tmp_path / "c.png", "RGB")
    files = ImageFiles(sorted(tmp_path.iterdir()), labels=[0, 1, 2])
    with pytest.warns(DataWarning, match="b.jpg"):
        image, label = files.item(1)
    assert label == 2  # the label of the file actually read
    assert torch.equal(image, files.image(2))


def test_all_unreadable_raises(tmp_path):
    (tmp_path / "x.png").write_text("nope")
    files = ImageFiles([tmp_path / "x.png"])
    with pytest.warns(DataWarning), pytest.raises(UnreadableDataError, match="could be read"):
        files.image(0)


def test_rgba_is_composited_and_grayscale_replicated(tmp_path):
    img = np.zeros((4, 4, 4), np.uint8)
    img[..., 0] = 255  # red, fully transparent on the left half
    img[:, 2:, 3] = 255
    Image.fromarray(img, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.full((4, 4), 100, np.uint8), "L").save(tmp_path / "b.png")
    files = ImageFiles([tmp_path / "a.png", tmp_path / "b.png"])
    with pytest.warns(DataWarning):
        rgba, gray = files.image(0), files.image(1)
    assert torch.allclose(rgba[:, :, :2], torch.ones(3, 4, 2))  # transparent -> white
    assert torch.allclose(rgba[:, :, 2:], torch.tensor([1.0, -1.0, -1.0])[:, None, None].expand(3, 4, 2))
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])


def test_class_subfolders_become_labels(tmp_path):
    for name, count in (("daisy", 2), ("rose", 3)):
        for k in range(count):
            _save(tmp_path / name / f"{k}.png", "RGB")
    source = image_folder(tmp_path)
    assert source.classes == ("daisy", "rose")
    assert sorted(source.labels) == [0, 0, 1, 1, 1]
    ds = build_dataset(tmp_path, image_size=16)
    assert [ds[i][1] for i in range(5)] == [0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="split"):
        build_dataset(tmp_path, "test", image_size=16)


def test_cyclegan_folders_unpaired_with_two_workers(tmp_path):
    for folder, count in (("trainA", 5), ("trainB", 3), ("testA", 1), ("testB", 1)):
        for k in range(count):
            _save(tmp_path / folder / f"{k}.jpg", "RGB", size=(24 + k, 20))
    ds = build_dataset(tmp_path, "train", image_size=16, augment=True, seed=1)
    assert len(ds) == 5
    loader = make_loader(ds, 2, shuffle=False, num_workers=2, seed=0)
    batches = list(loader)
    assert [tuple(b["A"].shape) for b in batches] == [(2, 3, 16, 16), (2, 3, 16, 16), (1, 3, 16, 16)]
    b_indices = torch.cat([b["B_index"] for b in batches]).tolist()
    assert sorted(b_indices[:3]) == [0, 1, 2]  # each B image once per len(B) items
    assert torch.equal(batches[0]["A"][1], ds[1]["A"])  # workers build the same items as the main process
    test = build_dataset(tmp_path, "test", image_size=16)
    assert len(test) == 1 and test[0]["B"].shape == (3, 16, 16)


def test_missing_or_empty_folders_raise(tmp_path):
    with pytest.raises(ValueError, match="name_or_path"):
        build_dataset(tmp_path / "absent")
    with pytest.raises(ValueError, match="no image files"):
        build_dataset(tmp_path)
    with pytest.raises(ValueError, match="length"):
        build_dataset(tmp_path, length=3)


def test_train_cli_reports_a_dataset_of_unreadable_files(tmp_path, capsys):
    """Every file broken: python -m effgan.train ends with a message naming the data, not a traceback."""
    from effgan.train.__main__ import main

    for side in ("trainA", "trainB"):
        (tmp_path / "data" / side).mkdir(parents=True)
        for i in range(2):
            (tmp_path / "data" / side / f"{i}.png").write_bytes(b"not an image")
    with pytest.warns(DataWarning):
        code = main(["--dataset", str(tmp_path / "data"), "--max-steps", "1", "--impl", "ref", "--out-dir",
                     str(tmp_path / "runs"), "--num-workers", "0", "--no-progress"])
    assert code == 2
    assert "none of the 2 image files could be read" in capsys.readouterr().err
