import os
import subprocess
import sys

import pytest
import torch

from effgan.data import Digits, SharedEpoch, build_dataset, derive_seed
from effgan.data.preview import write_previews


def test_derive_seed_is_stable_across_processes():
    # Python salts str hashes per process; derive_seed must not depend on that.
    code = "from effgan.data import derive_seed; print(derive_seed(3, 'cans', 'train', 'A', 17))"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert int(out.stdout) == derive_seed(3, "cans", "train", "A", 17)
    assert derive_seed(3, "cans", "train", "A", 17) != derive_seed(3, "cans", "train", "B", 17)
    assert derive_seed(1, 23) != derive_seed(12, 3)  # parts are separated, not concatenated
    assert derive_seed(1) != derive_seed("1")


def test_integer_likes_seed_as_the_int_they_are():
    """Subset(dataset, np.arange(n)) indexes with numpy integers: the same items as with ints."""
    import numpy as np
    import torch
    from torch.utils.data import Subset

    from effgan.data import build_dataset

    assert derive_seed(3, np.int64(17)) == derive_seed(3, torch.tensor(17)) == derive_seed(3, 17)
    digits = build_dataset("digits", "train", length=6, seed=2)
    for subset_index, (image, label) in enumerate(Subset(digits, np.arange(1, 5))):
        expected_image, expected_label = digits[subset_index + 1]
        assert torch.equal(image, expected_image) and label == expected_label


def test_derive_seed_and_epoch_reject_bad_input():
    import numpy as np

    with pytest.raises(TypeError, match="int or str"):
        derive_seed(1.5)
    with pytest.raises(TypeError, match="int or str"):
        derive_seed(np.bool_(True))
    from effgan.data import make_loader

    for seed in (-1, 2**64):  # named, not torch's "Overflow when unpacking long long"
        with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*63 - 1\)"):
            make_loader(list(range(4)), 2, seed=seed)
    with pytest.raises(ValueError, match="epoch"):
        SharedEpoch().set(-1)
    with pytest.raises(TypeError, match="epoch"):
        SharedEpoch().set(True)


def test_epoch_changes_augmentation_but_not_content():
    ds = build_dataset("digits", length=10, seed=0, augment=True)
    ds.set_epoch(0)
    first = ds[4][0]
    ds.set_epoch(1)
    assert not torch.equal(ds[4][0], first)
    ds.set_epoch(0)
    assert torch.equal(ds[4][0], first)


def test_digits_cache_keeps_labels(tmp_path):
    cached = build_dataset("digits", length=12, seed=2, cache_dir=tmp_path)
    fresh = build_dataset("digits", length=12, seed=2)
    image, label = cached[7]
    assert label == fresh[7][1] == 7
    assert (image - fresh[7][0]).abs().max() < 2e-3
    assert cached.classes == fresh.classes
    assert len(Digits(length=12, seed=2).cache_key()) > 0 and len(list(tmp_path.glob("digits-*.npy"))) == 1


def test_preview_writes_both_grids(tmp_path):
    cans, digits = write_previews(tmp_path, size=64, count=2)
    assert cans.is_file() and digits.is_file()


def test_preview_command_refuses_bad_options_by_name(tmp_path, capsys):
    """A negative --seed or an --out that is a file ended in a traceback; now a usage error (exit 2)."""
    from effgan.data.preview import main

    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for argv, option in ((["--seed", "-1", "--out", str(tmp_path)], "--seed"),
                         (["--out", str(a_file)], "--out"), (["--out", str(a_file / "sub")], "--out")):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert "python -m effgan.data.preview" in err and f"error: {option}" in err, err
    assert a_file.read_text() == "not a folder" and sorted(os.listdir(tmp_path)) == ["notes.txt"]
