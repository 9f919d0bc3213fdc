"""--device: a CUDA index this machine does not have is refused up front, naming the option."""
from __future__ import annotations

import pytest
import torch

from effgan.train.distributed import DistInfo, pick_device
from effgan.train.inference import pick_inference_device


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.mark.parametrize("pick", [lambda d: pick_device(d, DistInfo(0, 1, 0)), pick_inference_device])
def test_a_cuda_index_beyond_the_count_is_refused(two_gpus, pick):
    with pytest.raises(ValueError, match=r"device='cuda:2' but this machine has 2 CUDA devices \(cuda:0 to cuda:1\)"):
        pick("cuda:2")
    assert pick("cuda:1") == torch.device("cuda", 1)


def test_without_cuda_a_cuda_device_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda:0", DistInfo(0, 1, 0))
