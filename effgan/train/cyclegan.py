"""CycleGAN training (Zhu et al., 2017) with the reference recipe.

G_A: A -> B and G_B: B -> A; D_A judges domain B images (real B vs G_A's fakes), D_B domain A.
Per step: the generator step with both discriminators frozen (adversarial + lambda_cycle * L1
cycle + lambda_cycle * lambda_identity * L1 identity), then the discriminator step on real images
and fakes drawn from each discriminator's image pool, its loss halved. With ``--diffaugment`` every
image either discriminator sees (real, pooled fake, and the fakes of G's adversarial term) is
augmented with the same policy; the pools keep the un-augmented fakes, which are augmented afresh
each time they are drawn.

Each pair of networks is one module whose forward runs both, so DistributedDataParallel sees
exactly one forward per backward. Since instance norm treats every sample on its own, the calls
that share a network are batched together (G_A on [real_A, real_B] gives fake_B and the identity
image at once), which is exact and saves kernel launches at batch size 1.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from effgan.train import losses
from effgan.train.augment import make_d_augment
from effgan.train.config import TrainConfig
from effgan.train.cuda_graphs import GraphedPhase
from effgan.train.distributed import wrap_ddp
from effgan.train.family import DataInfo, Family, Runtime, make_adam, set_requires_grad
from effgan.train.image_pool import ImagePool
from effgan.train.model_builders import ModelBuilder, initialise, registry_builder


class GeneratorPair(nn.Module):
    def __init__(self, g_a: nn.Module, g_b: nn.Module) -> None:
        super().__init__()
        self.g_a, self.g_b = g_a, g_b

    def forward(self, real_a: torch.Tensor, real_b: torch.Tensor, identity: bool = True):
        """Returns fake_b, rec_a, fake_a, rec_b, idt_a (G_A(real_b)), idt_b (G_B(real_a))."""
        n = real_a.shape[0]
        if identity:
            out_a = self.g_a(torch.cat([real_a, real_b]))
            out_b = self.g_b(torch.cat([real_b, real_a]))
            fake_b, idt_a = out_a[:n], out_a[n:]
            fake_a, idt_b = out_b[:n], out_b[n:]
        else:
            fake_b, fake_a = self.g_a(real_a), self.g_b(real_b)
            idt_a = idt_b = None
        rec_a = self.g_b(fake_b)
        rec_b = self.g_a(fake_a)
        return fake_b, rec_a, fake_a, rec_b, idt_a, idt_b


class DiscriminatorPair(nn.Module):
    def __init__(self, d_a: nn.Module, d_b: nn.Module) -> None:
        super().__init__()
        self.d_a, self.d_b = d_a, d_b

    def forward(self, images_b: torch.Tensor, images_a: torch.Tensor):
        """D_A on domain-B images, D_B on domain-A images."""
        return self.d_a(images_b), self.d_b(images_a)


def split_unpaired(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, B) from a batch of ``dict(A=..., B=...)`` items or ``(A, B)`` tuples."""
    if isinstance(batch, dict):
        return batch["A"], batch["B"]
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    raise TypeError(f"a CycleGAN batch must be a dict with 'A' and 'B' or an (A, B) tuple, got {type(batch).__name__}")


def _halves(pred, n: int):
    """Split a D output over a [real, fake] batch into (real part, fake part); handles multi-head tuples."""
    if isinstance(pred, (tuple, list)):
        return [p[:n] for p in pred], [p[n:] for p in pred]
    return pred[:n], pred[n:]


def _as_float(pred):
    """A D output (or a multi-head tuple of them) in fp32, for the losses."""
    if isinstance(pred, (tuple, list)):
        return [p.float() for p in pred]
    return pred.float()


def build_generator(config: TrainConfig, data: DataInfo, builder: ModelBuilder, fused: bool, impl: str) -> nn.Module:
    name = config.cyclegan.generator
    kwargs: dict[str, Any] = dict(in_channels=data.channels, out_channels=data.channels, fused=fused, impl=impl)
    if not name.startswith("effnet-"):
        kwargs["ngf"] = config.ngf
    return initialise(builder(name, **kwargs), config.init, config.init_gain)


def build_discriminator(config: TrainConfig, data: DataInfo, builder: ModelBuilder, fused: bool, impl: str) -> nn.Module:
    name = config.cyclegan.discriminator
    kwargs: dict[str, Any] = dict(in_channels=data.channels, ndf=config.ndf, fused=fused, impl=impl)
    if name == "patchgan":
        kwargs["n_layers"] = config.cyclegan.d_layers
    return initialise(builder(name, **kwargs), config.init, config.init_gain)


def _fused_losses():
    """effgan's fused CycleGAN (generator, discriminator) loss ops, or None where unavailable."""
    try:
        from effgan.ops import cyclegan_generator_loss, gan_loss_d
    except ImportError:
        return None
    return cyclegan_generator_loss, gan_loss_d


class CycleGANFamily(Family):
    name = "cyclegan"

    def __init__(self, config: TrainConfig, runtime: Runtime, data: DataInfo,
                 builder: ModelBuilder = registry_builder) -> None:
        super().__init__(config, runtime, data)
        opts = config.cyclegan
        self.opts = opts
        build = dict(builder=builder, fused=config.fused, impl=config.impl)
        # G_A, G_B, D_A, D_B built in the reference's order, so a seed gives the same weights
        self.generators = runtime.place(GeneratorPair(build_generator(config, data, **build),
                                                      build_generator(config, data, **build)))
        self.discriminators = runtime.place(DiscriminatorPair(build_discriminator(config, data, **build),
                                                              build_discriminator(config, data, **build)))
        graphs = runtime.cuda_graphs
        self.opt_g = make_adam(self.generators.parameters(), config, runtime.device, capturable=graphs)
        self.opt_d = make_adam(self.discriminators.parameters(), config, runtime.device, capturable=graphs)
        self.scaler_g = runtime.precision.make_scaler()
        self.scaler_d = runtime.precision.make_scaler()
        # fakes of domain A (for D_B) and of B (for D_A); each DDP rank draws its own swap decisions
        rank_seed = config.seed * 2 + 1_000_003 * runtime.dist.rank
        self.pool_a = ImagePool(opts.pool_size, seed=rank_seed + 1)
        self.pool_b = ImagePool(opts.pool_size, seed=rank_seed + 2)

        # what runs the forward passes: DDP for gradient sync, torch.compile if asked
        self._g_run = runtime.maybe_compile(wrap_ddp(self.generators, runtime.dist, runtime.device))
        self._d_run = runtime.maybe_compile(wrap_ddp(self.discriminators, runtime.dist, runtime.device))
        # during the G step D is frozen and only passes gradients to G's output: no DDP needed
        self._d_frozen = runtime.maybe_compile(self.discriminators)
        self._fused = _fused_losses() if config.fused else None
        self._augment = make_d_augment(config)
        self._g_phase = GraphedPhase(self._generator_phase, enabled=graphs)
        self._d_phase = GraphedPhase(self._discriminator_phase, enabled=graphs)
        self._fixed: tuple[torch.Tensor, torch.Tensor] | None = None

    # --- state --------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"G_A": self.generators.g_a, "G_B": self.generators.g_b,
                "D_A": self.discriminators.d_a, "D_B": self.discriminators.d_b}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"G": self.opt_g, "D": self.opt_d}

    def lr_changed(self) -> None:
        self._g_phase.recapture()
        self._d_phase.recapture()

    def scalers(self) -> dict[str, torch.amp.GradScaler]:
        return {"G": self.scaler_g, "D": self.scaler_d}

    def extra_state(self) -> dict[str, Any]:
        return {"pool_A": self.pool_a.state_dict(), "pool_B": self.pool_b.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.pool_a.load_state_dict(state["pool_A"], self.runtime.device)
        self.pool_b.load_state_dict(state["pool_B"], self.runtime.device)

    # --- one step -----------------------------------------------------------------------------
    def _generator_loss(self, real_a, real_b, outputs, pred_fake_b, pred_fake_a) -> dict[str, torch.Tensor]:
        # the losses run in fp32: under autocast the generator outputs are fp16/bf16 while the real
        # images are fp32, and the fused loss op takes one dtype per image pair
        fake_b, rec_a, fake_a, rec_b, idt_a, idt_b = (None if t is None else t.float() for t in outputs)
        pred_fake_b, pred_fake_a = _as_float(pred_fake_b), _as_float(pred_fake_a)
        opts = self.opts
        if self._fused is None:
            return losses.cyclegan_generator_loss_plain(
                pred_fake_b, pred_fake_a, real_a, real_b, rec_a, rec_b, idt_a, idt_b,
                lambda_cycle=opts.lambda_cycle, lambda_identity=opts.lambda_identity, mode=opts.gan_mode)
        fused = self._fused[0](
            pred_fake_b, pred_fake_a, rec_a, real_a, rec_b, real_b, idt_a, idt_b, gan_mode=opts.gan_mode,
            lambda_a=opts.lambda_cycle, lambda_b=opts.lambda_cycle, lambda_identity=opts.lambda_identity,
            impl=self.config.impl)
        parts = {"G_A": fused.loss_G_A, "G_B": fused.loss_G_B, "cycle_A": fused.cycle_A, "cycle_B": fused.cycle_B}
        if idt_a is not None:
            parts.update(idt_A=fused.idt_A, idt_B=fused.idt_B)
        parts["G"] = fused.total
        return parts

    def _discriminator_loss(self, real_pred, fake_pred) -> torch.Tensor:
        if self._fused is None:
            return losses.discriminator_loss(real_pred, fake_pred, self.opts.gan_mode)
        return self._fused[1](real_pred, fake_pred, self.opts.gan_mode, impl=self.config.impl)

    def _generator_phase(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        self.opt_g.zero_grad(set_to_none=True)
        set_requires_grad(self.discriminators, False)
        try:
            with self.runtime.precision.autocast():
                outputs = self._g_run(real_a, real_b, self.opts.lambda_identity > 0)
                pred_fake_b, pred_fake_a = self._d_frozen(self._augment(outputs[0]), self._augment(outputs[2]))
            parts = self._generator_loss(real_a, real_b, outputs, pred_fake_b, pred_fake_a)
            self.scaler_g.scale(parts["G"]).backward()
        finally:
            set_requires_grad(self.discriminators, True)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        result = {"loss_" + k: v.detach() for k, v in parts.items()}
        result["fake_B"], result["fake_A"] = outputs[0].detach(), outputs[2].detach()
        return result

    def _discriminator_phase(self, real_a, real_b, pooled_a, pooled_b) -> dict[str, torch.Tensor]:
        self.opt_d.zero_grad(set_to_none=True)
        n_b, n_a = real_b.shape[0], real_a.shape[0]
        with self.runtime.precision.autocast():
            # each sample draws its own augmentation, so augmenting the [real, fake] batch at once
            # is the same as augmenting the halves separately
            pred_b, pred_a = self._d_run(self._augment(torch.cat([real_b, pooled_b])),
                                         self._augment(torch.cat([real_a, pooled_a])))
        real_pred_b, fake_pred_b = _halves(_as_float(pred_b), n_b)
        real_pred_a, fake_pred_a = _halves(_as_float(pred_a), n_a)
        loss_d_a = self._discriminator_loss(real_pred_b, fake_pred_b)
        loss_d_b = self._discriminator_loss(real_pred_a, fake_pred_a)
        self.scaler_d.scale(loss_d_a + loss_d_b).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        return {"loss_D_A": loss_d_a.detach(), "loss_D_B": loss_d_b.detach()}

    def train_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        real_a, real_b = (self.runtime.to_device(x) for x in split_unpaired(batch))
        g_out = self._g_phase(real_a, real_b)
        fake_b, fake_a = g_out.pop("fake_B"), g_out.pop("fake_A")
        pooled_b = self.pool_b.query(fake_b)
        pooled_a = self.pool_a.query(fake_a)
        d_out = self._d_phase(real_a, real_b, pooled_a, pooled_b)
        return {**g_out, **d_out}

    # --- samples ------------------------------------------------------------------------------
    def fixed_batch(self, dataset: Any, count: int) -> None:
        count = min(count, len(dataset))
        items = [dataset[i] for i in range(count)]
        real_a = torch.stack([split_unpaired(item)[0] for item in items])
        real_b = torch.stack([split_unpaired(item)[1] for item in items])
        self._fixed = (real_a, real_b)

    def sample_grid(self) -> tuple[list[torch.Tensor], int]:
        """One row per sample: real A | fake B | rec A | real B | fake A | rec B."""
        if self._fixed is None:
            raise RuntimeError("fixed_batch() must be called before sample_grid()")
        real_a, real_b = (self.runtime.to_device(x) for x in self._fixed)
        with self.eval_mode():
            g_a, g_b = self.generators.g_a, self.generators.g_b
            fake_b, fake_a = g_a(real_a), g_b(real_b)
            rec_a, rec_b = g_b(fake_b), g_a(fake_a)
        columns = (real_a, fake_b, rec_a, real_b, fake_a, rec_b)
        tiles = [column[i:i + 1].float().cpu() for i in range(real_a.shape[0]) for column in columns]
        return [torch.cat(tiles)], len(columns)
