"""End-to-end benchmark: one full training step per model, for each way of running it.

A step is the training family's own ``train_step`` (both generators, both discriminators, losses,
optimisers for CycleGAN), so the benchmark measures exactly what ``python -m effgan.train`` runs.
Variants, each built from the same seed in this one process and timed after warm-up:
``eager`` (plain torch modules), ``compile`` / ``compile-ro`` (torch.compile of the plain build,
default and reduce-overhead mode), ``fused`` (effgan's modules), ``fused+compile`` (torch.compile
of effgan's modules: inductor sees the fused ops as the custom ops they are registered as and
compiles what lies between them), ``fused+graphs`` (captured in CUDA graphs) and
``fused+graphs+bf16``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from effgan.bench.timing import peak_memory, time_interleaved
from effgan.train import config as cfg
from effgan.train.distributed import DistInfo
from effgan.train.family import DataInfo, Runtime
from effgan.train.precision import Precision
from effgan.train.process_settings import seed_everything
from effgan.train.trainer import family_class


@dataclass(frozen=True)
class ModelSpec:
    label: str
    model: str  # training family
    image_size: int
    batch_size: int
    channels: int = 3
    num_classes: int | None = None
    overrides: tuple = ()  # (field, value) on TrainConfig; "cyclegan.generator" style for sections


@dataclass(frozen=True)
class Variant:
    name: str
    fused: bool
    compile_mode: str | None = None  # None: no torch.compile
    cuda_graphs: bool = False
    amp: str = "none"


VARIANTS = (
    Variant("eager", fused=False),
    Variant("compile", fused=False, compile_mode="default"),
    Variant("compile-ro", fused=False, compile_mode="reduce-overhead"),
    Variant("fused", fused=True),
    Variant("fused+compile", fused=True, compile_mode="default"),
    Variant("fused+graphs", fused=True, cuda_graphs=True),
    Variant("fused+graphs+bf16", fused=True, cuda_graphs=True, amp="bf16"),
)

GPU_SPECS = (
    ModelSpec("cyclegan-resnet9-256-b1", "cyclegan", 256, 1, overrides=(("ngf", 64), ("cyclegan.generator", "resnet9"))),
    ModelSpec("cyclegan-effnet-resnet-b0-256-b1", "cyclegan", 256, 1,
              overrides=(("ngf", 64), ("cyclegan.generator", "effnet-resnet-b0"))),
    ModelSpec("cyclegan-effnet-b0-256-b1", "cyclegan", 256, 1, overrides=(("ngf", 64), ("cyclegan.generator", "effnet-b0"))),
    ModelSpec("stylegan-64-b16", "stylegan", 64, 16, overrides=(("ngf", 64),)),
    ModelSpec("dcgan-classic-64-b64", "dcgan", 64, 64, overrides=(("gan.arch", "classic"), ("ngf", 64))),
)
QUICK_GPU_SPECS = GPU_SPECS[:1] + GPU_SPECS[3:4]
# On the CPU: the default training step (what `python -m effgan.train` runs) and small DCGAN/StyleGAN.
CPU_SPECS = (
    ModelSpec("cyclegan-default-64-b1", "cyclegan", 64, 1),
    ModelSpec("dcgan-shallow-28-b64", "dcgan", 28, 64, channels=1),
    ModelSpec("stylegan-32-b8", "stylegan", 32, 8),
)
QUICK_CPU_SPECS = CPU_SPECS[:1]
# Run only when named (--e2e-models): the default CycleGAN with the EfficientNet-B0 generator
# (depthwise convs and squeeze-excite: the C++ dwconv_norm_act and se_scale kernels). Its
# torch.compile variant alone compiles for several minutes on 2 CPU cores.
OPTIONAL_SPECS = (
    ModelSpec("cyclegan-effnet-b0-64-b1", "cyclegan", 64, 1, overrides=(("cyclegan.generator", "effnet-b0"),)),
)
# Every model and variant by name, for the command lines that pick some.
SPECS_BY_LABEL = {s.label: s for s in GPU_SPECS + CPU_SPECS + OPTIONAL_SPECS}
VARIANTS_BY_NAME = {v.name: v for v in VARIANTS}


class _BenchRuntime(Runtime):
    """The training runtime with a torch.compile mode (the trainer uses the default mode)."""

    def __init__(self, *args, compile_mode: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "_compile_mode", compile_mode)

    def maybe_compile(self, module):
        if not self.compile:
            return module
        mode = None if self._compile_mode == "default" else self._compile_mode
        return torch.compile(module, backend=self.compile_backend, mode=mode)


def _config(spec: ModelSpec, variant: Variant, device: torch.device) -> cfg.TrainConfig:
    config = cfg.TrainConfig(model=spec.model, image_size=spec.image_size, batch_size=spec.batch_size,
                             fused=variant.fused, amp=variant.amp, cuda_graphs=variant.cuda_graphs,
                             compile=variant.compile_mode is not None, device=str(device))  # cuda:N kept
    for name, value in spec.overrides:
        if "." in name:
            section, field = name.split(".")
            setattr(getattr(config, section), field, value)
        else:
            setattr(config, name, value)
    return cfg.resolve(config)


def _batch(spec: ModelSpec, device: torch.device, gen: torch.Generator):
    shape = (spec.batch_size, spec.channels, spec.image_size, spec.image_size)
    img = lambda: (torch.rand(shape, generator=gen) * 2 - 1).to(device)  # noqa: E731
    if spec.model == "cyclegan":
        return {"A": img(), "B": img()}
    labels = torch.randint(0, spec.num_classes or 10, (spec.batch_size,), generator=gen).to(device)
    return (img(), labels)


def skip_reason(variant: Variant, device: torch.device) -> str | None:
    if device.type != "cuda" and (variant.cuda_graphs or variant.compile_mode == "reduce-overhead"):
        return "needs CUDA"
    return None


def step_fn(spec: ModelSpec, variant: Variant, device: torch.device):
    """(step, batches): one training step of ``spec`` as ``variant`` runs it, and two input batches."""
    config = _config(spec, variant, device)
    seed_everything(config.seed)
    precision = Precision(config.amp, device.type, cache_enabled=not config.cuda_graphs)
    runtime = _BenchRuntime(device=device, dist=DistInfo(rank=0, local_rank=0, world_size=1), precision=precision,
                            compile=config.compile, cuda_graphs=config.cuda_graphs, compile_mode=variant.compile_mode)
    data = DataInfo(channels=spec.channels, image_size=spec.image_size,
                    num_classes=spec.num_classes if spec.model == "cgan" else None)
    family = family_class(spec.model)(config, runtime, data)
    gen = torch.Generator().manual_seed(0)
    batches = [_batch(spec, device, gen) for _ in range(2)]
    state = {"step": 0}

    def step(batch):
        out = family.train_step(batch, state["step"])
        state["step"] += 1
        return out

    step.family = family  # for scripts that drive the family beyond a step (benchmarks/recapture_memory.py)
    return step, batches


class _StepFailed(Exception):
    def __init__(self, variant: str, error: Exception) -> None:
        super().__init__(variant)
        self.variant, self.error = variant, error


def _time_surviving(runs: dict, device: torch.device, spec: ModelSpec, rows: list, **timing) -> dict:
    """time_interleaved over the variants, dropping (as an error row) one whose step fails while timed.

    A step can fail after the first one succeeded (a StyleGAN R1 step comes every few steps); the
    other variants are then timed again without it, rather than the whole benchmark stopping.
    """
    def guarded(name, step):
        def call(batch):
            try:
                return step(batch)
            except Exception as exc:
                raise _StepFailed(name, exc) from exc
        return call

    runs = dict(runs)
    while runs:
        try:
            return time_interleaved({name: (guarded(name, step), batches) for name, (step, batches) in runs.items()},
                                    device, **timing)
        except _StepFailed as failed:
            exc = failed.error
            warnings.warn(f"e2e {spec.label} {failed.variant}: {type(exc).__name__}: {exc}")
            rows.append({"model": spec.label, "variant": failed.variant, "error": f"{type(exc).__name__}: {exc}"})
            del runs[failed.variant]
    return {}


def run_e2e_benchmarks(device: torch.device, *, quick: bool = False, budget_s: float = 1.0, specs=None,
                       variants=VARIANTS, warmup: int = 4, min_runs: int = 3, log=print,
                       on_model_done=None) -> list[dict]:
    """One row per (model, variant). ``on_model_done(rows)``, if given, gets the rows so far after
    each model, so a caller can save them before a slow compile of the next model runs out of time."""
    if specs is None:
        if device.type == "cuda":
            specs = QUICK_GPU_SPECS if quick else GPU_SPECS
        else:
            specs = QUICK_CPU_SPECS if quick else CPU_SPECS
    rows = []
    for spec in specs:
        # Every variant is built first, then all are timed interleaved (timing.time_interleaved).
        runs, first_peaks = {}, {}
        for variant in variants:
            if skip_reason(variant, device):
                continue
            try:
                step, batches = step_fn(spec, variant, device)
                # The first step compiles, or fails, before the timed runs. Its peak is the memory a
                # variant needs beyond its weights: optimizer state, gradients, activations, and for
                # graphed variants the graphs' pools, allocated at capture (a replay allocates nothing).
                first_peaks[variant.name] = peak_memory(lambda: step(batches[0]), device)
                runs[variant.name] = (step, batches)
            except Exception as exc:  # one failing variant must not sink the table
                warnings.warn(f"e2e {spec.label} {variant.name}: {type(exc).__name__}: {exc}")
                rows.append({"model": spec.label, "variant": variant.name, "error": f"{type(exc).__name__}: {exc}"})
        timings = _time_surviving(runs, device, spec, rows, warmup=warmup, min_runs=min_runs, budget_s=budget_s)
        base = timings["eager"].median_s if "eager" in timings else None
        for name, timing in timings.items():
            step, batches = runs[name]
            row = {"model": spec.label, "variant": name, "step_ms": timing.median_s * 1e3,
                   "images_per_s": spec.batch_size / timing.median_s,
                   "peak_bytes": peak_memory(lambda: step(batches[0]), device),
                   "first_step_peak_bytes": first_peaks[name], "runs": timing.runs}
            if base:
                row["vs_eager"] = base / timing.median_s
            rows.append(row)
            log(f"  {spec.label:34s} {name:18s} {row['images_per_s']:8.2f} img/s  {row['step_ms']:9.1f} ms")
        if on_model_done is not None:
            on_model_done(rows)
    return rows
