"""Classifier score of a class-conditional generator.

A small CNN is trained on the real labelled data; a good conditional generator's
samples should be classified as the label they were asked for about as often as real
test images are. The score reports accuracy on class-balanced generated samples,
overall and per class, next to the accuracy on the real test set.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from effgan.metrics.training import accuracy, predict_logits, train_small_classifier

LabelledGenerator = Callable[[int, torch.Tensor], torch.Tensor]  # (n, labels (n,)) -> images (n, C, H, W)


def train_score_classifier(images: torch.Tensor, labels: torch.Tensor, *, num_classes: int | None = None,
                           steps: int = 400, seed: int = 0, width: int = 32,
                           device: torch.device | str = "cpu") -> nn.Module:
    """The classifier the score is measured with, trained on real labelled images."""
    labels = torch.as_tensor(labels).long()
    num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
    return train_small_classifier(images, labels, num_classes, steps=steps, seed=seed, width=width, device=device)


def balanced_counts(total: int, num_classes: int) -> list[int]:
    """`total` samples spread over the classes as evenly as they go (the first total % num_classes
    classes take one more), and at least one of each class, which per-class accuracies need."""
    return [max(1, total // num_classes + (k < total % num_classes)) for k in range(num_classes)]


@torch.no_grad()
def generate_balanced(generator: LabelledGenerator, num_classes: int, per_class: int | Sequence[int], *,
                      batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """per_class samples of each class (or per_class[k] of class k) from `generator`, as (images on
    CPU, labels)."""
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    counts = [per_class] * num_classes if isinstance(per_class, int) else list(per_class)
    if len(counts) != num_classes or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in counts):
        raise ValueError(f"per_class must be a positive int or {num_classes} positive ints, got {per_class!r}")
    labels = torch.arange(num_classes).repeat_interleave(torch.tensor(counts))
    images = []
    for start in range(0, labels.numel(), batch_size):
        chunk = labels[start : start + batch_size]
        out = generator(chunk.numel(), chunk)
        if not isinstance(out, torch.Tensor) or out.shape[0] != chunk.numel():
            raise ValueError(f"generator(n, labels) must return n={chunk.numel()} images, got "
                             f"{type(out).__name__} {tuple(getattr(out, 'shape', ()))}")
        images.append(out.detach().float().cpu())
    return torch.cat(images), labels


def classifier_score(generator: LabelledGenerator, classifier: nn.Module, *, num_classes: int, per_class: int,
                     real_test_images: torch.Tensor | None = None, real_test_labels: torch.Tensor | None = None,
                     device: torch.device | str = "cpu") -> dict[str, float]:
    """Accuracy of `classifier` on class-balanced generated samples, overall and per class.

    Keys: "classifier_acc/generated", "classifier_acc/generated_class_<k>", and
    "classifier_acc/real_test" when a real test set is given.
    """
    images, labels = generate_balanced(generator, num_classes, per_class)
    return score_generated(classifier, images, labels, num_classes=num_classes, real_test_images=real_test_images,
                           real_test_labels=real_test_labels, device=device)


def score_generated(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, num_classes: int,
                    real_test_images: torch.Tensor | None = None, real_test_labels: torch.Tensor | None = None,
                    device: torch.device | str = "cpu") -> dict[str, float]:
    """classifier_score's numbers for images already generated for `labels` (see generate_balanced)."""
    labels = torch.as_tensor(labels)
    if tuple(labels.shape) != (images.shape[0],):  # (N, 1) labels would broadcast against (N,)
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
    predictions = predict_logits(classifier, images, device=device).argmax(dim=1)
    correct = (predictions == labels).double()
    result = {"classifier_acc/generated": float(correct.mean())}
    for k in range(num_classes):
        result[f"classifier_acc/generated_class_{k}"] = float(correct[labels == k].mean())
    if real_test_images is not None:
        if real_test_labels is None:
            raise ValueError("real_test_labels is required with real_test_images")
        real_test_labels = torch.as_tensor(real_test_labels).long()
        if tuple(real_test_labels.shape) != (real_test_images.shape[0],):
            raise ValueError(f"real_test_labels must have shape ({real_test_images.shape[0]},), "
                             f"got {tuple(real_test_labels.shape)}")
        result["classifier_acc/real_test"] = accuracy(classifier, real_test_images, real_test_labels, device=device)
    return result
