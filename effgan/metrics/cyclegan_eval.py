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
# The keys of each domain's entries (a ground truth belongs to the image it translates), and the
# key of the index that names the domain's image, where items carry one.
DOMAIN_KEYS = {"A": ("A", "A_true_B"), "B": ("B", "B_true_A")}
INDEX_KEYS = {"A": "A_index", "B": "B_index"}
ITEM_KEYS = ("A", "B", *GROUND_TRUTH_KEYS)


def collect_domain_items(loader_or_dataset, *, max_items: int | None) -> dict[str, torch.Tensor]:
    """Stack the "A", "B" (and ground-truth) entries of dict items or batches, up to max_items
    distinct images per domain.

    Items that carry "A_index" / "B_index" (the unpaired datasets) count each domain's images
    once: an unpaired dataset has max(len A, len B) items and repeats the smaller domain's images,
    which would weight those images twice in the cycle errors and make FID/KID compare a sample
    with duplicates. The two domains can then hold different numbers of images; a ground truth
    ("A_true_B", "B_true_A") has as many rows as the domain it translates.
    """
    if max_items is not None and (not isinstance(max_items, int) or max_items < 1):
        raise ValueError(f"max_items must be a positive int or None, got {max_items!r}")
    parts: dict[str, list[torch.Tensor]] = {key: [] for key in ITEM_KEYS}
    counts = {domain: 0 for domain in DOMAIN_KEYS}
    seen: dict[str, set[int]] = {domain: set() for domain in DOMAIN_KEYS}

    def full() -> bool:
        return max_items is not None and all(n >= max_items for n in counts.values())

    def add(item: Mapping, batched: bool) -> None:
        if not isinstance(item, Mapping) or "A" not in item or "B" not in item:
            raise TypeError("loader_or_dataset must yield dicts with 'A' and 'B' images")
        for domain, keys in DOMAIN_KEYS.items():
            images = {key: torch.as_tensor(item[key]) for key in keys if key in item}
            if not batched:
                images = {key: t.unsqueeze(0) for key, t in images.items()}
            rows = images[domain].shape[0]
            index_key = INDEX_KEYS[domain]
            indices = torch.as_tensor(item[index_key]).reshape(-1).tolist() if index_key in item else [None] * rows
            if len(indices) != rows:
                raise ValueError(f"{index_key!r} has {len(indices)} entries for {rows} {domain!r} images")
            take = []
            for row, index in enumerate(indices):
                if max_items is not None and counts[domain] + len(take) >= max_items:
                    break
                if index is not None:
                    if index in seen[domain]:
                        continue
                    seen[domain].add(index)
                take.append(row)
            if take:
                for key, t in images.items():
                    parts[key].append(t[take].float().cpu())
                counts[domain] += len(take)

    if hasattr(loader_or_dataset, "__getitem__") and hasattr(loader_or_dataset, "__len__"):
        for i in range(len(loader_or_dataset)):
            if full():
                break
            add(loader_or_dataset[i], batched=False)
    elif isinstance(loader_or_dataset, Iterable):
        for batch in loader_or_dataset:
            if full():
                break
            add(batch, batched=True)
    else:
        raise TypeError(f"loader_or_dataset of type {type(loader_or_dataset).__name__} "
                        "is neither a dataset nor iterable")
    if counts["A"] == 0:
        raise ValueError("loader_or_dataset holds no items")
    collected = {key: torch.cat(chunks) for key, chunks in parts.items() if chunks}
    for domain, keys in DOMAIN_KEYS.items():
        for key in keys:
            if key in collected and collected[key].shape[0] != counts[domain]:
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
    {fid,kid_mean,kid_std}_{ab,ba}/<extractor name>. Images are in [-1, 1] (PSNR with data range
    2, SSIM on the images shifted to [0, 2]). Each domain's images are counted once, see
    collect_domain_items.
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
