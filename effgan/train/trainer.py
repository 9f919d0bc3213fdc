"""The training loop shared by every family: data order, schedules, checkpoints, logs, signals.

``train(config)`` is the Python entry point behind ``python -m effgan.train``. The loop state is
(step, epoch, batch within the epoch); the data order is a function of (seed, epoch, rank) and
every other source of randomness is saved in checkpoints, so a run resumed from a checkpoint
takes exactly the steps the uninterrupted run would have taken, under DDP too: a checkpoint holds
every rank's random streams and CycleGAN image pools (gathered to rank 0, which writes it), and a
resume needs the same number of processes.
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch.utils.data import Dataset

from effgan.train import checkpoint as ckpt
from effgan.train import config as cfg
from effgan.train.cuda_graphs import check_supported as check_cuda_graphs
from effgan.train.data_loading import batches_per_epoch, make_train_loader
from effgan.train.distributed import (DistInfo, all_ranks_true, any_rank_true, destroy_process_group,
                                      gather_to_main, info_from_env, init_process_group, on_cpu, pick_device)
from effgan.train.evaluation import build_eval_hook, check_eval_options, is_eval_metric, summary
from effgan.train.family import DataInfo, Family, Runtime
from effgan.train.loss_window import LossWindow
from effgan.train.model_builders import ModelBuilder, registry_builder
from effgan.train.precision import Precision
from effgan.train.process_settings import cpu_thread_count, deterministic_mode, seed_everything
from effgan.train.resume_rules import check_resume_unchanged
from effgan.train.run_folder import check_resume_run_name, keep_aside, latest_ahead_of, new_run_dir
from effgan.train.run_logger import RunLogger, image_grid
from effgan.train.schedule import LRMultiplier, make_scheduler
from effgan.train.signals import catch_stop_signals

MetricsFn = Callable[[Family], dict[str, float]]
"""Extra evaluation at checkpoint time (e.g. cycle MAE, FID): gets the family, returns name -> value.

``--eval-every N`` builds one from the config (see ``evaluation.py``) and runs it every N steps and
at the end; each of those steps is also a checkpoint, so best.pt can be chosen by its numbers.
"""


def _check_impl_runs_here(config, device: torch.device) -> None:
    """An explicit --impl (or an EFFGAN_IMPL that "auto" defers to) that cannot run on this device is
    an error now, not at the first fused call."""
    if not config.fused or config.impl == "ref":
        return
    from effgan._backend import ENV_VAR, resolve_impl

    try:
        resolve_impl(config.impl, device, "instance_norm_act")  # raises, with the reason, when it cannot
    except RuntimeError as error:
        what = f"impl={config.impl!r}" if config.impl != "auto" else f"{ENV_VAR}={os.environ.get(ENV_VAR)!r}"
        raise ValueError(f"{what} cannot run on {device}: {error}") from None


class NonFiniteLossError(RuntimeError):
    """A loss or a weight became NaN or inf; the run stopped without overwriting the last good checkpoint."""


@dataclass
class RunResult:
    run_dir: str
    step: int
    epoch: int
    checkpoint: str | None
    sample_grid: str | None
    losses: dict[str, float] = field(default_factory=dict)
    stopped_by: str | None = None  # signal name when a SIGINT/SIGTERM ended the run


def family_class(model: str) -> type[Family]:
    if model == "cyclegan":
        from effgan.train.cyclegan import CycleGANFamily
        return CycleGANFamily
    if model in ("dcgan", "cgan"):
        from effgan.train.dcgan import DCGANFamily
        return DCGANFamily
    if model == "stylegan":
        from effgan.train.stylegan import StyleGANFamily
        return StyleGANFamily
    raise ValueError(f"model must be one of {list(cfg.FAMILIES)}, got {model!r}")


def build_train_dataset(config: cfg.TrainConfig) -> Dataset:
    from effgan.data import build_dataset, is_embedded

    kind = "unpaired" if config.model == "cyclegan" else "labelled"
    length = config.train_length if is_embedded(config.dataset) else None
    try:
        return build_dataset(config.dataset, "train", image_size=config.image_size, kind=kind,
                             seed=config.seed, augment=config.augment, length=length)
    except ValueError as error:
        if not str(error).startswith("kind "):
            if str(error).startswith("name_or_path must be"):  # the factory's argument: name the option
                raise ValueError(f"dataset {config.dataset!r} is neither 'cans', 'digits' nor an existing "
                                 f"folder") from None
            raise
        # the factory speaks of dataset kinds, which are no option of this command: say what fits
        needs = ("unpaired images: the embedded 'cans' set or a folder with trainA/ and trainB/ (and testA/, "
                 "testB/)" if kind == "unpaired" else
                 "labelled images: the embedded 'digits' set, a folder of MNIST IDX files or an image folder "
                 "(class subfolders give the labels)")
        raise ValueError(f"dataset {config.dataset!r} does not fit model {config.model!r}, which trains on "
                         f"{needs}") from None


def data_info(dataset: Dataset, model: str) -> DataInfo:
    from effgan.train.cyclegan import split_unpaired
    from effgan.train.dcgan import split_labelled

    item = dataset[0]
    image = split_unpaired(item)[0] if model == "cyclegan" else split_labelled(item)[0]
    classes = getattr(dataset, "classes", None)
    return DataInfo(channels=int(image.shape[0]), image_size=int(image.shape[-1]),
                    num_classes=len(classes) if classes else None)


def train(config: cfg.TrainConfig, *, dataset: Dataset | None = None, builder: ModelBuilder = registry_builder,
          metrics_fn: MetricsFn | None = None) -> RunResult:
    """Train as ``config`` says; returns where everything went.

    dataset: use this training set instead of building ``config.dataset``.
    builder: ``builder(name, **kwargs) -> nn.Module`` used for every network (default: the registry).
    metrics_fn: called at each checkpoint (by rank 0); its values are logged and may select ``best.pt``.
        ``config.eval_every`` adds the built-in evaluation on top (see ``evaluation.py``).
    """
    config = cfg.resolve(config)
    if config.resume is None:
        cfg.check_options_apply(config)
    check_eval_options(config, has_metrics_fn=metrics_fn is not None)
    info = info_from_env()
    device = pick_device(config.device, info)
    Precision(config.amp, device.type).check_supported()
    _check_impl_runs_here(config, device)
    if config.cuda_graphs:
        check_cuda_graphs(device, config.amp)
    init_process_group(info, device)
    try:
        with deterministic_mode(config.deterministic), cpu_thread_count(config.cpu_threads, device, info):
            return Trainer(config, info, device, dataset, builder, metrics_fn).run()
    finally:
        destroy_process_group()


def cuda_graphs_hint(config: cfg.TrainConfig, device: torch.device) -> str:
    """A line suggesting --cuda-graphs where a fused model would otherwise run host-bound on a GPU.

    Each fused op call costs more host time than eager's ops (Python checks and Triton launches), so
    at small batches a fused step without CUDA graphs is slower than plain PyTorch (benchmarks/NOTES.md).
    """
    if device.type != "cuda" or not config.fused or config.cuda_graphs or config.compile or config.diffaugment:
        return ""
    return ("  tip: add --cuda-graphs: fused models are host-bound on a GPU without it (H100, CycleGAN "
            "ResNet-9 at 256x256, batch 1: 0.66x eager's speed without, 2.72x with)\n")


class Trainer:
    def __init__(self, config: cfg.TrainConfig, info: DistInfo, device: torch.device, dataset: Dataset | None,
                 builder: ModelBuilder, metrics_fn: MetricsFn | None) -> None:
        self.config, self.info, self.device, self.metrics_fn = config, info, device, metrics_fn
        seed_everything(config.seed + info.rank)
        self.dataset = dataset if dataset is not None else build_train_dataset(config)
        self.data = data_info(self.dataset, config.model)
        precision = Precision(config.amp, device.type, cache_enabled=not config.cuda_graphs)
        self.runtime = Runtime(device=device, dist=info, precision=precision, channels_last=config.channels_last,
                               compile=config.compile, compile_backend=config.compile_backend,
                               cuda_graphs=config.cuda_graphs)
        self.family = family_class(config.model)(config, self.runtime, self.data, builder=builder)
        multiplier = LRMultiplier(config.lr_policy, config.epochs, config.epochs_decay, config.lr_step_epochs)
        self.schedulers = {name: make_scheduler(opt, multiplier) for name, opt in self.family.optimizers().items()}
        self.loader, self.sampler = make_train_loader(self.dataset, config.batch_size, info, seed=config.seed,
                                                      num_workers=config.num_workers,
                                                      pin_memory=device.type == "cuda")
        self.steps_per_epoch = batches_per_epoch(self.sampler, config.batch_size)
        self.total_epochs = config.epochs + config.epochs_decay
        total = self.total_epochs * self.steps_per_epoch
        self.total_steps = min(total, config.max_steps) if config.max_steps is not None else total
        self.family.fixed_batch(self.dataset, config.num_samples)

        self.step = self.epoch = self.batch_in_epoch = 0
        self.best: dict[str, Any] = {"metric": config.best_metric, "value": None, "step": None}
        self._resume_state: dict[str, Any] | None = None
        if config.resume is not None:
            path = ckpt.find(config.resume)
            self.run_dir = ckpt.run_dir_of(path)
            check_resume_run_name(config, self.run_dir)
            self._load(ckpt.load(path, map_location=device))
        else:
            self.run_dir = new_run_dir(config, info)
        self.ckpt_dir = os.path.join(self.run_dir, ckpt.CHECKPOINT_DIR)
        self._last_good_checkpoint: str | None = None
        self._last_checkpoint_step: int | None = None
        self._newer_latest: tuple[str, int] | None = None
        if config.resume is not None:
            self._adopt_best_record()
            # What was loaded is on disk already: a resumed run that trains no step writes nothing.
            self._last_checkpoint_step, self._last_good_checkpoint = self.step, path
            if info.is_main:
                self._newer_latest = latest_ahead_of(self.ckpt_dir, path, self.step)
                self._resumed_step = self.step
                ckpt.remove_unfinished_writes(self.ckpt_dir)
        # a resume with nothing left to train writes nothing at all: no log, config or sample grid
        self._nothing_to_train = config.resume is not None and self.step >= self.total_steps
        self.logger = RunLogger(self.run_dir, enabled=info.is_main and not self._nothing_to_train,
                                tensorboard=config.tensorboard,
                                resumed_at=(self.step, self.epoch, path) if config.resume is not None else None)
        if info.is_main and not self._nothing_to_train:
            # without `resume` and `run_name`: `--config <run>/config.yaml` then replays the run as a new
            # one, in a folder of its own, instead of continuing it (or being refused its folder)
            cfg.save_yaml(dataclasses.replace(config, resume=None, run_name=None),
                          os.path.join(self.run_dir, "config.yaml"))
        self._finite = torch.ones((), dtype=torch.bool, device=device)
        self._log_window, self._ckpt_window = LossWindow(), LossWindow()
        self._last_losses: dict[str, float] = {}
        self._warned_missing_best = False
        self.eval_hook = self._build_eval_hook()

    def _build_eval_hook(self) -> MetricsFn | None:
        # rank 0 alone evaluates (the ranks hold the same weights): the others build nothing
        if not self.config.eval_every or not self.info.is_main:
            return None
        self._print(f"effgan.train: preparing the evaluation (its metric networks are trained once and cached "
                    f"in {os.path.join(self.run_dir, 'feature_nets')})")
        with self._forked_rng():  # training the metric networks must not shift the training streams
            return build_eval_hook(self.config, self.data, self.run_dir, self.device)

    # --- checkpoints --------------------------------------------------------------------------
    def _payload(self, metrics: dict[str, float], rank_states: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        family = self.family
        return {
            "format": ckpt.FORMAT_VERSION,
            "family": family.name,
            "world_size": self.info.world_size,
            "config": cfg.to_dict(self.config),
            "data": {"channels": self.data.channels, "image_size": self.data.image_size,
                     "num_classes": self.data.num_classes},
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "models": {k: m.state_dict() for k, m in family.modules().items()},
            "sample_models": {k: m.state_dict() for k, m in family.sample_modules().items()},
            "optimizers": {k: o.state_dict() for k, o in family.optimizers().items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scalers": {k: s.state_dict() for k, s in family.scalers().items()},
            "extra": family.extra_state(),
            "rng": ckpt.capture_rng_state(),
            # under DDP, ranks 1.. own random streams and image pools too: a resume restores each
            "rank_states": list(rank_states[1:]) if rank_states else [],
            "best": dict(self.best),
            "metrics": dict(metrics),
        }

    def _load(self, state: dict[str, Any]) -> None:
        if state["family"] != self.family.name:
            raise ValueError(f"checkpoint is a {state['family']} run, but model={self.config.model!r}")
        check_resume_unchanged(cfg.from_dict(state["config"]), self.config)
        saved_world = state.get("world_size")  # absent from checkpoints older than the check
        if saved_world is not None and saved_world != self.info.world_size:
            # batch_in_epoch counts one process's batches of its shard: with another split of the
            # data, skipping that many would train some of the epoch's images twice and others never
            raise ValueError(
                f"the checkpoint was trained by {saved_world} process(es), this run has {self.info.world_size}: "
                f"its position in the epoch is one process's share of a {saved_world}-way split of the data. "
                f"Resume with {saved_world} process(es) (torchrun --nproc_per_node={saved_world}), or start a new run.")
        if state["batch_in_epoch"] >= self.steps_per_epoch:
            # the loader would skip the whole epoch, and the loop would wait for its end forever
            raise ValueError(
                f"the checkpoint stopped {state['batch_in_epoch']} batches into an epoch, but this run's epochs "
                f"have {self.steps_per_epoch} batches: its dataset is not the run's; resume on the run's data")
        try:
            self._load_states(state)
        except (RuntimeError, KeyError, ValueError) as error:
            raise ValueError(
                f"the checkpoint does not fit the run this config builds ({type(error).__name__}: "
                f"{str(error).splitlines()[0]}). Options that shape the models, optimizers or precision "
                "(e.g. --ngf, --generator, --d-layers, --amp) cannot change on resume; resume with the "
                "run's own options, or start a new run.") from None

    def _load_states(self, state: dict[str, Any]) -> None:
        for name, module in self.family.modules().items():
            module.load_state_dict(state["models"][name])
        for name, module in self.family.sample_modules().items():
            if name in state.get("sample_models", {}):
                module.load_state_dict(state["sample_models"][name])
        for name, opt in self.family.optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sched in self.schedulers.items():
            sched.load_state_dict(state["schedulers"][name])
        for name, scaler in self.family.scalers().items():
            scaler.load_state_dict(state["scalers"][name])
        own = self._own_rank_state(state)
        self.family.load_extra_state(own["extra"] if own is not None else state["extra"])
        self.step, self.epoch, self.batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
        self.best = dict(state["best"])
        self._resume_state = state  # RNG is restored right before the loop, after all setup draws

    def _own_rank_state(self, state: dict[str, Any]) -> dict[str, Any] | None:
        """This rank's saved streams and image pools when it is not rank 0 (whose are the payload's
        own "rng" and "extra"); None for rank 0, or for a checkpoint that saved rank 0's alone."""
        others = state.get("rank_states") or []
        return others[self.info.rank - 1] if 0 < self.info.rank <= len(others) else None

    def _restore_rng(self) -> None:
        if self._resume_state is None:
            return
        own = self._own_rank_state(self._resume_state)
        if self.info.is_main:
            ckpt.restore_rng_state(self._resume_state["rng"])
        elif own is not None:
            ckpt.restore_rng_state(own["rng"])
        else:  # a checkpoint with rank 0's streams only: the other ranks go on with fresh, distinct ones
            seed_everything(self.config.seed + self.info.rank + 7919 * self.step)
        self._resume_state = None

    def _best_value(self, metrics: dict[str, float]) -> float | None:
        """The best_metric's value: an exact key, or a bare "fid" for the one "fid/<extractor>" key."""
        from effgan.metrics.features import metric_value

        try:
            return metric_value(metrics, self.config.best_metric)
        except ValueError:
            return None

    def _save(self, metrics: dict[str, float], evaluated: bool = False,
              rank_states: list[dict[str, Any]] | None = None) -> str | None:
        if not self.info.is_main:
            return None
        value = self._best_value(metrics)
        # A NaN (a diverged generator's FID or PSNR) is never the best: as the first record it would
        # also never be beaten, every comparison with NaN being false.
        better = value is not None and not math.isnan(value) and (
            self.best["value"] is None or math.isnan(self.best["value"])
            or (value < self.best["value"] if self.config.best_mode == "min" else value > self.best["value"]))
        if better:
            self.best = {"metric": self.config.best_metric, "value": float(value), "step": self.step}
        # Built after the best record is updated, so latest.pt carries the record best.pt will hold.
        payload = self._payload(metrics, rank_states)
        if better:
            # best.pt first: it records its own step and value, and a resumed run adopts that record
            # (_adopt_best_record), so a stop between the two writes loses nothing.
            ckpt.save_atomic(payload, os.path.join(self.ckpt_dir, ckpt.BEST))
        path = os.path.join(self.ckpt_dir, ckpt.LATEST)
        if self._newer_latest is not None:  # once, before the first checkpoint of a rewound run
            kept = keep_aside(*self._newer_latest)
            self._print(f"latest.pt held step {self._newer_latest[1]}, ahead of this run resumed at step "
                        f"{self._resumed_step}: kept as {kept}")
            self._newer_latest = None
        ckpt.save_atomic(payload, path)
        self._last_good_checkpoint = path
        if value is None and not (is_eval_metric(self.config.best_metric) and not evaluated):
            # (between evaluations an evaluation metric is simply not there yet: best.pt waits)
            if not self._warned_missing_best:
                warnings.warn(f"best_metric {self.config.best_metric!r} is not among the metrics "
                              f"{sorted(metrics)}; best.pt is not written", stacklevel=2)
                self._warned_missing_best = True
        return path

    def _adopt_best_record(self) -> None:
        """On resume, best.pt's own record (its step and value) is the one to beat.

        latest.pt's copy of it can be older: a run stopped between writing best.pt and latest.pt.
        """
        best_path = os.path.join(self.ckpt_dir, ckpt.BEST)
        if not os.path.isfile(best_path):
            return
        try:
            record = ckpt.read_best_record(best_path)
        except ValueError as error:
            warnings.warn(f"{error}; the next best checkpoint replaces it", stacklevel=2)
            return
        if record.get("metric") == self.config.best_metric and record.get("value") is not None:
            self.best = dict(record)

    def _check_finite_weights(self) -> None:
        """Refuse to write weights that are NaN or inf (a checkpoint must be one worth resuming from).

        The loss check sees losses computed before the last update, so an update that blew the
        weights up (a huge learning rate) would otherwise be saved as good. Collective under DDP
        (every rank agrees before any raises), like the loss check.
        """
        tensors = [(f"{name}.{pname}", p) for name, module in self.family.modules().items()
                   for pname, p in module.state_dict().items() if p.is_floating_point()]
        local_ok = not tensors or bool(torch.stack([torch.isfinite(p).all() for _, p in tensors]).all())
        if all_ranks_true(local_ok, self.info, self.device):  # one device sync for the whole check
            return
        bad = next((q for q, p in tensors if not bool(torch.isfinite(p).all())), "a weight on another rank")
        where = (f"the last good checkpoint is {self._last_good_checkpoint}"
                 if self._last_good_checkpoint else "no checkpoint was written yet")
        raise NonFiniteLossError(
            f"{bad} holds NaN or inf after step {self.step}; the checkpoint was not written "
            f"and {where}. Try a lower --lr, --amp none or --no-fused to narrow it down.")

    # --- bookkeeping --------------------------------------------------------------------------
    def _accumulate(self, losses: dict[str, torch.Tensor]) -> None:
        if self._log_window.steps == 0 and self._ckpt_window.steps == 0:
            self._check_best_metric(losses)
        values = torch.stack([v.float() for v in losses.values()])
        self._finite &= torch.isfinite(values).all()
        self._log_window.add(losses)
        self._ckpt_window.add(losses)
        self._step_losses = losses

    def _check_best_metric(self, losses: dict[str, torch.Tensor]) -> None:
        """Refuse, at the first step, a best_metric that no checkpoint would report: neither a loss of
        this model, nor an evaluation metric (checked at startup), nor possibly a metrics_fn's. The
        run would otherwise train to the end with best.pt never written."""
        name = self.config.best_metric
        if self.metrics_fn is not None or is_eval_metric(name) or name in losses:
            return
        raise ValueError(f"best_metric {name!r} is not a loss of a {self.config.model} run ({', '.join(losses)}) "
                         f"nor an evaluation metric; pick one of those (evaluation metrics need --eval-every)")

    def _check_finite(self) -> None:
        if all_ranks_true(bool(self._finite.item()), self.info, self.device):
            return
        bad = {k: float(v) for k, v in self._step_losses.items()}
        where = (f"the last good checkpoint is {self._last_good_checkpoint}" if self._last_good_checkpoint
                 else "no checkpoint was written yet")
        raise NonFiniteLossError(
            f"a loss became NaN or inf at or before step {self.step} (latest values: {bad}); "
            f"training stopped and {where}. Try a lower --lr, --amp none or --no-fused to narrow it down.")

    def _lrs(self) -> list[float]:
        return [float(group["lr"]) for opt in self.family.optimizers().values() for group in opt.param_groups]

    def _log(self, bar) -> None:
        self._check_finite()
        means = self._log_window.close()
        self._last_losses = means
        lrs = {f"lr_{k}": s.get_last_lr()[0] for k, s in self.schedulers.items()}
        self.logger.scalars({**means, **lrs}, self.step, self.epoch)
        if bar is not None:
            bar.set_postfix({k.removeprefix("loss_"): f"{v:.3f}" for k, v in means.items() if k.startswith("loss_")},
                            refresh=False)

    def _eval_step(self, final: bool) -> bool:
        """Whether this step evaluates: every eval_every steps and at the end (the same on every rank)."""
        every = self.config.eval_every
        return bool(every) and (final or self.step % every == 0)

    def _checkpoint_step(self) -> bool:
        every = self.config.checkpoint_every
        return (bool(every) and self.step % every == 0) or self._eval_step(final=False)

    def _checkpoint(self, final: bool = False) -> str | None:
        """Collective under DDP (every rank calls it at the same step); rank 0 evaluates and writes."""
        self._check_finite()
        self._check_finite_weights()
        self._last_checkpoint_step = self.step
        metrics = self._ckpt_window.close()
        evaluated = self._eval_step(final)
        # ranks 1..'s own state (random streams, image pools), taken here where rank 0's own is taken
        # too (in _payload: its evaluation below forks the random streams, so nothing moves them)
        rank_states = None
        if self.info.enabled:
            rank_states = gather_to_main(None if self.info.is_main else self._rank_state(), self.info)
        if self.info.is_main:
            metrics.update(self._evaluate(evaluated))
        self.logger.scalars(metrics, self.step, self.epoch, kind="checkpoint")
        return self._save(metrics, evaluated, rank_states)

    def _rank_state(self) -> dict[str, Any]:
        return on_cpu({"rng": ckpt.capture_rng_state(), "extra": self.family.extra_state()})

    def _evaluate(self, evaluated: bool) -> dict[str, float]:
        """The metrics_fn's values at every checkpoint, plus the built-in evaluation's on eval steps."""
        hooks = [self.metrics_fn] if self.metrics_fn is not None else []
        if evaluated and self.eval_hook is not None:
            hooks.append(self.eval_hook)
        results: dict[str, float] = {}
        for hook in hooks:
            with self._forked_rng(), self.family.eval_mode():
                values = {k: float(v) for k, v in hook(self.family).items()}
            results.update(values)
            if hook is self.eval_hook:
                self._print(f"eval at step {self.step}: {summary(values)}")
        return results

    def _forked_rng(self):
        devices = [self.device] if self.device.type == "cuda" else []
        return torch.random.fork_rng(devices=devices)

    def _write_samples(self, tag: str) -> str | None:
        if not self.info.is_main:
            return None
        with self._forked_rng():  # sampling must not shift the training random streams
            batches, per_row = self.family.sample_grid()
        grid = image_grid(torch.cat(batches), nrow=per_row)
        path = os.path.join(self.run_dir, "samples", f"{tag}.png")
        self.logger.image("samples", grid, self.step, path=path)
        return path

    # --- the loop -----------------------------------------------------------------------------
    def _print(self, message: str) -> None:
        if self.info.is_main:
            from tqdm import tqdm

            tqdm.write(message, file=sys.stdout)

    def _describe(self) -> str:
        c = self.config
        what = {"cyclegan": f"{c.cyclegan.generator} + {c.cyclegan.discriminator}",
                "dcgan": f"dcgan-{c.gan.arch}", "cgan": f"cgan-{c.gan.arch}", "stylegan": "stylegan"}[c.model]
        return (f"effgan.train: {c.model} ({what}, ngf {c.ngf}) on {c.dataset} "
                f"{self.data.image_size}x{self.data.image_size}, {len(self.dataset)} images, batch {c.batch_size}"
                f"{f' x {self.info.world_size} processes' if self.info.enabled else ''}, device {self.device}\n"
                f"  {self.total_steps} steps ({self.steps_per_epoch} per epoch), starting at step {self.step}\n"
                f"{self._describe_eval()}"
                f"{cuda_graphs_hint(c, self.device)}"
                f"  run directory: {self.run_dir}")

    def _describe_eval(self) -> str:
        c = self.config
        if not c.eval_every:
            return ""
        extractor = getattr(getattr(self.eval_hook, "extractor", None), "name", None)
        return (f"  evaluation every {c.eval_every} steps and at the end, {c.eval_items} items"
                f"{f', FID/KID with {extractor}' if extractor else ''}; best.pt by {c.best_metric} ({c.best_mode})\n")

    def run(self) -> RunResult:
        from tqdm import tqdm

        config = self.config
        self._print(self._describe())
        bar = tqdm(total=self.total_steps, initial=min(self.step, self.total_steps), unit="it", dynamic_ncols=True,
                   disable=not (self.info.is_main and config.progress), desc=config.model)
        stopped_by = None
        sample_path = None
        self._restore_rng()
        if self.step >= self.total_steps:
            schedule = self.total_epochs * self.steps_per_epoch
            more = ("a larger --max-steps continues it within its schedule" if self.step < schedule
                    else f"it has finished its schedule of {schedule} steps")
            self._print(f"the run is at step {self.step} of {self.total_steps}: nothing to train ({more})")
        try:
            with catch_stop_signals() as stop:
                while self.epoch < self.total_epochs and self.step < self.total_steps:
                    self._start_epoch()
                    for batch in self.loader:
                        losses = self.family.train_step(batch, self.step)
                        self.step += 1
                        self.batch_in_epoch += 1
                        bar.update(1)
                        self._accumulate(losses)
                        if self.step % config.log_every == 0:
                            self._log(bar)  # with the epoch and lr these steps trained with
                        if self.batch_in_epoch == self.steps_per_epoch:
                            self._end_epoch()  # before any checkpoint, which then starts the next epoch
                        if self._checkpoint_step():
                            self._checkpoint(final=self.step >= self.total_steps)
                        if any_rank_true(stop.requested, self.info, self.device) or self.step >= self.total_steps:
                            break
                    if any_rank_true(stop.requested, self.info, self.device):
                        stopped_by = stop.name or "signal"
                        break
                # the end (or a stop request): one last checkpoint, unless it was just written; the
                # end of training also evaluates, a stop request does not (it should stop quickly)
                if self._last_checkpoint_step != self.step:
                    self._checkpoint(final=stopped_by is None)
                if stopped_by is not None:
                    self._print(f"stopped by {stopped_by} at step {self.step}; "
                                f"resume with: python -m effgan.train --resume {self.run_dir}")
                elif not self._nothing_to_train:
                    sample_path = self._write_samples("final")
        finally:
            bar.close()
            self.logger.close()
        if self._log_window.steps:
            self._last_losses = self._log_window.means()
        latest = os.path.join(self.ckpt_dir, ckpt.LATEST)
        if sample_path is not None:
            self._print(f"done: {self.step} steps. final samples: {sample_path}\n  checkpoint: {latest}")
        return RunResult(run_dir=self.run_dir, step=self.step, epoch=self.epoch,
                         checkpoint=latest if self.info.is_main else None, sample_grid=sample_path,
                         losses=self._last_losses, stopped_by=stopped_by)

    def _start_epoch(self) -> None:
        epoch = self.epoch
        self.sampler.set_position(epoch, self.batch_in_epoch * self.config.batch_size)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        # worker seeds derive from the loader's own generator: a function of (seed, epoch) only
        self.loader.generator.manual_seed(self.config.seed * 100003 + epoch)

    def _end_epoch(self) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        lrs = self._lrs()
        for sched in self.schedulers.values():
            sched.step()
        if self._lrs() != lrs:
            self.family.lr_changed()
        if self.epoch % self.config.sample_every == 0 and self.epoch < self.total_epochs:
            self._write_samples(f"epoch_{self.epoch:04d}")
