"""Evaluation of a CycleGAN generator pair: cycle and identity errors, paired errors, FID/KID.

Cycle MAE: |G_BA(G_AB(a)) - a| and |G_AB(G_BA(b)) - b|. Identity MAE: |G_AB(b) - b| and
|G_BA(a) - a| (a generator should leave images of its target domain alone). When
the data carries ground-truth translations (the cans test split: "A_true_B",
"B_true_A"), the translations are scored against them with MAE, PSNR and SSIM.
With an extractor, FID/KID compare G_AB's outputs with real B and G_BA's with real A.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn as nn

from effgan.metrics.features import distribution_metrics, extract_features
from effgan.metrics.image_quality import mae, psnr, ssim
from effgan.models.modes import evaluating

GROUND_TRUTH_KEYS = {"A_true_B": "ab", "B_true_A": "ba"}  # item key -> direction it checks
ITEM_KEYS = ("A", "B", *GROUND_TRUTH_KEYS)


def collect_domain_items(loader_or_dataset, *, max_items: int | None) -> dict[str, torch.Tensor]:
    """Stack the "A", "B" (and ground-truth) entries of dict items or batches, up to max_items each."""
    if max_items is not None and (not isinstance(max_items, int) or max_items < 1):
        raise ValueError(f"max_items must be a positive int or None, got {max_items!r}")
    parts: dict[str, list[torch.Tensor]] = {key: [] for key in ITEM_KEYS}
    count = 0

    def add(item: Mapping, batched: bool) -> None:
        nonlocal count
        if not isinstance(item, Mapping) or "A" not in item or "B" not in item:
            raise TypeError("loader_or_dataset must yield dicts with 'A' and 'B' images")
        take = None
        for key in ITEM_KEYS:
            if key not in item:
                continue
            images = torch.as_tensor(item[key])
            images = images if batched else images.unsqueeze(0)
            take = images.shape[0] if max_items is None else min(images.shape[0], max_items - count)
            parts[key].append(images[:take].float().cpu())
        count += take

    if hasattr(loader_or_dataset, "__getitem__") and hasattr(loader_or_dataset, "__len__"):
        n = len(loader_or_dataset) if max_items is None else min(len(loader_or_dataset), max_items)
        for i in range(n):
            add(loader_or_dataset[i], batched=False)
    elif isinstance(loader_or_dataset, Iterable):
        for batch in loader_or_dataset:
            if max_items is not None and count >= max_items:
                break
            add(batch, batched=True)
    else:
        raise TypeError(f"loader_or_dataset of type {type(loader_or_dataset).__name__} "
                        "is neither a dataset nor iterable")
    if count == 0:
        raise ValueError("loader_or_dataset holds no items")
    collected = {key: torch.cat(chunks) for key, chunks in parts.items() if chunks}
    for key, images in collected.items():
        if images.shape[0] != count:
            raise ValueError(f"only some items carry {key!r}")
    return collected


def translate(generator: nn.Module, images: torch.Tensor, *, device: torch.device | str,
              batch_size: int) -> torch.Tensor:
    """generator(images) in batches on `device`, returned as float32 on the CPU."""
    outputs = [generator(images[i : i + batch_size].to(device)).float().cpu()
               for i in range(0, images.shape[0], batch_size)]
    return torch.cat(outputs)


def evaluate_cyclegan(g_ab: nn.Module, g_ba: nn.Module, loader_or_dataset, *, device: torch.device | str = "cpu",
                      max_items: int | None = 200, extractor: nn.Module | None = None, batch_size: int = 16,
                      kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """Metrics of the pair (G_AB: A -> B, G_BA: B -> A) on up to max_items items, as plain floats.

    Keys: cycle_mae_a, cycle_mae_b, identity_mae_a (|G_BA(a) - a|), identity_mae_b;
    with ground truth: paired_{mae,psnr,ssim}_{ab,ba}; with an extractor:
    {fid,kid_mean,kid_std}_{ab,ba}/<extractor name>. Images are in [-1, 1]; PSNR and SSIM
    use data range 2.
    """
    items = collect_domain_items(loader_or_dataset, max_items=max_items)
    real_a, real_b = items["A"], items["B"]
    run = dict(device=device, batch_size=batch_size)
    with evaluating(g_ab, g_ba):
        fake_b = translate(g_ab, real_a, **run)
        fake_a = translate(g_ba, real_b, **run)
        results = {
            "cycle_mae_a": mae(translate(g_ba, fake_b, **run), real_a),
            "cycle_mae_b": mae(translate(g_ab, fake_a, **run), real_b),
            "identity_mae_a": mae(translate(g_ba, real_a, **run), real_a),
            "identity_mae_b": mae(translate(g_ab, real_b, **run), real_b),
        }
    translations = {"ab": fake_b, "ba": fake_a}
    for key, direction in GROUND_TRUTH_KEYS.items():
        if key in items:
            prediction, truth = translations[direction], items[key]
            results[f"paired_mae_{direction}"] = mae(prediction, truth)
            results[f"paired_psnr_{direction}"] = psnr(prediction, truth)
            results[f"paired_ssim_{direction}"] = ssim(prediction, truth)
    if extractor is not None:
        kid_args = dict(kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)
        with evaluating(extractor):
            feats = {name: extract_features(extractor, images, device=device)
                     for name, images in (("A", real_a), ("B", real_b), ("fake_A", fake_a), ("fake_B", fake_b))}
        results.update(distribution_metrics(feats["B"], feats["fake_B"], suffix="_ab", **kid_args))
        results.update(distribution_metrics(feats["A"], feats["fake_A"], suffix="_ba", **kid_args))
    return results
