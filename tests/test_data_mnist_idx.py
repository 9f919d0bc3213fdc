import gzip
import struct

import numpy as np
import pytest
import torch

from effgan.data import MnistIdx, build_dataset, read_idx


def _idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write_mnist(root, split_prefix, count, compress):
    rng = np.random.default_rng(count)
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    for stem, array, code in ((f"{split_prefix}-images-idx3-ubyte", images, 0x08),
                              (f"{split_prefix}-labels-idx1-ubyte", labels, 0x08)):
        data = _idx_bytes(array, code)
        if compress:
            (root / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (root / stem).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_folder_round_trip(tmp_path, compress):
    images, labels = _write_mnist(tmp_path, "train", 12, compress)
    _write_mnist(tmp_path, "t10k", 5, compress)
    source = MnistIdx(tmp_path, "train")
    assert len(source) == 12 and len(MnistIdx(tmp_path, "test")) == 5
    image, label = source.item(7)
    assert label == 7
    assert torch.allclose((image[0] + 1) * 127.5, torch.from_numpy(images[7]).float(), atol=1e-4)
    ds = build_dataset(tmp_path, "train")
    assert ds[3][0].shape == (1, 28, 28) and ds[3][1] == 3
    # 5 test images hold labels 0-4 only: the test split still has the dataset's 10 classes
    assert MnistIdx(tmp_path, "test").classes == MnistIdx(tmp_path, "train").classes == tuple("0123456789")


@pytest.mark.parametrize("dtype,code", [(np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D), (np.float64, 0x0E)])
def test_read_idx_other_types_are_big_endian(tmp_path, dtype, code):
    array = (np.arange(24).reshape(2, 3, 4) * 1000 - 5000).astype(dtype)
    path = tmp_path / "x.idx"
    path.write_bytes(_idx_bytes(array, code))
    result = read_idx(path)
    assert result.shape == (2, 3, 4) and np.array_equal(result, array)


def test_read_idx_rejects_bad_files(tmp_path):
    bad_magic = tmp_path / "a"
    bad_magic.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad_magic)
    truncated = tmp_path / "b"
    truncated.write_bytes(_idx_bytes(np.zeros((3, 2), np.uint8), 0x08)[:-1])
    with pytest.raises(ValueError, match="data bytes"):
        read_idx(truncated)
    with pytest.raises(ValueError, match="t10k-images"):
        MnistIdx(tmp_path, "test")
    cut = tmp_path / "c.gz"  # an interrupted download
    cut.write_bytes(gzip.compress(_idx_bytes(np.zeros((3, 2), np.uint8), 0x08))[:-6])
    with pytest.raises(ValueError, match="c.gz' is a damaged gzip file"):
        read_idx(cut)
