"""Rebuild a trained generator from a checkpoint, for ``effgan.translate`` and ``effgan.sample``.

The checkpoint's own config says which networks to build; weights are loaded with
``weights_only=True``. The generator comes back in eval mode on the requested device.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from effgan.train import checkpoint as ckpt
from effgan.train import config as cfg
from effgan.train.distributed import check_cuda_device, parse_device
from effgan.train.family import DataInfo
from effgan.train.model_builders import ModelBuilder, registry_builder


@dataclass
class LoadedGenerator:
    module: nn.Module
    config: cfg.TrainConfig
    data: DataInfo
    checkpoint: str
    step: int


def pick_inference_device(requested: str) -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_cuda_device(parse_device(requested), requested)


def _inference_impl(trained_with: str, device: torch.device) -> str:
    """The run's --impl where it runs on ``device``, else "auto": a run trained with impl="triton"
    on a GPU translates on a CPU with the C++ kernels (same weights, the same op up to rounding)."""
    from effgan._backend import available_impls

    if trained_with in ("auto", "ref") or trained_with in available_impls(device, "instance_norm_act"):
        return trained_with
    return "auto"


def load_generator(run_or_file: str, role: str, *, which: str = ckpt.LATEST, device: torch.device | str = "cpu",
                   builder: ModelBuilder = registry_builder) -> LoadedGenerator:
    """role: "G_A" / "G_B" (cyclegan), "G" (dcgan/cgan; stylegan gives its EMA generator)."""
    path = ckpt.find(run_or_file, which)
    state = ckpt.load(path, map_location="cpu", require=ckpt.REQUIRED_KEYS + ("data",))
    config = cfg.resolve(cfg.from_dict(state["config"]))
    data = DataInfo(**state["data"])
    fused, impl = config.fused, _inference_impl(config.impl, torch.device(device))
    if config.model == "cyclegan":
        from effgan.train.cyclegan import build_generator

        if role not in ("G_A", "G_B"):
            raise ValueError(f"a cyclegan checkpoint has generators G_A and G_B, not {role!r}")
        module = build_generator(config, data, builder, fused, impl)
        weights = state["models"][role]
    elif config.model in ("dcgan", "cgan"):
        from effgan.train.model_builders import gan_model_names

        num_classes = data.num_classes if config.model == "cgan" else None
        g_name, _, g_kwargs, _ = gan_model_names(config, data, num_classes)
        module = builder(g_name, **g_kwargs)
        weights = state["models"]["G"]
    else:
        from effgan.train.stylegan import build_stylegan_pair

        module, _ = build_stylegan_pair(config, data, builder)
        weights = state["sample_models"].get("G_ema", state["models"]["G"])
    module.load_state_dict(weights)
    module = module.to(device).eval().requires_grad_(False)
    return LoadedGenerator(module=module, config=config, data=data, checkpoint=path, step=state["step"])
