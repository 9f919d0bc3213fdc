"""Class conditioning as in the conditional GAN (CGAN): labels enter G with the noise, D as a channel."""
from __future__ import annotations

import torch
from torch import nn

from .norm_act import check_positive_int


def check_labels(labels: torch.Tensor | None, num_classes: int | None, batch: int):
    """Labels must be given exactly when the model is conditional, as (N,) class indices."""
    if num_classes is None:
        if labels is not None:
            raise ValueError("labels given to an unconditional model; build it with num_classes=")
        return
    if labels is None:
        raise ValueError(f"labels are required: the model is conditional on {num_classes} classes")
    if not isinstance(labels, torch.Tensor) or labels.dtype not in (torch.int64, torch.int32):
        raise TypeError("labels must be an int64 or int32 tensor of class indices")
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
    # On the CPU an index out of range would surface as the embedding's IndexError. On a GPU the
    # same check would wait for the device at every forward (and cannot run inside a CUDA graph's
    # capture), so there the embedding's own device-side check is what catches it.
    if labels.device.type == "cpu" and labels.numel():
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_classes:
            raise ValueError(f"labels must be class indices in [0, {num_classes}), got values from {low} to {high}")


def check_conditioning(num_classes: int | None, label_dim: int | None) -> None:
    """A conditional model's num_classes, and the label embedding width, which needs num_classes."""
    if num_classes is not None:
        check_positive_int(num_classes, "num_classes")
    if label_dim is not None:
        check_positive_int(label_dim, "label_dim")
        if num_classes is None:
            raise ValueError("label_dim needs num_classes")


class NoiseLabelConcat(nn.Module):
    """[z, embedding(label)]: the generator sees the class as extra latent dimensions."""

    def __init__(self, num_classes: int, embed_dim: int):
        super().__init__()
        check_positive_int(num_classes, "num_classes")
        check_positive_int(embed_dim, "label_dim")
        self.embed = nn.Embedding(num_classes, embed_dim)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, self.embed(labels).to(z.dtype)], dim=1)


class LabelChannel(nn.Module):
    """[x, embedding(label) as an H x W map]: the discriminator sees the class as one more channel."""

    def __init__(self, num_classes: int, image_size: int):
        super().__init__()
        check_positive_int(num_classes, "num_classes")
        self.image_size = image_size
        self.embed = nn.Embedding(num_classes, image_size * image_size)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        plane = self.embed(labels).to(x.dtype).view(-1, 1, self.image_size, self.image_size)
        return torch.cat([x, plane], dim=1)
