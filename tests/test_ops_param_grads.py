"""batch_sum: the (C,) gradient of a per-channel parameter from per-(sample, channel) sums."""
import torch

from effgan.ops._param_grads import batch_sum


def test_batch_sum():
    one = torch.randn(1, 5, dtype=torch.float64)
    g = batch_sum(one, torch.float64)
    assert g.shape == (5,) and torch.equal(g, one[0])
    assert g.data_ptr() == one.data_ptr()  # batch 1: a view, no reduction
    many = torch.randn(3, 5, dtype=torch.float64)
    torch.testing.assert_close(batch_sum(many, torch.float64), many.sum(0))
    half = batch_sum(many, torch.float16)
    assert half.dtype == torch.float16 and half.shape == (5,)
    torch.testing.assert_close(half, many.sum(0).half())
