"""The training configuration: dataclasses, their defaults per model family, and YAML/TOML files.

A run is described by one :class:`TrainConfig`. Options that every family shares sit on it
directly; options that mean something to one family only sit in its section
(:class:`CycleGANOptions`, :class:`GANOptions` for dcgan and cgan, :class:`StyleGANOptions`).
Fields left at ``None`` take the family's default in :func:`resolve`, so that one config class
serves a 64² CycleGAN with batch 1 and a 32² DCGAN with batch 64 alike.

Every field carries its ``--help`` text in ``metadata["help"]``; the command line is generated
from these dataclasses (see ``cli.py``), so an option documented here is an option on the CLI.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import re
import tomllib
import types
import typing
import warnings
from dataclasses import dataclass, field
from typing import Any

import yaml

from effgan.models.init import INIT_KINDS

FAMILIES = ("cyclegan", "dcgan", "cgan", "stylegan")
AMP_MODES = ("none", "bf16", "fp16")
LR_POLICIES = ("linear", "step", "cosine", "constant")
CYCLEGAN_GENERATORS_FIXED = ("resnet6", "resnet9", "unet128", "unet256")
DISCRIMINATORS = ("patchgan", "pixelgan")
GAN_MODES = ("lsgan", "vanilla")
GAN_ARCHS = ("classic", "shallow", "deep")
INITS = (*INIT_KINDS, "none")  # "none": the model's own initialisation


def _opt(default: Any, help: str, choices: tuple | None = None, aliases: tuple[str, ...] = (), **kw: Any) -> Any:
    """A dataclass field whose help text and allowed values drive the CLI and validation.

    aliases: extra command-line spellings (e.g. "--diffaug") for the same option.
    """
    meta: dict[str, Any] = {"help": help}
    if choices is not None:
        meta["choices"] = choices
    if aliases:
        meta["aliases"] = aliases
    return field(default=default, metadata=meta, **kw)


@dataclass
class CycleGANOptions:
    generator: str = _opt("resnet6", "CycleGAN generator: resnet6, resnet9, unet128, unet256 or effnet-*.")
    discriminator: str = _opt("patchgan", "CycleGAN discriminator.", DISCRIMINATORS)
    d_layers: int = _opt(3, "Number of strided layers in the PatchGAN discriminator.")
    gan_mode: str = _opt("lsgan", "Adversarial loss: least squares (lsgan) or BCE (vanilla).", GAN_MODES)
    lambda_cycle: float = _opt(10.0, "Weight of the cycle-consistency L1 loss (both directions).")
    lambda_identity: float = _opt(
        0.5, "Identity loss weight as a fraction of lambda_cycle (0.5 means 0.5*lambda_cycle); 0 disables it.")
    pool_size: int = _opt(50, "Number of past fakes kept per discriminator (0 disables the pool).")


@dataclass
class GANOptions:
    """Options of the DCGAN family; cgan is the same networks conditioned on class labels."""

    arch: str = _opt("shallow", "DCGAN architecture (dcgan-<arch> in the model registry).", GAN_ARCHS)
    label_smoothing: float = _opt(0.9, "Target for real images in the D loss (one-sided smoothing; 1 disables).")
    noisy_labels: float = _opt(
        0.0, "Width of uniform noise on D targets: real ~ U(s-w, s), fake ~ U(0, w); 0 disables.")
    g_steps: int = _opt(1, "Generator updates per step (G:D update ratio, with d_steps).")
    d_steps: int = _opt(1, "Discriminator updates per step (G:D update ratio, with g_steps).")


@dataclass
class StyleGANOptions:
    r1_gamma: float = _opt(1.0, "R1 gradient penalty weight gamma (0 disables).")
    r1_interval: int = _opt(16, "Apply R1 every this many steps (lazy regularisation), scaled by the interval.")
    mixing_prob: float = _opt(0.9, "Probability of style mixing for a generated batch.")
    ema_beta: float = _opt(0.999, "Decay of the exponential moving average of generator weights (0 disables).")
    truncation: float = _opt(1.0, "Truncation psi used for sample grids during training.")
    mapping_layers: int = _opt(4, "Layers of the z -> w mapping network.")


@dataclass
class TrainConfig:
    # what to train
    model: str = _opt("cyclegan", "Model family to train.", FAMILIES)
    dataset: str | None = _opt(
        None, "Dataset name ('cans', 'digits': always the generated sets; ./cans reaches a folder of that "
              "name) or a folder (images, trainA/trainB, or MNIST IDX files); default: cans for cyclegan, "
              "digits otherwise.")
    image_size: int | None = _opt(
        None, "Training image size; default 64 (cyclegan), 28 (dcgan/cgan shallow/deep), 32 otherwise.")
    train_length: int | None = _opt(
        None, "Images generated for the embedded datasets (cans, digits); default 200 (cans), 6000 (digits).")
    augment: bool = _opt(True, "Random crop jitter (plus flips for unpaired data) on training images.")
    batch_size: int | None = _opt(None, "Batch size per process; default 1 (cyclegan), 64 (dcgan/cgan), 32 (stylegan).")
    ngf: int | None = _opt(None, "Generator base width; default 16 (cyclegan), 32 (dcgan/cgan/stylegan).")
    ndf: int | None = _opt(None, "Discriminator base width; default as ngf.")
    latent_dim: int | None = _opt(None, "Latent size for dcgan/cgan/stylegan; default 100 (dcgan/cgan), 128 (stylegan).")
    init: str = _opt("normal", "Weight init (effgan.models.init.init_weights kind); 'none' keeps the model's own.",
                     INITS)
    init_gain: float = _opt(0.02, "Std/gain of the weight init.")
    diffaugment: str = _opt(
        "", "DiffAugment policy applied to every discriminator input (real and fake, D and G updates), "
            "a comma-separated subset of color,translation,cutout in that order, e.g. "
            "'color,translation,cutout'; '' disables. Helps most on small datasets.",
        aliases=("--diffaug",))
    # how long
    epochs: int | None = _opt(None, "Epochs at the initial learning rate; default 1 (cyclegan), 3 (dcgan/cgan), 5 (stylegan).")
    epochs_decay: int | None = _opt(
        None, "Epochs over which the learning rate then decays to zero; default = epochs (cyclegan), 0 otherwise.")
    max_steps: int | None = _opt(None, "Stop after this many optimisation steps in total (resume-aware); default: no cap.")
    # optimiser and schedule
    lr: float | None = _opt(None, "Adam learning rate; default 2e-4 (0.002 for stylegan).")
    beta1: float | None = _opt(None, "Adam beta1; default 0.5 (0.0 for stylegan).")
    beta2: float | None = _opt(None, "Adam beta2; default 0.999 (0.99 for stylegan).")
    lr_policy: str = _opt("linear", "Schedule after the constant epochs.", LR_POLICIES)
    lr_step_epochs: int = _opt(1, "For lr_policy=step: multiply the lr by 0.1 every this many decay epochs.")
    # reproducibility and hardware
    seed: int = _opt(0, "Random seed for python, numpy, torch and the data order.")
    deterministic: bool = _opt(False, "Use deterministic algorithms only (torch.use_deterministic_algorithms).")
    device: str = _opt("auto", "Device: auto (cuda if available), cpu, cuda or cuda:N.")
    num_workers: int = _opt(0, "DataLoader worker processes (items are seeded per index, so any count is exact).")
    cpu_threads: int | None = _opt(
        None, "torch intra-op threads on CPU; default half the cores per process (small GAN convs gain "
              "little from more, and oversubscribed cores slow them down many times).")
    fused: bool = _opt(True, "Use effgan's fused modules (--no-fused builds the plain torch models).")
    impl: str = _opt("auto", "Kernel backend for fused modules.", ("auto", "triton", "cpp", "ref"))
    amp: str = _opt(
        "none", "Mixed precision autocast dtype: bf16, or fp16 with a GradScaler per optimiser (its state is "
                "checkpointed and restored on resume). Both run on CPU and CUDA; a torch that cannot autocast "
                "to the dtype on the device is an error at startup.", AMP_MODES)
    channels_last: bool = _opt(False, "Keep models and inputs in channels_last memory format.")
    compile: bool = _opt(False, "torch.compile the models.")
    compile_backend: str = _opt("inductor", "torch.compile backend.")
    cuda_graphs: bool = _opt(False, "Capture each fixed-shape training phase in a CUDA graph and replay it (CUDA "
                                    "only; cyclegan, dcgan and cgan; not with --amp fp16 or --diffaugment).")
    # run directory, logs, checkpoints
    out_dir: str = _opt("runs", "Parent folder of run directories.")
    run_name: str | None = _opt(None, "Run directory name; default <model>-<timestamp>.")
    resume: str | None = _opt(None, "Run directory or checkpoint file to continue from.")
    checkpoint_every: int = _opt(200, "Save a checkpoint every this many steps (and always at the end); 0: end only.")
    log_every: int = _opt(10, "Log scalars (JSONL, TensorBoard, progress bar) every this many steps.")
    sample_every: int = _opt(1, "Write a sample grid every this many epochs (and always at the end).")
    num_samples: int = _opt(
        6, "Sample grid size: cyclegan shows this many A and B images (real | fake | reconstruction); "
           "dcgan/stylegan an n x n grid; cgan n per class.")
    best_metric: str = _opt(
        "loss_G", "Metric that selects best.pt: a checkpoint's mean loss (loss_G; loss_D_A, loss_D_B for cyclegan, "
                  "loss_D for the others; ...) or, with "
                  "--eval-every, an evaluation metric (paired_ssim_ab, cycle_mae_a, fid_ab, fid, kid_mean, "
                  "classifier_acc/generated, ...); fid/kid names match whatever extractor tags them.")
    best_mode: str = _opt("min", "Whether a smaller or larger best_metric is better.", ("min", "max"))
    # evaluation during training
    eval_every: int = _opt(
        0, "Evaluate the generators every this many steps and at the end (0: off). Each evaluation is "
           "also a checkpoint: cyclegan gets cycle/identity MAE, FID/KID per direction and, on cans, "
           "paired MAE/PSNR/SSIM against the ground truth; dcgan/stylegan FID/KID; cgan also the "
           "classifier score. Logged like the losses (metrics.jsonl, TensorBoard).")
    eval_items: int = _opt(200, "Test items (cyclegan) or real and generated images (others) per evaluation.")
    eval_train_items: int = _opt(
        1000, "Real training images the metric networks (feature net, cgan classifier) learn from.")
    eval_train_steps: int = _opt(
        300, "Training steps of the metric networks; they are trained once and cached in <run>/feature_nets, "
             "so a resumed run reuses them.")
    fid_weights: str | None = _opt(
        None, "Local FID InceptionV3 weights (a state_dict file) for FID/KID; never downloaded. Default: "
              "effgan's small feature net trained on the dataset (its name tags every FID/KID key; only "
              "numbers with the same tag compare).")
    tensorboard: bool = _opt(True, "Write TensorBoard event files (skipped with a warning if unavailable).")
    progress: bool = _opt(True, "Show a tqdm progress bar.")
    # family sections
    cyclegan: CycleGANOptions = field(default_factory=CycleGANOptions)
    gan: GANOptions = field(default_factory=GANOptions)
    stylegan: StyleGANOptions = field(default_factory=StyleGANOptions)


SECTIONS = {"cyclegan": CycleGANOptions, "gan": GANOptions, "stylegan": StyleGANOptions}

# Options that moved out of a section to the top level: (section, name) -> top-level name. Old
# config files and checkpoints still load (resume, evaluate), with a warning.
MOVED_OPTIONS = {("stylegan", "diffaugment"): "diffaugment"}

# Fields whose None default is filled per family by resolve().
_FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "cyclegan": dict(dataset="cans", image_size=64, batch_size=1, ngf=16, latent_dim=0, epochs=1,
                     lr=2e-4, beta1=0.5, beta2=0.999),
    "dcgan": dict(dataset="digits", batch_size=64, ngf=32, latent_dim=100, epochs=3, epochs_decay=0,
                  lr=2e-4, beta1=0.5, beta2=0.999),
    "stylegan": dict(dataset="digits", batch_size=32, ngf=32, latent_dim=128, epochs=5, epochs_decay=0,
                     lr=2e-3, beta1=0.0, beta2=0.99),
}
_FAMILY_DEFAULTS["cgan"] = _FAMILY_DEFAULTS["dcgan"]


def section_of(field_name: str) -> str | None:
    """The section that owns a field name, or None for a top-level field."""
    for section, cls in SECTIONS.items():
        if field_name in {f.name for f in dataclasses.fields(cls)}:
            return section
    return None


def resolve(config: TrainConfig) -> TrainConfig:
    """Return a copy with every family default filled in and all values validated."""
    validate(config)
    resolved = dataclasses.replace(config)
    for name, value in _FAMILY_DEFAULTS[config.model].items():
        if getattr(resolved, name) is None:
            setattr(resolved, name, value)
    if resolved.image_size is None:  # the 28x28 DCGANs exist at one size only
        resolved.image_size = 28 if config.model in ("dcgan", "cgan") and config.gan.arch != "classic" else 32
    if resolved.train_length is None:
        resolved.train_length = 200 if resolved.dataset == "cans" else 6000
    if resolved.ndf is None:
        resolved.ndf = resolved.ngf
    if resolved.epochs_decay is None:
        resolved.epochs_decay = resolved.epochs
    validate(resolved)
    return resolved


def _check_choices(obj: Any, where: str) -> None:
    for f in dataclasses.fields(obj):
        choices = f.metadata.get("choices")
        value = getattr(obj, f.name)
        if choices is not None and value not in choices:
            raise ValueError(f"{where}{f.name} must be one of {list(choices)}, got {value!r}")


def validate(config: TrainConfig) -> None:
    """Raise ValueError naming the option for values that cannot work."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_choices(config, "")
    for section in SECTIONS:
        _check_choices(getattr(config, section), f"{section}.")
    gain = config.init_gain
    if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not math.isfinite(gain) or gain <= 0:
        raise ValueError(f"init_gain must be a positive finite number, got {gain!r}")
    positive = ["image_size", "batch_size", "ngf", "ndf", "lr"]
    for name in positive:
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")
    for name in ["epochs", "epochs_decay", "num_workers", "checkpoint_every", "eval_every"]:
        value = getattr(config, name)
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    for name in ["max_steps", "train_length"]:  # None: the default; 0 would mean nothing at all
        value = getattr(config, name)
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if config.latent_dim is not None and config.latent_dim < (0 if config.model == "cyclegan" else 1):
        # cyclegan has no latent (its default is 0); the others draw z of this size
        raise ValueError(f"latent_dim must be >= 1 for {config.model}, got {config.latent_dim}")
    if config.epochs is not None and config.epochs_decay is not None and config.epochs + config.epochs_decay < 1:
        raise ValueError(f"epochs + epochs_decay must be >= 1 (a run of no epochs trains nothing), "
                         f"got {config.epochs} + {config.epochs_decay}")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or not 0 <= config.seed < 2 ** 32:
        # numpy's and the loaders' seeds are derived from it (seed * 100003 + epoch must fit in 64 bits)
        raise ValueError(f"seed must be an int in [0, 2**32), got {config.seed!r}")
    for name in ["beta1", "beta2"]:  # Adam's betas
        value = getattr(config, name)
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    if config.cpu_threads is not None and config.cpu_threads < 1:
        raise ValueError(f"cpu_threads must be >= 1, got {config.cpu_threads}")
    for name in ["log_every", "sample_every", "num_samples", "lr_step_epochs", "eval_train_steps"]:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(config, name)}")
    for name in ["eval_items", "eval_train_items"]:  # FID/KID need covariances, so two images at least
        if getattr(config, name) < 2:
            raise ValueError(f"{name} must be >= 2, got {getattr(config, name)}")
    _check_diffaugment(config)
    _check_compile_backend(config)
    gen = config.cyclegan.generator
    if gen not in CYCLEGAN_GENERATORS_FIXED and not gen.startswith("effnet-"):
        raise ValueError(
            f"cyclegan.generator must be one of {list(CYCLEGAN_GENERATORS_FIXED)} or effnet-*, got {gen!r}")
    _check_patchgan_fits(config)
    _check_image_size_fits(config)
    for name in ("lambda_cycle", "lambda_identity"):
        value = getattr(config.cyclegan, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"cyclegan.{name} must be a finite number >= 0, got {value!r}")
    if config.cyclegan.pool_size < 0:
        raise ValueError(f"cyclegan.pool_size must be >= 0, got {config.cyclegan.pool_size}")
    if not 0.0 < config.gan.label_smoothing <= 1.0:
        raise ValueError(f"gan.label_smoothing must be in (0, 1], got {config.gan.label_smoothing}")
    if config.gan.g_steps < 1 or config.gan.d_steps < 1:
        raise ValueError("gan.g_steps and gan.d_steps must be >= 1")
    if config.stylegan.r1_interval < 1:
        raise ValueError(f"stylegan.r1_interval must be >= 1, got {config.stylegan.r1_interval}")
    if config.lr is not None and not math.isfinite(config.lr):
        raise ValueError(f"lr must be a finite number > 0, got {config.lr}")
    if not 0.0 <= config.gan.noisy_labels <= config.gan.label_smoothing:
        # real targets ~ U(s - w, s), fake ~ U(0, w): both stay in [0, 1] only for 0 <= w <= s
        raise ValueError(f"gan.noisy_labels must be in [0, gan.label_smoothing = {config.gan.label_smoothing}], "
                         f"got {config.gan.noisy_labels}")
    if not (math.isfinite(config.stylegan.r1_gamma) and config.stylegan.r1_gamma >= 0):
        raise ValueError(f"stylegan.r1_gamma must be a finite number >= 0, got {config.stylegan.r1_gamma}")
    if not math.isfinite(config.stylegan.truncation):
        raise ValueError(f"stylegan.truncation must be finite, got {config.stylegan.truncation}")
    if not 0.0 <= config.stylegan.mixing_prob <= 1.0:
        raise ValueError(f"stylegan.mixing_prob must be in [0, 1], got {config.stylegan.mixing_prob}")
    if not 0.0 <= config.stylegan.ema_beta < 1.0:
        raise ValueError(f"stylegan.ema_beta must be in [0, 1), got {config.stylegan.ema_beta}")


def _check_compile_backend(config: TrainConfig) -> None:
    """A misspelt backend fails here, naming the option, not deep inside the first compiled step."""
    if not isinstance(config.compile_backend, str) or not config.compile_backend:
        raise ValueError(f"compile_backend must be a torch.compile backend name, got {config.compile_backend!r}")
    if not config.compile:
        return  # unused; importing dynamo to check it would cost a second
    import torch._dynamo

    known = torch._dynamo.list_backends(exclude_tags=())
    if config.compile_backend not in known:
        raise ValueError(f"compile_backend {config.compile_backend!r} is not a torch.compile backend here; "
                         f"known: {', '.join(sorted(b for b in known if 'TESTING' not in b))}")


def _check_patchgan_fits(config: TrainConfig) -> None:
    """The PatchGAN's output grid must not vanish: each of its d_layers halves the image (the first
    conv too, the last trunk conv does not), and the last trunk conv and the head, 4x4 with padding
    1, take one pixel each."""
    opts = config.cyclegan
    if config.model != "cyclegan" or opts.discriminator != "patchgan" or config.image_size is None:
        return
    if opts.d_layers < 1:
        raise ValueError(f"cyclegan.d_layers must be >= 1, got {opts.d_layers}")

    def output_size(layers: int) -> int:
        return (config.image_size >> layers) - 2  # repeated floor halvings, then two 4x4 convs with padding 1

    if output_size(opts.d_layers) < 1:
        fits = max((n for n in range(1, 12) if output_size(n) >= 1), default=0)
        raise ValueError(f"cyclegan.d_layers={opts.d_layers} leaves no PatchGAN output at image_size "
                         f"{config.image_size} (at most {fits} layers fit)")


def _check_image_size_fits(config: TrainConfig) -> None:
    """Sizes the chosen networks cannot take, refused before a run folder exists (the networks
    themselves would only refuse the first batch)."""
    size = config.image_size
    if size is None:
        return
    if config.model in ("dcgan", "cgan"):
        from effgan.models.dcgan import IMAGE_SIZES
        from effgan.models.dcgan_mnist import IMAGE_SIZE

        if config.gan.arch != "classic" and size != IMAGE_SIZE:
            raise ValueError(f"image_size must be {IMAGE_SIZE} for gan.arch={config.gan.arch!r} (the 28x28 "
                             f"DCGAN), got {size}; gan.arch='classic' takes {list(IMAGE_SIZES)}")
        if config.gan.arch == "classic" and size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {list(IMAGE_SIZES)} for gan.arch='classic', got {size}")
    elif config.model == "stylegan":
        from effgan.models.stylegan import RESOLUTIONS

        if size not in RESOLUTIONS:
            raise ValueError(f"image_size must be one of {list(RESOLUTIONS)} for stylegan, got {size}")
    elif config.model == "cyclegan":
        multiple, minimum = _cyclegan_generator_sides(config.cyclegan.generator)
        if size % multiple or size < minimum:
            at_least = f" of at least {minimum}" if minimum > multiple else ""
            raise ValueError(f"image_size must be a multiple of {multiple}{at_least} for "
                             f"cyclegan.generator={config.cyclegan.generator!r}, got {size}")


# The section of options each model family reads; the others' options it would ignore.
SECTION_FAMILIES = {"cyclegan": ("cyclegan",), "gan": ("dcgan", "cgan"), "stylegan": ("stylegan",)}


def check_options_apply(config: TrainConfig) -> None:
    """Refuse an option the chosen networks would ignore (the run would silently train without it):
    a base width of a network with fixed or compound-scaled widths, cyclegan's latent_dim, the
    PatchGAN's d_layers with another discriminator, another family's section options.

    For new runs only (not in validate): a checkpoint whose config holds such a value, from before
    this check, must still load. The defaults equal what those networks have, so a resumed run
    (whose saved config holds the resolved values) passes anyway.
    """
    default = _FAMILY_DEFAULTS[config.model]["ngf"]
    fixed_gan = config.model in ("dcgan", "cgan") and config.gan.arch != "classic"
    effnet = config.model == "cyclegan" and config.cyclegan.generator.startswith("effnet-")
    for name, ignored, why in (
            ("ngf", fixed_gan, f"gan.arch={config.gan.arch!r} has fixed widths (gan.arch='classic' takes them)"),
            ("ndf", fixed_gan, f"gan.arch={config.gan.arch!r} has fixed widths (gan.arch='classic' takes them)"),
            ("ngf", effnet, f"the {config.cyclegan.generator} generator's widths come from its compound scaling")):
        value = getattr(config, name)
        if ignored and value is not None and value != default:
            raise ValueError(f"{name}={value} would be ignored: {why}; drop it")
    if not config.compile and config.compile_backend != TrainConfig().compile_backend:
        raise ValueError(f"compile_backend={config.compile_backend!r} would be ignored: it is the backend of "
                         f"compile=True, which is off; add --compile or drop it")
    if not config.fused and config.impl in ("triton", "cpp"):
        # the plain torch builds run no fused kernel (their DiffAugment is the reference), so the
        # run would silently train without the backend asked for
        raise ValueError(f"impl={config.impl!r} would be ignored: fused=False builds plain torch modules, which "
                         f"run no fused kernel; drop one of them")
    if config.model == "cyclegan" and config.latent_dim not in (None, 0):
        raise ValueError(f"latent_dim={config.latent_dim} would be ignored: cyclegan translates images and "
                         f"draws no latent; drop it")
    opts = config.cyclegan
    if config.model == "cyclegan" and opts.discriminator != "patchgan" and opts.d_layers != CycleGANOptions().d_layers:
        raise ValueError(f"cyclegan.d_layers={opts.d_layers} would be ignored: it sets the PatchGAN's depth and "
                         f"cyclegan.discriminator={opts.discriminator!r}; drop it")
    for section, families in SECTION_FAMILIES.items():
        if config.model in families:
            continue
        defaults, given = SECTIONS[section](), getattr(config, section)
        changed = [f"{section}.{f.name}={getattr(given, f.name)!r}" for f in dataclasses.fields(defaults)
                   if getattr(given, f.name) != getattr(defaults, f.name)]
        if changed:
            raise ValueError(f"{', '.join(changed)} would be ignored: model {config.model!r} reads none of the "
                             f"{section} options; drop {'it' if len(changed) == 1 else 'them'}")


def _cyclegan_generator_sides(generator: str) -> tuple[int, int]:
    """(multiple, minimum) of the image sides a CycleGAN generator takes (its forward checks the same)."""
    from effgan.models.efficientnet import TOTAL_STRIDE as EFFNET_STRIDE
    from effgan.models.resnet import TOTAL_STRIDE as RESNET_STRIDE
    from effgan.models.resnet import min_side

    if generator.startswith("unet"):
        multiple = int(generator[len("unet"):])  # unet128: 7 stride-2 levels, 2**7
        return multiple, multiple
    if generator.startswith("resnet") or generator.startswith("effnet-resnet"):
        return RESNET_STRIDE, min_side("reflect")  # the training builds pad by reflection
    return EFFNET_STRIDE, 2 * EFFNET_STRIDE  # the effnet U-Nets


def _check_diffaugment(config: TrainConfig) -> None:
    if not isinstance(config.diffaugment, str):
        raise ValueError(f"diffaugment must be a string such as 'color,translation,cutout', "
                         f"got {config.diffaugment!r}")
    from effgan.ops.diff_augment import parse_policy

    try:
        parse_policy(config.diffaugment)
    except ValueError as error:
        raise ValueError(f"diffaugment {config.diffaugment!r} is not a valid policy: {error}") from None
    if config.diffaugment and config.cuda_graphs:
        # the augmentation draws its random parameters on the host at every call; a captured
        # graph would replay the first draw forever
        raise ValueError("diffaugment cannot be combined with cuda_graphs; drop one of them")


# ----------------------------------------------------------------------------- dict and file forms

def to_dict(config: TrainConfig) -> dict[str, Any]:
    """Nested dict of primitives (what config.yaml and checkpoints store)."""
    return dataclasses.asdict(config)


def from_dict(data: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """Overlay a (possibly partial) dict on ``base``.

    Accepts the nested form written by :func:`to_dict` and, for convenience in hand-written
    files, section options at the top level (``lambda_cycle: 5``) and dashed keys.
    """
    if not isinstance(data, dict):
        raise TypeError(f"config data must be a mapping, got {type(data).__name__}")
    config = dataclasses.replace(base) if base is not None else TrainConfig()
    # copy the sections so the base is never mutated
    for section in SECTIONS:
        setattr(config, section, dataclasses.replace(getattr(config, section)))
    top_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for raw_key, value in data.items():
        key = raw_key.replace("-", "_")
        if key in SECTIONS:
            if not isinstance(value, dict):
                raise ValueError(f"config section {key!r} must be a mapping, got {type(value).__name__}")
            target = getattr(config, key)
            names = {f.name for f in dataclasses.fields(target)}
            for sub_raw, sub_value in value.items():
                sub = sub_raw.replace("-", "_")
                if (key, sub) in MOVED_OPTIONS:
                    _migrate_moved(config, data, key, sub, sub_value)
                    continue
                if sub not in names:
                    raise ValueError(f"unknown option {key}.{sub_raw} in config")
                setattr(target, sub, _typed(type(target), sub, sub_value, f"{key}.{sub}"))
        elif key in top_fields:
            setattr(config, key, _typed(TrainConfig, key, value, key))
        elif (section := section_of(key)) is not None:
            target = getattr(config, section)
            setattr(target, key, _typed(type(target), key, value, f"{section}.{key}"))
        else:
            raise ValueError(f"unknown option {raw_key!r} in config")
    return config


@functools.cache
def _field_types(owner: type) -> dict[str, Any]:
    return typing.get_type_hints(owner)


def _typed(owner: type, name: str, value: Any, label: str) -> Any:
    """value checked against the option's declared type (an int given for a float is converted).

    Config files and dicts bypass argparse's conversions, so a quoted number or a "no" for a flag
    must fail here, naming the option, rather than deep inside a run.
    """
    hint = _field_types(owner)[name]
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    if bool in allowed:
        if isinstance(value, bool):
            return value
    elif int in allowed:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif float in allowed:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif str in allowed:
        if isinstance(value, str):
            return value
    else:
        return value  # a structured option: validated where it is used
    wanted = " or ".join(t.__name__ for t in allowed)
    raise ValueError(f"{label} must be {wanted}, got {value!r} ({type(value).__name__})")


def _migrate_moved(config: TrainConfig, data: dict[str, Any], section: str, name: str, value: Any) -> None:
    """Apply an option found at its old place (e.g. stylegan.diffaugment) to its new top-level field."""
    new = MOVED_OPTIONS[(section, name)]
    given = {k.replace("-", "_"): v for k, v in data.items()}
    if new in given and given[new] != value:
        raise ValueError(f"config sets both {section}.{name}={value!r} and {new}={given[new]!r}; "
                         f"{section}.{name} moved to the top level: keep only {new}")
    if value != getattr(TrainConfig(), new):  # every older checkpoint carries the default: no noise for it
        warnings.warn(f"config option {section}.{name} is now the top-level option {new} "
                      f"(--{new.replace('_', '-')}); using {value!r}", FutureWarning, stacklevel=3)
    setattr(config, new, value)


class _YamlLoader(yaml.SafeLoader):
    """safe_load, but with YAML 1.2's floats: PyYAML (YAML 1.1) reads an unquoted 1e-3 as a string,
    so `lr: 1e-3` would be refused as text. A quoted "1e-3" stays a string."""


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                  |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                  |\.[0-9_]+(?:[eE][-+][0-9]+)?
                  |[-+]?\.(?:inf|Inf|INF)
                  |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def load_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML (.yaml/.yml), TOML (.toml) or JSON (.json) config file into a dict."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"config file {path!r} does not exist")
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix == ".toml":
            with open(path, "rb") as f:
                data = tomllib.load(f)
        elif suffix in (".yaml", ".yml"):
            with open(path, encoding="utf-8") as f:
                data = yaml.load(f, Loader=_YamlLoader) or {}  # noqa: S506 (a SafeLoader subclass)
        elif suffix == ".json":
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        else:
            raise ValueError(f"config file {path!r} must end in .yaml, .yml, .toml or .json")
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"config file {path!r} cannot be parsed: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path!r} must hold a mapping at the top level")
    return data


def save_yaml(config: TrainConfig, path: str | os.PathLike) -> None:
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(to_dict(config), f, sort_keys=False)
