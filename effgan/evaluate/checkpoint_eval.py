"""Evaluate a training run's checkpoint on its dataset's test split.

CycleGAN runs get cycle/identity/paired errors and FID/KID per direction; dcgan and
stylegan runs FID/KID (and C2ST if asked); cgan runs add the classifier score. FID/KID use the FID
InceptionV3 when a local weights file is given, else a FeatureNet trained on the
run's training data and cached in <run>/feature_nets/.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from effgan.evaluate.checkpoint_models import load_run, read_checkpoint, run_config
from effgan.metrics import (build_extractor, collect_images, evaluate_cyclegan, evaluate_generator,
                            evaluate_labelled_generator)
from effgan.metrics.cyclegan_eval import collect_domain_items
from effgan.metrics.extractors import build_score_classifier
from effgan.metrics.kid import KID_SUBSET_SIZE, KID_SUBSETS
from effgan.metrics.samplers import latent_sampler
from effgan.train import checkpoint as ckpt
from effgan.train import config as cfg

METRICS_CACHE_DIR = "feature_nets"  # inside the run directory


# Options left None take the run's config field named here.
RUN_DEFAULTS = {"max_items": "eval_items", "feature_train_items": "eval_train_items",
                "feature_steps": "eval_train_steps", "classifier_steps": "eval_train_steps"}


@dataclass(frozen=True)
class EvaluationOptions:
    data: str | None = None  # dataset name or folder; default: the run's own dataset
    which: str = ckpt.LATEST  # checkpoint file in the run directory (latest.pt or best.pt)
    # Sizes of the evaluation; None takes the run's own setting (eval_items, eval_train_items,
    # eval_train_steps), so that a checkpoint gets the numbers --eval-every logged for it.
    max_items: int | None = None  # test items evaluated
    feature_train_items: int | None = None  # training images the FeatureNet (and classifier) learn from
    fid_weights: str | None = None  # local FID InceptionV3 weights; None: train a FeatureNet
    feature_steps: int | None = None
    classifier_steps: int | None = None
    c2st_steps: int = 0  # 0 disables the C2ST (it trains a network per evaluation)
    kid_subsets: int = KID_SUBSETS  # the training evaluation's too: the same numbers for a checkpoint
    kid_subset_size: int = KID_SUBSET_SIZE
    seed: int = 0
    device: str = "cpu"  # also auto, cuda or cuda:N

    def __post_init__(self) -> None:
        for name in ("max_items", "feature_train_items", "feature_steps", "classifier_steps", "kid_subsets",
                     "kid_subset_size"):
            value = getattr(self, name)
            if value is None and name in RUN_DEFAULTS:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        # FID/KID need two rows per set, KID subsets two items, the feature net's batches two images
        for name in ("max_items", "feature_train_items", "kid_subset_size"):
            if getattr(self, name) is not None and getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be an int >= 0 and < 2**32, got {self.seed!r}")
        if self.c2st_steps < 0:
            raise ValueError(f"c2st_steps must be >= 0, got {self.c2st_steps}")
        from effgan.train.inference import pick_inference_device

        pick_inference_device(self.device)  # before any data is built or network trained

    def for_run(self, config: cfg.TrainConfig) -> EvaluationOptions:
        """These options with every size left None taken from the run's config."""
        return replace(self, **{name: getattr(config, field) for name, field in RUN_DEFAULTS.items()
                                if getattr(self, name) is None})


# The pieces below are shared with evaluation during training (effgan/train/evaluation.py), so a
# run's --eval-every numbers and `python -m effgan.evaluate` on its checkpoints are computed alike
# (with the same settings they even share the cached FeatureNet, hence its extractor tag).

def eval_dataset(config: cfg.TrainConfig, split: str, items: int, name: str | None = None):
    """The un-augmented `split` of the run's dataset (or `name`), `items` long when generated, and at
    most `items` items spread evenly over a larger labelled folder dataset (see EvenlySpaced).

    A CycleGAN folder is left whole: its items pair the two domains, max(len A, len B) of them with
    the smaller domain repeated, so every k-th item could hold only a few of that domain's images;
    collect_domain_items takes up to `items` distinct images of each domain from it instead."""
    from effgan.data import build_dataset, is_embedded

    name = name or config.dataset
    length = items if is_embedded(name) else None
    # the test split's own kind: cans test items carry the ground-truth translations
    kind = "auto" if split == "test" else "unpaired" if config.model == "cyclegan" else "labelled"
    dataset = build_dataset(name, split, kind=kind, length=length, image_size=config.image_size, seed=config.seed,
                            augment=False)
    if config.model == "cyclegan" or len(dataset) <= items:
        return dataset
    return EvenlySpaced(dataset, items)


def held_out_dataset(config: cfg.TrainConfig, items: int, name: str | None = None):
    """The test split the metrics compare against. A dataset without one (a plain image folder)
    gives its training images instead, with a warning; a CycleGAN run needs its test domains."""
    from effgan.data import MissingSplitError

    try:
        return eval_dataset(config, "test", items, name)
    except MissingSplitError as error:
        if config.model == "cyclegan":
            raise
        warnings.warn(f"evaluation: {error}; FID/KID compare with the training images instead", stacklevel=2)
        return eval_dataset(config, "train", items, name)


class EvenlySpaced(torch.utils.data.Dataset):
    """`count` items of `dataset` at evenly spaced indices, its other attributes (classes) passed on.

    The metrics read their items in order; a folder dataset lists its class folders one after the
    other, so its first `count` items could all be one class (a FeatureNet, classifier or FID set
    of one class). Even spacing keeps every class in proportion, and is the same on every run.
    """

    def __init__(self, dataset, count: int) -> None:
        self.dataset, self.indices = dataset, [i * len(dataset) // count for i in range(count)]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.dataset[self.indices[index]]

    def __getattr__(self, name: str):
        if name in ("dataset", "indices"):  # not set yet (unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


def reference_images(config: cfg.TrainConfig, train, max_items: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The real training images (and labels, none for cyclegan) the metric networks learn from."""
    if config.model == "cyclegan":
        items = collect_domain_items(train, max_items=max_items)
        return torch.cat([items["A"], items["B"]]), None
    return collect_images(train, max_items=max_items, with_labels=True)


def metric_networks(config: cfg.TrainConfig, real_images: torch.Tensor, real_labels: torch.Tensor | None, *,
                    fid_weights: str | None, cache_dir: str, feature_steps: int, classifier_steps: int, seed: int,
                    device, num_classes: int | None):
    """(FID/KID extractor, classifier for the score or None): cached in cache_dir where effgan trains them."""
    extractor = build_extractor(fid_weights=fid_weights, real_images=real_images, real_labels=real_labels,
                                num_classes=num_classes, cache_dir=cache_dir, steps=feature_steps, seed=seed,
                                device=device)
    classifier = None
    if config.model == "cgan":
        classifier = build_score_classifier(real_images, real_labels, extractor=extractor, num_classes=num_classes,
                                            cache_dir=cache_dir, steps=classifier_steps, seed=seed, device=device)
    return extractor, classifier


def _datasets(config: cfg.TrainConfig, options: EvaluationOptions):
    try:
        test = held_out_dataset(config, options.max_items, options.data)
        train = eval_dataset(config, "train", options.feature_train_items, options.data)
    except ValueError as error:
        if options.data is None:
            raise
        raise ValueError(f"--data {options.data!r} cannot be built for this {config.model} run "
                         f"({config.image_size}x{config.image_size}): {error}") from None
    return test, train


def _check_data_fits_the_run(state: dict[str, Any], data_info, options: EvaluationOptions) -> None:
    """The evaluation data must have the images (and, for cgan, the classes) the run trained on, as
    the checkpoint records them; otherwise its generators would not even load."""
    saved = state.get("data")
    if not saved:
        return  # an older checkpoint without the record: loading the weights is the check
    conditional = (state.get("config") or {}).get("model") == "cgan"  # cgan runs are of the dcgan family
    keys = ("channels", "image_size") + (("num_classes",) if conditional else ())
    differ = [k for k in keys if saved.get(k) != getattr(data_info, k)]
    if differ:
        where = f"--data {options.data!r}" if options.data else "the run's own dataset"
        listed = ", ".join(f"{k} {getattr(data_info, k)} (the run trained with {saved.get(k)})" for k in differ)
        raise ValueError(f"{where} does not fit the checkpoint: {listed}")


def evaluate_checkpoint(run_or_file: str | os.PathLike,
                        options: EvaluationOptions = EvaluationOptions()) -> dict[str, Any]:
    """{"checkpoint", "run_dir", "model", "step", "extractor", "options", "metrics": {name: float}}."""
    from effgan.train.inference import pick_inference_device
    from effgan.train.trainer import data_info

    device = pick_inference_device(options.device)
    checkpoint = read_checkpoint(run_or_file, options.which)
    config = run_config(checkpoint[1])
    options = options.for_run(config)
    test, train = _datasets(config, options)
    _check_data_fits_the_run(checkpoint[1], data_info(test, config.model), options)
    run = load_run(run_or_file, data_info=data_info(test, config.model), device=device, checkpoint=checkpoint)
    cache_dir = os.path.join(run.run_dir, METRICS_CACHE_DIR)
    kid_args = dict(kid_subsets=options.kid_subsets, kid_subset_size=options.kid_subset_size, seed=options.seed)

    real_images, real_labels = reference_images(config, train, options.feature_train_items)
    # Sized by the data's classes, as during training (build_eval_hook), also for an unconditional
    # run on labelled data: the same FeatureNet then comes from the run's cache.
    extractor, classifier = metric_networks(
        config, real_images, real_labels, fid_weights=options.fid_weights, cache_dir=cache_dir,
        feature_steps=options.feature_steps, classifier_steps=options.classifier_steps, seed=options.seed,
        device=device, num_classes=data_info(train, config.model).num_classes)

    if config.model == "cyclegan":
        metrics = evaluate_cyclegan(run.generators["G_A"], run.generators["G_B"], test, device=device,
                                    max_items=options.max_items, extractor=extractor, **kid_args)
    else:
        conditional = config.model == "cgan"
        sampler = latent_sampler(run.generators["G"], config.latent_dim, device=device, seed=options.seed,
                                 conditional=conditional)
        # (the sampler seeds what the generator draws from the global RNG, stylegan's layer noise)
        if conditional:
            metrics = evaluate_labelled_generator(sampler, test, device=device, max_items=options.max_items,
                                                  extractor=extractor, classifier=classifier,
                                                  num_classes=run.num_classes, c2st_steps=options.c2st_steps,
                                                  **kid_args)
        else:
            metrics = evaluate_generator(sampler, test, device=device, max_items=options.max_items,
                                         extractor=extractor, c2st_steps=options.c2st_steps, **kid_args)
    return {"checkpoint": run.checkpoint_path, "run_dir": run.run_dir, "model": config.model, "step": run.step,
            "extractor": extractor.name, "options": asdict(options), "metrics": metrics}
