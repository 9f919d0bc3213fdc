"""DCGAN and conditional GAN (cgan) training: BCE on logits with the usual stabilisers.

- one-sided label smoothing: real targets ``label_smoothing`` (0.9), fake targets 0;
- optional noisy soft labels: real ~ U(s - w, s), fake ~ U(0, w) with ``noisy_labels`` = w;
- a G:D update ratio (``g_steps`` generator and ``d_steps`` discriminator updates per step).

cgan is the same loop with class labels: real images bring their own, fakes get uniformly drawn
labels, and both networks take ``labels=``. With ``--diffaugment`` D sees only augmented images
(real and fake, in both updates); the labels are left alone.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from effgan.train.augment import make_d_augment
from effgan.train.config import TrainConfig
from effgan.train.cuda_graphs import GraphedPhase
from effgan.train.distributed import wrap_ddp
from effgan.train.family import DataInfo, Family, Runtime, make_adam, set_requires_grad
from effgan.train.model_builders import ModelBuilder, gan_model_names, initialise, registry_builder


def call_with_labels(module: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    return module(x) if labels is None else module(x, labels)


class RealFakeDiscriminator(nn.Module):
    """D on a real and a fake batch in one forward (separate calls, so BatchNorm sees each alone)."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, real, fake, real_labels=None, fake_labels=None):
        return (call_with_labels(self.discriminator, real, real_labels),
                call_with_labels(self.discriminator, fake, fake_labels))


def adversarial_runners(generator: nn.Module, discriminator: nn.Module, runtime: Runtime) -> tuple:
    """(scaler_g, scaler_d, g_run, d_run, d_frozen): the gradient scalers and the callables (DDP-wrapped
    and compiled as the runtime says) that run G, D on a real and a fake batch, and D alone for G's
    step; what the dcgan and stylegan families share."""
    precision = runtime.precision
    g_run = runtime.maybe_compile(wrap_ddp(generator, runtime.dist, runtime.device))
    d_run = runtime.maybe_compile(wrap_ddp(RealFakeDiscriminator(discriminator), runtime.dist, runtime.device))
    return precision.make_scaler(), precision.make_scaler(), g_run, d_run, runtime.maybe_compile(discriminator)


def split_labelled(batch: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(images, labels) from ``(image, label)`` batches, ``dict(image=, label=)`` or bare image tensors."""
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, dict):
        return batch["image"], batch.get("label")
    if isinstance(batch, (tuple, list)) and len(batch) >= 1:
        return batch[0], (batch[1] if len(batch) > 1 else None)
    raise TypeError(f"expected (image, label) batches, got {type(batch).__name__}")


class DCGANFamily(Family):
    name = "dcgan"

    def __init__(self, config: TrainConfig, runtime: Runtime, data: DataInfo,
                 builder: ModelBuilder = registry_builder) -> None:
        super().__init__(config, runtime, data)
        self.conditional = config.model == "cgan"
        if self.conditional and (data.num_classes or 0) < 2:
            # a plain image folder is one class: conditioning on it is a dcgan with extra parameters
            raise ValueError(f"model 'cgan' needs a labelled dataset of at least 2 classes (class subfolders), "
                             f"got {data.num_classes or 0}; use --model dcgan for unlabelled images")
        self.num_classes = data.num_classes if self.conditional else None
        self.opts = config.gan
        g_name, d_name, g_kwargs, d_kwargs = gan_model_names(config, data, self.num_classes)
        self.generator = runtime.place(initialise(builder(g_name, **g_kwargs), config.init, config.init_gain))
        self.discriminator = runtime.place(initialise(builder(d_name, **d_kwargs), config.init, config.init_gain))
        graphs = runtime.cuda_graphs
        self.opt_g = make_adam(self.generator.parameters(), config, runtime.device, capturable=graphs)
        self.opt_d = make_adam(self.discriminator.parameters(), config, runtime.device, capturable=graphs)
        self.scaler_g, self.scaler_d, self._g_run, self._d_run, self._d_frozen = adversarial_runners(
            self.generator, self.discriminator, runtime)
        self._augment = make_d_augment(config)
        self._g_phase = GraphedPhase(self._generator_phase, enabled=graphs)
        self._d_phase = GraphedPhase(self._discriminator_phase, enabled=graphs)
        self._fixed_z: torch.Tensor | None = None
        self._fixed_labels: torch.Tensor | None = None
        self._per_row = config.num_samples

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.generator, "D": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def lr_changed(self) -> None:
        self._g_phase.recapture()
        self._d_phase.recapture()

    def scalers(self) -> dict[str, torch.amp.GradScaler]:
        return {"G": self.scaler_g, "D": self.scaler_d}

    # --- one step -----------------------------------------------------------------------------
    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.config.latent_dim, device=self.runtime.device)

    def _fake_labels(self, n: int) -> torch.Tensor | None:
        if not self.conditional:
            return None
        return torch.randint(0, self.num_classes, (n,), device=self.runtime.device)

    def _targets(self, like: torch.Tensor, real: bool) -> torch.Tensor | float:
        """D targets: smoothed for real, 0 for fake, each optionally with uniform label noise."""
        smooth, width = self.opts.label_smoothing, self.opts.noisy_labels
        if width <= 0:
            return smooth if real else 0.0
        noise = torch.rand(like.shape, device=like.device) * width
        return smooth - noise if real else noise

    def _discriminator_phase(self, real: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        n = real.shape[0]
        self.opt_d.zero_grad(set_to_none=True)
        fake_labels = self._fake_labels(n)
        with self.runtime.precision.autocast():
            with torch.no_grad():
                fake = call_with_labels(self._g_run, self._noise(n), fake_labels)
            real_pred, fake_pred = self._d_run(self._augment(real), self._augment(fake.detach()), labels,
                                               fake_labels)
        real_pred, fake_pred = real_pred.float(), fake_pred.float()
        loss_real = F.binary_cross_entropy_with_logits(real_pred, _as_target(self._targets(real_pred, True), real_pred))
        loss_fake = F.binary_cross_entropy_with_logits(fake_pred, _as_target(self._targets(fake_pred, False), fake_pred))
        loss = loss_real + loss_fake
        self.scaler_d.scale(loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        return {"loss_D": loss.detach(), "D_real": torch.sigmoid(real_pred).mean().detach(),
                "D_fake": torch.sigmoid(fake_pred).mean().detach()}

    def _generator_phase(self, n_tensor: torch.Tensor) -> dict[str, torch.Tensor]:
        n = n_tensor.shape[0]
        self.opt_g.zero_grad(set_to_none=True)
        labels = self._fake_labels(n)
        set_requires_grad(self.discriminator, False)
        try:
            with self.runtime.precision.autocast():
                fake = call_with_labels(self._g_run, self._noise(n), labels)
                pred = call_with_labels(self._d_frozen, self._augment(fake), labels).float()
            # the generator wants D to call its fakes real (target 1, no smoothing)
            loss = F.binary_cross_entropy_with_logits(pred, torch.ones_like(pred))
            self.scaler_g.scale(loss).backward()
        finally:
            set_requires_grad(self.discriminator, True)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        return {"loss_G": loss.detach()}

    def train_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        images, labels = split_labelled(batch)
        real = self.runtime.to_device(images)
        if self.conditional:
            if labels is None:
                raise ValueError("cgan batches must carry labels")
            labels = torch.as_tensor(labels).to(self.runtime.device, torch.int64)
        else:
            labels = None
        out: dict[str, torch.Tensor] = {}
        for _ in range(self.opts.d_steps):
            # GraphedPhase copies tensor inputs only: the unconditional phase gets the images alone
            out.update(self._d_phase(real, labels) if labels is not None else self._d_phase(real))
        # the G phase takes a tensor of the batch size only so a CUDA graph has a static input
        size_marker = real.new_empty(real.shape[0], 0)
        for _ in range(self.opts.g_steps):
            out.update(self._g_phase(size_marker))
        return out

    # --- samples ------------------------------------------------------------------------------
    def fixed_batch(self, dataset: Any, count: int) -> None:
        generator = torch.Generator().manual_seed(self.config.seed + 12345)
        if self.conditional:
            rows = self.num_classes
            self._fixed_labels = torch.arange(rows).repeat_interleave(self._per_row)
        else:
            rows = self._per_row
        self._fixed_z = torch.randn(rows * self._per_row, self.config.latent_dim, generator=generator)

    def sample_grid(self) -> tuple[list[torch.Tensor], int]:
        """An n x n grid from fixed noise; for cgan one row per class."""
        if self._fixed_z is None:
            raise RuntimeError("fixed_batch() must be called before sample_grid()")
        z = self._fixed_z.to(self.runtime.device)
        labels = None if self._fixed_labels is None else self._fixed_labels.to(self.runtime.device)
        with self.eval_mode():
            images = call_with_labels(self.generator, z, labels)
        return [images.float().cpu()], self._per_row


def _as_target(target: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    if isinstance(target, torch.Tensor):
        return target
    return torch.full_like(like, target)
