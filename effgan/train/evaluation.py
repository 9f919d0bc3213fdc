"""Evaluation during training (``--eval-every N``): effgan.metrics' hooks, built from the config.

cyclegan: :class:`CycleGANEvalHook` on the dataset's test split: cycle and identity MAE, FID/KID
per direction and, on the embedded cans (whose test items carry the true translations), paired
MAE/PSNR/SSIM; a CycleGAN folder uses testA/testB. dcgan, cgan, stylegan:
:class:`LatentGeneratorEvalHook` against the test split (FID/KID), plus the classifier score for
cgan. The metric networks (a FeatureNet trained on the training images unless ``--fid-weights``
names a local InceptionV3; the cgan classifier) are trained once and cached in
``<run>/feature_nets``, the folder ``python -m effgan.evaluate`` uses too, so a resumed run, and
a later evaluation of the run's checkpoints, reuse them.
"""
from __future__ import annotations

import os
import re
import warnings

import torch

from effgan.train.config import TrainConfig
from effgan.train.family import DataInfo

# Fixed, as effgan.evaluate's default: the metric networks, evaluation latents and KID subsets then
# depend on the data alone, so runs that differ only in their training seed get comparable numbers.
EVAL_SEED = 0

CYCLE_METRICS = ("cycle_mae_a", "cycle_mae_b", "identity_mae_a", "identity_mae_b")
PAIRED_METRICS = tuple(f"paired_{m}_{d}" for m in ("mae", "psnr", "ssim") for d in ("ab", "ba"))
DISTRIBUTION_METRICS = ("fid", "kid_mean", "kid_std")  # reported as "<name>/<extractor>"
CYCLEGAN_DISTRIBUTION_METRICS = tuple(f"{m}_{d}" for m in DISTRIBUTION_METRICS for d in ("ab", "ba"))
CLASSIFIER_METRICS = ("classifier_acc/generated", "classifier_acc/real_test")
_CLASSIFIER_PER_CLASS = re.compile(r"classifier_acc/generated_class_\d+")


def metric_base(name: str) -> str:
    """A metric key without its extractor tag ("fid_ab/featnet-..." -> "fid_ab"); classifier_acc/* stay whole."""
    if name.startswith("classifier_acc/"):
        return name
    return name.split("/", 1)[0]


def eval_metric_names(config: TrainConfig) -> tuple[str, ...]:
    """The metrics (by base name) the evaluation of this run reports."""
    if config.model == "cyclegan":
        paired = PAIRED_METRICS if config.dataset == "cans" else ()  # only cans has ground truth
        return CYCLE_METRICS + paired + CYCLEGAN_DISTRIBUTION_METRICS
    if config.model == "cgan":
        return DISTRIBUTION_METRICS + CLASSIFIER_METRICS + ("classifier_acc/generated_class_<k>",)
    return DISTRIBUTION_METRICS


def is_eval_metric(name: str) -> bool:
    """Whether `name` is something only an evaluation reports (as opposed to a training loss)."""
    base = metric_base(name)
    known = CYCLE_METRICS + PAIRED_METRICS + DISTRIBUTION_METRICS + CYCLEGAN_DISTRIBUTION_METRICS + CLASSIFIER_METRICS
    return base in known or bool(_CLASSIFIER_PER_CLASS.fullmatch(base))


def _reports(config: TrainConfig, name: str) -> bool:
    base = metric_base(name)
    if config.model == "cgan" and _CLASSIFIER_PER_CLASS.fullmatch(base):
        return True
    return base in eval_metric_names(config)


def check_eval_options(config: TrainConfig, has_metrics_fn: bool) -> None:
    """Fail at startup, not hours later, when best.pt could never be chosen as asked."""
    if config.fid_weights is not None:
        if not config.eval_every:
            warnings.warn("fid_weights is only used for evaluation during training; it has no effect "
                          "without --eval-every", stacklevel=3)
        elif not os.path.isfile(config.fid_weights):
            raise ValueError(f"fid_weights {config.fid_weights!r} is not a file (a local FID InceptionV3 "
                             f"state_dict; effgan never downloads weights)")
    name = config.best_metric
    if not is_eval_metric(name):
        return  # a training loss, or a name a Python metrics_fn reports
    if not config.eval_every:
        if has_metrics_fn:
            return  # train(config, metrics_fn=...) may report it
        raise ValueError(f"best_metric {name!r} is an evaluation metric, but evaluation is off (eval_every=0), "
                         f"so best.pt would never be written; add --eval-every N or choose a training loss "
                         f"such as loss_G")
    if not has_metrics_fn and not _reports(config, name):
        raise ValueError(f"best_metric {name!r} is not reported by the evaluation of a {config.model} run on "
                         f"{config.dataset!r}; it reports {list(eval_metric_names(config))}")
    _warn_if_best_mode_looks_inverted(config)


def _warn_if_best_mode_looks_inverted(config: TrainConfig) -> None:
    from effgan.metrics.features import lower_is_better

    better = "min" if lower_is_better(metric_base(config.best_metric)) else "max"
    if config.best_mode != better:
        warnings.warn(f"best_mode={config.best_mode!r} keeps the checkpoint with the "
                      f"{'smallest' if config.best_mode == 'min' else 'largest'} {config.best_metric}, but "
                      f"{'smaller' if better == 'min' else 'larger'} is better for it; pass --best-mode {better} "
                      f"unless that is what you want", stacklevel=3)


def _held_out_set(config: TrainConfig):
    from effgan.data import MissingSplitError
    from effgan.evaluate.checkpoint_eval import held_out_dataset

    try:
        return held_out_dataset(config, config.eval_items)
    except MissingSplitError as error:  # a CycleGAN run's
        raise ValueError(f"eval_every: the evaluation needs the dataset's test split: {error}") from None


def build_eval_hook(config: TrainConfig, data: DataInfo, run_dir: str, device: torch.device):
    """The metrics hook (family -> {name: value}) for this run; trains or loads its metric networks."""
    from effgan.evaluate.checkpoint_eval import METRICS_CACHE_DIR, eval_dataset, metric_networks, reference_images
    from effgan.metrics import CycleGANEvalHook, LatentGeneratorEvalHook

    test = _held_out_set(config)
    train = eval_dataset(config, "train", config.eval_train_items)
    real_images, real_labels = reference_images(config, train, config.eval_train_items)
    extractor, classifier = metric_networks(
        config, real_images, real_labels, fid_weights=config.fid_weights,
        cache_dir=os.path.join(run_dir, METRICS_CACHE_DIR), feature_steps=config.eval_train_steps,
        classifier_steps=config.eval_train_steps, seed=EVAL_SEED, device=device, num_classes=data.num_classes)
    if config.model == "cyclegan":
        return CycleGANEvalHook(test, max_items=config.eval_items, extractor=extractor, seed=EVAL_SEED)
    return LatentGeneratorEvalHook(test, max_items=config.eval_items, extractor=extractor, classifier=classifier,
                                   seed=EVAL_SEED)


def summary(metrics: dict[str, float]) -> str:
    """One line of the evaluation's headline numbers (per-class accuracies left to the logs)."""
    shown = {k: v for k, v in sorted(metrics.items()) if not _CLASSIFIER_PER_CLASS.fullmatch(k)}
    return ", ".join(f"{metric_base(k)} {v:.4g}" for k, v in shown.items())
