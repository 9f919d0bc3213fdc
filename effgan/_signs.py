"""Two-bit signs of a difference x - y, kept by a forward for its backward.

The L1 gradient is sign(x - y) times a scale, so a backward that has the signs need not read x and
y again. Layout (every backend: csrc/signs.h, kernels/cyclegan_loss.py): values in storage order,
in groups of ``SIGN_GROUP`` = 8; group g owns bytes 2g and 2g + 1 of a flat uint8 tensor; bit l of
byte 2g is set where x - y > 0 for value 8g + l, bit l of byte 2g + 1 where x - y < 0.
"""
import torch

SIGN_GROUP = 8


def sign_bytes(numel: int) -> int:
    """Bytes of the signs of ``numel`` values."""
    return 2 * -(-numel // SIGN_GROUP)


def unpack_signs(signs: torch.Tensor, numel: int) -> torch.Tensor:
    """The signs as a (numel,) int8 tensor of -1, 0, +1 (for tests and debugging)."""
    bits = (signs.view(-1, 2, 1).to(torch.int16) >> torch.arange(SIGN_GROUP, device=signs.device)) & 1
    return (bits[:, 0] - bits[:, 1]).reshape(-1)[:numel].to(torch.int8)
