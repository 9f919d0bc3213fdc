"""The options a resumed run must keep: those its checkpoint's state was counted or built with."""
from __future__ import annotations

from effgan.train import config as cfg

# Options a resumed run must keep, by what continues from the checkpoint: a new value would be
# silently ignored, or would be read against state counted in the old one.
RESUME_FIXED = {
    # restored with the optimizers' and schedulers' state
    "lr": "the optimizers", "beta1": "the optimizers", "beta2": "the optimizers",
    "lr_policy": "the lr schedule", "lr_step_epochs": "the lr schedule", "epochs": "the lr schedule",
    "epochs_decay": "the lr schedule",
    # the saved position in the epoch counts the run's batches; the seed draws the generated data
    # and each epoch's order
    "batch_size": "the position in the epoch", "train_length": "the position in the epoch",
    "seed": "the data and its order",
    # the image pool's saved fakes (and any size-dependent layer) have the run's size
    "image_size": "the image pool and models",
    # best.pt's record is compared by them
    "best_metric": "best.pt's record", "best_mode": "best.pt's record",
}


def check_resume_unchanged(saved: cfg.TrainConfig, config: cfg.TrainConfig) -> None:
    """Refuse a resume that changes an option in RESUME_FIXED (both configs family-resolved here)."""
    saved, new = cfg.resolve(saved), cfg.resolve(config)
    changed = [name for name in RESUME_FIXED if getattr(saved, name) != getattr(new, name)]
    if changed:
        what = ", ".join(dict.fromkeys(RESUME_FIXED[name] for name in changed))
        raise ValueError(
            f"{', '.join(f'{n} {getattr(saved, n)!r} -> {getattr(new, n)!r}' for n in changed)}: these cannot "
            f"change on resume, where {what} continue from the checkpoint. Resume with the run's own values "
            "(--max-steps may still stop it earlier or later within its schedule), or start a new run.")
