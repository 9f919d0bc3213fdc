"""Files written to a temp name and renamed into place get a plain file's mode (0o666 less the umask).

The image cache was written through tempfile.mkstemp, whose files are private (0o600): a data cache
shared with colleagues held renders only their owner could read, and another user's run failed at its
first item. Checkpoints and the feature-network cache take the same path.
"""
import os

import pytest
import torch

from effgan._paths import create_temp_file


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield 0o640
    finally:
        os.umask(old)


def _mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def test_the_image_cache_is_readable_as_the_umask_allows(tmp_path, umask_027):
    from effgan.data import CachedImages, Digits

    CachedImages(Digits(split="train", size=28, length=2, seed=0), tmp_path, "digits")
    [path] = tmp_path.glob("*.npy")
    assert _mode(path) == umask_027
    assert not list(tmp_path.glob("*.tmp"))


def test_the_feature_net_cache_is_readable_as_the_umask_allows(tmp_path, umask_027):
    from effgan.metrics.feature_net import load_or_train_feature_net

    images = torch.rand(8, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    labels = torch.arange(8) % 2
    load_or_train_feature_net(tmp_path, images, labels, steps=1, width=4, seed=0)
    [path] = tmp_path.glob("feature_net_*.pt")
    assert _mode(path) == umask_027
    assert not list(tmp_path.glob("*.tmp"))


def test_a_checkpoint_is_readable_as_the_umask_allows(tmp_path, umask_027):
    from effgan.train.checkpoint import save_atomic

    save_atomic({"x": torch.ones(2)}, tmp_path / "c.pt")
    assert _mode(tmp_path / "c.pt") == umask_027
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]


def test_temp_files_get_distinct_names(tmp_path):
    made = [create_temp_file(tmp_path, prefix="a.", suffix=".tmp") for _ in range(3)]
    for fd, _ in made:
        os.close(fd)
    names = [os.path.basename(path) for _, path in made]
    assert len(set(names)) == 3 and all(n.startswith("a.") and n.endswith(".tmp") for n in names)
