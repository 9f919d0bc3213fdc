"""How much work a generator experiment does: from a CPU smoke run to a real GPU run."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    name: str
    steps: int  # training steps per generator
    checkpoint_every: int  # StepMeter timing granularity (steps must be a multiple)
    image_size: int
    ngf: int  # ResNet generator base width (64 is the reference CycleGAN's); EfficientNet ones set their own
    train_length: int  # cans training scenes per domain
    eval_items: int  # cans test pairs scored
    feature_steps: int  # FeatureNet training steps (FID/KID extractor)
    feature_items: int  # training images the FeatureNet learns from
    kid_subsets: int

    def __post_init__(self) -> None:
        if self.steps < 2 or self.steps % self.checkpoint_every or self.steps // self.checkpoint_every < 2:
            raise ValueError(f"steps ({self.steps}) must be a multiple of checkpoint_every "
                             f"({self.checkpoint_every}) with at least two checkpoints, for timing")


PRESETS = {
    # Plumbing only: two steps per generator, numbers without meaning.
    "smoke": Budget("smoke", steps=2, checkpoint_every=1, image_size=64, ngf=16, train_length=8,
                    eval_items=8, feature_steps=3, feature_items=16, kid_subsets=5),
    "small": Budget("small", steps=200, checkpoint_every=50, image_size=64, ngf=64, train_length=250,
                    eval_items=64, feature_steps=200, feature_items=400, kid_subsets=50),
    # A real comparison on a GPU.
    "full": Budget("full", steps=20000, checkpoint_every=2000, image_size=128, ngf=64, train_length=2000,
                   eval_items=200, feature_steps=2000, feature_items=2000, kid_subsets=100),
}


# How many checkpoints a budget given as a number of steps takes, in order of preference.
INTERVAL_COUNTS = (4, 2, 3, 5, 6, 8, 7)


def parse_budget(text: str) -> Budget:
    """A preset name (smoke, small, full) or a number of steps (with the small preset's other settings)."""
    if text in PRESETS:
        return PRESETS[text]
    try:
        steps = int(text)
    except ValueError:
        raise ValueError(f"budget must be one of {sorted(PRESETS)} or a number of steps, got {text!r}") from None
    if steps < 2:
        raise ValueError(f"budget steps must be >= 2, got {steps}")
    # A few checkpoints (the StepMeter's timing intervals, equal in length), never one a step: every
    # checkpoint write falls inside the timed interval.
    intervals = next((n for n in INTERVAL_COUNTS if steps % n == 0), None)
    if intervals is None:
        raise ValueError(f"budget steps {steps} cannot be cut into {min(INTERVAL_COUNTS)}-{max(INTERVAL_COUNTS)} "
                         f"timed intervals of equal length; use a multiple of 2, 3, 5 or 7 (e.g. {steps + 1})")
    return dataclasses.replace(PRESETS["small"], name=f"{steps}-steps", steps=steps,
                               checkpoint_every=steps // intervals)
