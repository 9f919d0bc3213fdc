"""StyleGAN-style training: non-saturating logistic loss, lazy R1, style mixing, EMA generator.

- G loss softplus(-D(G(z))); D loss softplus(D(G(z))) + softplus(-D(x)).
- R1 = gamma/2 * E||grad_x D(x)||^2 on every ``r1_interval``-th step, multiplied by the interval
  (lazy regularisation, StyleGAN2), computed in the same pass as the D loss so the
  discriminator gets one forward and one backward per step (what DDP expects).
- Style mixing with probability ``mixing_prob`` (inside the generator's forward).
- An exponential moving average of the generator weights makes the sample grids and is what
  ``python -m effgan.sample`` loads.
- Optional DiffAugment (``--diffaugment``) on every image D sees, real and fake (``augment.py``);
  on R1 steps the real images go through the reference implementation, since R1 differentiates
  D's gradient and the fused kernels have no double backward.

The discriminator is the classic DCGAN discriminator without normalisation (batch statistics
would leak between samples and make R1 ill-defined).
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from effgan.train import losses
from effgan.train.augment import make_d_augment
from effgan.train.config import TrainConfig
from effgan.train.dcgan import adversarial_runners
from effgan.train.distributed import broadcast_module
from effgan.train.family import DataInfo, Family, Runtime, make_adam, set_requires_grad
from effgan.train.model_builders import ModelBuilder, initialise, registry_builder


def build_stylegan_pair(config: TrainConfig, data: DataInfo, builder: ModelBuilder) -> tuple[nn.Module, nn.Module]:
    from effgan.models.norm_act import NoNormLayer

    width = 4 * config.ngf  # channels at 4x4 and 8x8, halving per resolution after
    generator = builder(f"stylegan-{data.image_size}", z_dim=config.latent_dim, out_channels=data.channels,
                        mapping_layers=config.stylegan.mapping_layers, channel_max=width,
                        channel_base=width * 8, fused=config.fused, impl=config.impl)
    discriminator = builder("dcgan-classic-d", in_channels=data.channels, ndf=config.ndf,
                            image_size=data.image_size, norm_layer=NoNormLayer(),
                            fused=config.fused, impl=config.impl)
    # the generator keeps its equalised-lr N(0, 1) init (init_weights skips those layers)
    return generator, initialise(discriminator, config.init, config.init_gain)


class StyleGANFamily(Family):
    name = "stylegan"

    def __init__(self, config: TrainConfig, runtime: Runtime, data: DataInfo,
                 builder: ModelBuilder = registry_builder) -> None:
        super().__init__(config, runtime, data)
        self.opts = config.stylegan
        self.num_classes = None  # unconditional; evaluation hooks read it like the cgan family's
        if runtime.cuda_graphs:
            raise ValueError("--cuda-graphs is not supported for stylegan (style mixing draws on the host); "
                             "use it with cyclegan or dcgan")
        generator, discriminator = build_stylegan_pair(config, data, builder)
        self.generator = runtime.place(generator)
        self.discriminator = runtime.place(discriminator)
        self.opt_g = make_adam(self.generator.parameters(), config, runtime.device)
        # D takes --lr and the betas as given: StyleGAN2 scales them by interval / (interval + 1)
        # because its lazy R1 is an extra optimizer step every interval batches; here R1 joins the
        # batch's own D step (weighted by the interval), so D takes one step per batch either way.
        self.opt_d = make_adam(self.discriminator.parameters(), config, runtime.device)
        self.scaler_g, self.scaler_d, self._g_run, self._d_run, self._d_frozen = adversarial_runners(
            self.generator, self.discriminator, runtime)
        # R1 differentiates D's gradient, a double backward that a torch.compile'd module refuses
        # (aot_autograd has none): R1 steps run the same D module uncompiled.
        self._d_run_r1 = getattr(self._d_run, "_orig_mod", self._d_run)
        # after DDP's broadcast, so every rank's EMA starts from rank 0's weights
        self.generator_ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        broadcast_module(self.generator_ema, runtime.dist)
        self._augment = make_d_augment(config)
        self._fixed_z: torch.Tensor | None = None

    def modules(self) -> dict[str, nn.Module]:
        return {"G": self.generator, "D": self.discriminator}

    def sample_modules(self) -> dict[str, nn.Module]:
        return {"G_ema": self.generator_ema}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def scalers(self) -> dict[str, torch.amp.GradScaler]:
        return {"G": self.scaler_g, "D": self.scaler_d}

    # --- one step -----------------------------------------------------------------------------
    def _generate(self, module: nn.Module, n: int) -> torch.Tensor:
        z = torch.randn(n, self.config.latent_dim, device=self.runtime.device)
        return module(z, mixing_prob=self.opts.mixing_prob)

    def _discriminator_step(self, real: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        opts = self.opts
        self.opt_d.zero_grad(set_to_none=True)
        do_r1 = opts.r1_gamma > 0 and step % opts.r1_interval == 0
        real = real.detach().requires_grad_(do_r1)
        with self.runtime.precision.autocast():
            with torch.no_grad():
                fake = self._generate(self._g_run, real.shape[0])
            d_run = self._d_run_r1 if do_r1 else self._d_run
            real_pred, fake_pred = d_run(self._augment(real, double_backward=do_r1), self._augment(fake.detach()))
        loss = losses.logistic_discriminator_loss(real_pred, fake_pred)
        out = {"loss_D": loss.detach(), "D_real": real_pred.detach().float().mean(),
               "D_fake": fake_pred.detach().float().mean()}
        if do_r1:
            penalty = losses.r1_penalty(real_pred, real)
            # scaled by the interval so the lazy penalty weighs as much as an every-step one
            loss = loss + penalty * (opts.r1_gamma / 2 * opts.r1_interval)
            out["r1"] = penalty.detach()
        self.scaler_d.scale(loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        return out

    def _generator_step(self, n: int) -> dict[str, torch.Tensor]:
        self.opt_g.zero_grad(set_to_none=True)
        set_requires_grad(self.discriminator, False)
        try:
            with self.runtime.precision.autocast():
                fake = self._generate(self._g_run, n)
                pred = self._d_frozen(self._augment(fake))
            loss = losses.nonsaturating_generator_loss(pred)
            self.scaler_g.scale(loss).backward()
        finally:
            set_requires_grad(self.discriminator, True)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        return {"loss_G": loss.detach()}

    @torch.no_grad()
    def _update_ema(self) -> None:
        beta = self.opts.ema_beta
        for ema_p, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            ema_p.lerp_(p.detach(), 1.0 - beta)
        for ema_b, b in zip(self.generator_ema.buffers(), self.generator.buffers()):
            ema_b.copy_(b)

    def train_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        from effgan.train.dcgan import split_labelled

        images, _ = split_labelled(batch)
        real = self.runtime.to_device(images)
        out = self._discriminator_step(real, step)
        out.update(self._generator_step(real.shape[0]))
        self._update_ema()
        return out

    # --- samples ------------------------------------------------------------------------------
    def fixed_batch(self, dataset: Any, count: int) -> None:
        generator = torch.Generator().manual_seed(self.config.seed + 12345)
        self._fixed_z = torch.randn(count * count, self.config.latent_dim, generator=generator)

    def sample_grid(self) -> tuple[list[torch.Tensor], int]:
        if self._fixed_z is None:
            raise RuntimeError("fixed_batch() must be called before sample_grid()")
        z = self._fixed_z.to(self.runtime.device)
        count = int(round(z.shape[0] ** 0.5))
        with self.eval_mode():
            images = self.generator_ema(z, truncation_psi=self.opts.truncation, noise_mode="none")
        return [images.float().cpu()], count
