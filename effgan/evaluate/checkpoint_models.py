"""Rebuild a training run's generators from its checkpoint, ready for evaluation.

The networks are rebuilt the way effgan.train builds them, but from plain torch
modules (fused=False): the two builds share state_dicts, and evaluation then works
on any machine whatever kernels it has. EMA weights ("sample_models", stylegan's G_ema)
are preferred over the raw training weights when the checkpoint holds them.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn

from effgan.train import checkpoint as ckpt
from effgan.train import config as cfg


@dataclass
class LoadedRun:
    """What a checkpoint says about a run, and its generators in eval mode."""

    checkpoint_path: str
    run_dir: str
    config: cfg.TrainConfig
    step: int
    generators: dict[str, nn.Module]
    num_classes: int | None = None


def _state_dicts(state: dict[str, Any]) -> dict[str, dict]:
    weights = dict(state["models"])
    weights.update(state.get("sample_models") or {})  # EMA copies replace raw weights where kept
    if "G_ema" in weights:  # stylegan keeps its EMA generator under its own name; it makes the samples
        weights["G"] = weights["G_ema"]
    return weights


def read_checkpoint(run_or_file: str | os.PathLike, which: str = ckpt.LATEST) -> tuple[str, dict[str, Any]]:
    """(path, checkpoint dict) of a run directory's `which` checkpoint, or of a checkpoint file."""
    path = ckpt.find(run_or_file, which)
    return path, ckpt.load(path, map_location="cpu")


def run_config(state: dict[str, Any]) -> cfg.TrainConfig:
    """The run's resolved training config, switched to the plain-torch build."""
    return dataclasses.replace(cfg.resolve(cfg.from_dict(state["config"])), fused=False)


def load_run(run_or_file: str | os.PathLike, *, which: str = ckpt.LATEST, data_info,
             device: torch.device | str = "cpu", checkpoint: tuple[str, dict[str, Any]] | None = None) -> LoadedRun:
    """Load the generators of a cyclegan, dcgan, cgan or stylegan run.

    data_info: the run's effgan.train.family.DataInfo (channels, image size, classes),
    taken from the dataset it is evaluated on. checkpoint: a (path, dict) already read
    by read_checkpoint, so a large file is not read twice.
    """
    path, state = checkpoint if checkpoint is not None else read_checkpoint(run_or_file, which)
    config = run_config(state)
    weights = _state_dicts(state)
    from effgan.train.model_builders import registry_builder

    if config.model == "cyclegan":
        from effgan.train.cyclegan import build_generator

        generators = {name: build_generator(config, data_info, registry_builder, False, "ref")
                      for name in ("G_A", "G_B")}
    elif config.model in ("dcgan", "cgan"):
        from effgan.train.model_builders import gan_model_names

        num_classes = data_info.num_classes if config.model == "cgan" else None
        g_name, _, g_kwargs, _ = gan_model_names(config, data_info, num_classes)
        generators = {"G": registry_builder(g_name, **g_kwargs)}
    elif config.model == "stylegan":
        from effgan.train.stylegan import build_stylegan_pair

        generators = {"G": build_stylegan_pair(config, data_info, registry_builder)[0]}
    else:
        raise ValueError(f"evaluating {config.model!r} runs is not supported (cyclegan, dcgan, cgan, stylegan are)")
    for name, module in generators.items():
        if name not in weights:
            raise ValueError(f"checkpoint {path!r} has no weights for {name}: {sorted(weights)}")
        module.load_state_dict(weights[name])
        module.to(device).eval()
    return LoadedRun(checkpoint_path=path, run_dir=ckpt.run_dir_of(path), config=config, step=int(state["step"]),
                     generators=generators, num_classes=data_info.num_classes if config.model == "cgan" else None)
