"""python -m effgan.experiments.generators: CycleGAN generators compared on the cans data.

Every generator is trained with the same data, seed, discriminator and step budget
by effgan.train, then scored on the cans test pairs. The table gives, per generator:
parameters, FLOPs of one forward at the run's resolution, training step time and
peak memory (measured in the same run, see step_meter.py), cycle and identity MAE,
paired MAE/PSNR/SSIM against the true translations, and FID/KID with one FeatureNet
shared by all rows (trained once on the cans training images), so the rows compare.

Writes results.json, results.md and quality_vs_step_time.png into --out.
"""
from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import torch

from effgan._paths import file_in_the_way
from effgan.evaluate.checkpoint_models import load_run
from effgan.evaluate.report import format_value, write_json
from effgan.experiments.budgets import Budget, parse_budget
from effgan.experiments.plotting import plot_quality_vs_step_time
from effgan.experiments.step_meter import StepMeter
from effgan.metrics import build_extractor, evaluate_cyclegan
from effgan.metrics.cyclegan_eval import collect_domain_items
from effgan.train.inference import pick_inference_device

DEFAULT_GENERATORS = ("resnet9", "resnet6", "effnet-resnet-b0", "effnet-resnet-b1", "effnet-resnet-b2",
                      "effnet-resnet-b3", "effnet-b0", "effnet-b1", "effnet-b2", "effnet-b3")
TABLE_METRICS = ("cycle_mae_a", "cycle_mae_b", "paired_mae_ab", "paired_psnr_ab", "paired_ssim_ab",
                 "paired_ssim_ba", "fid_ab", "kid_mean_ab", "fid_ba")


def known_generators() -> list[str]:
    """The registry names a CycleGAN run accepts as its generator."""
    from effgan.models import list_models
    from effgan.train.config import CYCLEGAN_GENERATORS_FIXED

    return [name for name in list_models() if name in CYCLEGAN_GENERATORS_FIXED or name.startswith("effnet-")]


def check_generators(generators: tuple[str, ...], name: str = "generators") -> None:
    if not generators:
        raise ValueError(f"{name} must name at least one generator")
    known = known_generators()
    unknown = [g for g in generators if g not in known]
    if unknown:
        raise ValueError(f"{name}: unknown generator{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    repeated = sorted({g for g in generators if generators.count(g) > 1})
    if repeated:  # a second run of a name would land in the first one's run folder, after it trained
        raise ValueError(f"{name} names {', '.join(map(repr, repeated))} more than once")


def check_seed_range(seed: int, name: str = "seed") -> None:
    from effgan.data.seeding import check_seed

    # training derives further seeds by arithmetic (2 * seed + 2, seed + 7919 * step), which must stay
    # within torch's 64-bit seeds; a larger one would pass the feature net and fail in the first run
    if not isinstance(seed, bool) and isinstance(seed, int) and not 0 <= seed < 2**32:
        raise ValueError(f"{name} must be in [0, 2**32), got {seed}")
    check_seed(seed, name)


def check_out_dir(out_dir: str, name: str = "out_dir") -> None:
    """Refuse a folder that could not be written before anything is trained into it."""
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"{name} {out_dir!r} is a file, not a folder")
    blocker = file_in_the_way(os.path.dirname(os.path.abspath(out_dir)))
    if blocker is not None:
        raise ValueError(f"{name} {out_dir!r} lies under {blocker!r}, which is a file, not a folder")
    if os.path.exists(os.path.join(out_dir, "runs")):
        raise ValueError(f"{name} {out_dir!r} already holds runs; give a fresh folder")


def train_config(generator: str, budget: Budget, *, out_dir: str, seed: int, device: torch.device, fused: bool,
                 cuda_graphs: bool = False):
    from effgan.train import CycleGANOptions, TrainConfig

    # The reference schedule (constant learning rate, then a linear decay to zero, over equal halves)
    # stretched to cover the budget: with the family's default of one epoch each, a budget longer
    # than two passes over the data would stop at the end of the schedule instead (batch size 1).
    half = -(-budget.steps // (2 * budget.train_length))
    # The budget's width is the ResNet generators' and every run's discriminator's; an effnet generator
    # takes its widths from its compound scaling (the trainer refuses a width it would ignore).
    return TrainConfig(
        model="cyclegan", dataset="cans", image_size=budget.image_size,
        ngf=None if generator.startswith("effnet-") else budget.ngf, ndf=budget.ngf,
        train_length=budget.train_length, epochs=half, epochs_decay=half,
        max_steps=budget.steps, checkpoint_every=budget.checkpoint_every, log_every=budget.checkpoint_every,
        sample_every=10**9,  # no mid-run sample sheets inside the timed interval; the final one is still written
        seed=seed, device=str(device), fused=fused, cuda_graphs=cuda_graphs, out_dir=out_dir, run_name=generator,
        tensorboard=False,
        progress=False,
        cyclegan=CycleGANOptions(generator=generator))


def model_cost(config, generator: str) -> tuple[int, int | None]:
    """(parameters, FLOPs of one forward at the run's resolution) of the plain-torch build."""
    from effgan.models.flops import count_flops
    from effgan.train import resolve
    from effgan.train.cyclegan import build_generator
    from effgan.train.family import DataInfo
    from effgan.train.model_builders import registry_builder

    resolved = dataclasses.replace(resolve(config), fused=False)
    model = build_generator(resolved, DataInfo(channels=3, image_size=resolved.image_size), registry_builder,
                            False, "ref")
    params = sum(p.numel() for p in model.parameters())
    shape = (1, 3, resolved.image_size, resolved.image_size)
    try:
        flops = count_flops(model, shape)
    except (NotImplementedError, RuntimeError):  # an op without a meta kernel: count on the CPU instead
        flops = count_flops(model, shape, device="cpu")
    return params, flops


def shared_extractor(budget: Budget, *, out_dir: str, seed: int, device: torch.device, fid_weights: str | None):
    from effgan.data import build_dataset

    if fid_weights is not None:  # the InceptionV3 learns nothing from the cans images
        return build_extractor(fid_weights=fid_weights, device=device)
    train_set = build_dataset("cans", "train", image_size=budget.image_size, kind="unpaired", seed=seed,
                              length=budget.feature_items)
    items = collect_domain_items(train_set, max_items=budget.feature_items)
    return build_extractor(fid_weights=fid_weights, real_images=torch.cat([items["A"], items["B"]]),
                           cache_dir=os.path.join(out_dir, "feature_nets"), steps=budget.feature_steps, seed=seed,
                           device=device)


def train_and_measure(config, checkpoint_every: int) -> dict[str, Any]:
    """Train one run with a StepMeter hook; returns where it went and what the meter saw."""
    from effgan.train import train
    from effgan.train.trainer import NonFiniteLossError

    meter = StepMeter(pick_inference_device(config.device), checkpoint_every)
    result, failure = None, None
    try:
        result = train(config, metrics_fn=meter)
    except NonFiniteLossError as error:
        # A generator that diverged is a result of the comparison, not the end of it: its row says
        # so (with the timing of the steps before it), and the generators after it still train.
        failure = str(error)
    finally:
        meter.close()
    if result is not None:
        meter.run_ended_at(result.step)
    step_time = meter.step_time_s
    run_dir = os.path.join(config.out_dir, config.run_name) if result is None else result.run_dir
    measured = {"run_dir": run_dir, "steps": None if result is None else result.step,
                "timed_steps": meter.timed_steps, "step_time_ms": None if step_time is None else 1000 * step_time,
                "peak_memory_mb": meter.peak_memory_mb, "memory_method": meter.memory_method}
    if failure is not None:
        measured["error"] = failure
    return measured


def train_in_fresh_process(config, checkpoint_every: int) -> dict[str, Any]:
    """train_and_measure in a spawned process, so that one generator's memory peak (RSS on a CPU)
    is not hidden by pages an earlier, larger generator left to this process."""
    # An executor, not a multiprocessing.Pool: a Pool whose worker is killed (the out-of-memory killer,
    # a crash in native code) waits for the lost task forever; the executor raises BrokenProcessPool.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as executor:
        try:
            return executor.submit(train_and_measure, config, checkpoint_every).result()
        except BrokenProcessPool:
            return {"run_dir": os.path.join(config.out_dir, config.run_name), "steps": None, "timed_steps": 0,
                    "step_time_ms": None, "peak_memory_mb": None, "memory_method": "n/a",
                    "error": "the training process died (killed, e.g. by the out-of-memory killer, or crashed)"}


def run_generator(generator: str, budget: Budget, *, out_dir: str, seed: int, device: torch.device, fused: bool,
                  isolate: bool, test_set, extractor, cuda_graphs: bool = False,
                  cost: tuple[int, int | None] | None = None) -> dict[str, Any]:
    from effgan.train.family import DataInfo

    config = train_config(generator, budget, out_dir=os.path.join(out_dir, "runs"), seed=seed, device=device,
                          fused=fused, cuda_graphs=cuda_graphs)
    params, flops = cost if cost is not None else model_cost(config, generator)
    measure = train_in_fresh_process if isolate else train_and_measure
    measured = measure(config, budget.checkpoint_every)
    if measured.get("error") is not None:
        print(f"[generators] {generator} failed: {measured['error']}", file=sys.stderr, flush=True)
        return {"generator": generator, "params": params, "flops": flops, **measured, "metrics": {}}
    run = load_run(measured["run_dir"], data_info=DataInfo(channels=3, image_size=budget.image_size), device=device)
    metrics = evaluate_cyclegan(run.generators["G_A"], run.generators["G_B"], test_set, device=device,
                                max_items=budget.eval_items, extractor=extractor, kid_subsets=budget.kid_subsets,
                                seed=seed)
    return {"generator": generator, "params": params, "flops": flops, **measured, "metrics": metrics}


def _short_key(key: str) -> str:
    return key.split("/", 1)[0]


def markdown_table(rows: list[dict], extractor_name: str) -> str:
    metric_headers = [m if not m.startswith(("fid", "kid")) else f"{m} [{extractor_name}]" for m in TABLE_METRICS]
    headers = ["generator", "steps", "params (M)", "GFLOPs", "step (ms)", "peak mem (MB)", *metric_headers]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        short = {_short_key(k): v for k, v in row["metrics"].items()}
        # the steps each run really trained: a run stopped early (a NaN loss, its schedule) shows here
        steps = "failed" if row.get("error") is not None else str(row.get("steps", "n/a"))
        cells = [row["generator"], steps, f"{row['params'] / 1e6:.3f}",
                 "n/a" if row["flops"] is None else f"{row['flops'] / 1e9:.3f}",
                 "n/a" if row["step_time_ms"] is None else f"{row['step_time_ms']:.1f}",
                 "n/a" if row["peak_memory_mb"] is None else f"{row['peak_memory_mb']:.1f}"]
        cells += [format_value(short[m]) if m in short else "n/a" for m in TABLE_METRICS]
        lines.append("| " + " | ".join(cells) + " |")
    failed = [row for row in rows if row.get("error") is not None]
    if failed:  # why each failed row has no quality numbers
        lines += ["", *(f"{row['generator']} failed: {row['error']}" for row in failed)]
    return "\n".join(lines)


def run_experiment(budget: Budget, *, generators: tuple[str, ...] = DEFAULT_GENERATORS, out_dir: str,
                   seed: int = 0, device: str = "auto", fused: bool = True, isolate: bool = True,
                   fid_weights: str | None = None, cuda_graphs: bool = False) -> dict[str, Any]:
    """Train and score each generator; write results.json, results.md and the plot into out_dir.

    fused=False trains the plain-torch builds (effgan's eager baseline), which also
    avoids building the C++ extension in a CPU smoke run. isolate=True trains each
    generator in a fresh process (clean memory peaks); False trains in this process.
    cuda_graphs=True trains every generator with its steps replayed as CUDA graphs (CUDA only): at
    batch 1 a GPU step is otherwise bound by host time, which would rank generators by their
    number of layers rather than by their arithmetic.
    """
    from effgan.data import build_dataset

    check_generators(generators)
    check_out_dir(out_dir)
    check_seed_range(seed)
    torch_device = pick_inference_device(device)
    if cuda_graphs and torch_device.type != "cuda":
        raise ValueError(f"cuda_graphs needs a CUDA device, but the experiment runs on {torch_device}")
    # Building every generator once, before anything is trained, finds one that cannot run at this
    # budget (a U-Net deeper than the image allows) before hours went into the ones listed before it.
    costs = {}
    for generator in generators:
        try:
            costs[generator] = model_cost(train_config(generator, budget, out_dir=out_dir, seed=seed,
                                                       device=torch_device, fused=fused, cuda_graphs=cuda_graphs),
                                          generator)
        except ValueError as error:
            raise ValueError(f"generator {generator!r} cannot run at the {budget.name} budget "
                             f"({budget.image_size}x{budget.image_size}): {error}") from None
    extractor = shared_extractor(budget, out_dir=out_dir, seed=seed, device=torch_device, fid_weights=fid_weights)
    test_set = build_dataset("cans", "test", image_size=budget.image_size, seed=seed, length=budget.eval_items)
    rows = []
    for generator in generators:
        print(f"[generators] {generator}: training {budget.steps} steps on {torch_device}", flush=True)
        rows.append(run_generator(generator, budget, out_dir=out_dir, seed=seed, device=torch_device, fused=fused,
                                  isolate=isolate, test_set=test_set, extractor=extractor, cuda_graphs=cuda_graphs,
                                  cost=costs[generator]))
        # the rows so far, so that a run stopped part-way (a time limit) still leaves its results
        write_json({"extractor": extractor.name, "rows": rows}, os.path.join(out_dir, "results-partial.json"))
    device_name = (torch.cuda.get_device_name(torch_device) if torch_device.type == "cuda"
                   else platform.processor() or "cpu")
    summary = {"budget": dataclasses.asdict(budget), "seed": seed, "fused": fused, "cuda_graphs": cuda_graphs,
               "isolated_processes": isolate,
               "device": str(torch_device),
               "device_name": device_name, "torch": torch.__version__, "extractor": extractor.name,
               # a row whose training process died measured nothing: the method is the others'
               "memory_method": next((r["memory_method"] for r in rows if r["memory_method"] != "n/a"), "n/a"),
               "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "rows": rows}
    table = markdown_table(rows, extractor.name)
    write_json(summary, os.path.join(out_dir, "results.json"))
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(f"# CycleGAN generators on cans ({budget.name} budget: {budget.steps} steps, "
                f"{budget.image_size}x{budget.image_size}, ResNet ngf {budget.ngf}, seed {seed}, "
                f"{'fused' if fused else 'plain torch'}{', CUDA graphs' if cuda_graphs else ''}, "
                f"{device_name})\n\n{table}\n\n"
                f"Step time: mean wall time per step after the first checkpoint, data loading and checkpoint "
                f"writes included. Peak memory: {summary['memory_method']}"
                f"{', each generator trained in a fresh process' if isolate else ''}. "
                f"FID/KID extractor: {extractor.name}.\n")
    plot_quality_vs_step_time(rows, os.path.join(out_dir, "quality_vs_step_time.png"),
                              quality_keys=["paired_ssim_ab", f"fid_ab/{extractor.name}"],
                              title=f"cans, {budget.name} budget, {device_name}")
    summary["table"] = table
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m effgan.experiments.generators", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="smoke",
                   help="smoke | small | full | a number of training steps (default: smoke).")
    p.add_argument("--generators", default=",".join(DEFAULT_GENERATORS),
                   help=f"Comma-separated registry names of the generators to compare (default: "
                        f"{','.join(DEFAULT_GENERATORS)}).")
    p.add_argument("--out", default=None, help="Output folder (default runs/experiments/generators-<budget>-<time>).")
    p.add_argument("--seed", type=int, default=0, help="Seed of every training and evaluation (default: 0).")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:N.")
    p.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                   help="Train effgan's fused modules (default; --no-fused: the plain torch builds).")
    p.add_argument("--isolate", action=argparse.BooleanOptionalAction, default=True,
                   help="Train each generator in a fresh process (default; clean memory peaks).")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="Replay each training step as CUDA graphs (CUDA only; host time otherwise dominates "
                        "at batch 1).")
    p.add_argument("--fid-weights", default=None, help="Local FID InceptionV3 weights instead of the FeatureNet.")
    args = p.parse_args(argv)
    try:
        budget = parse_budget(args.budget)
        out = args.out or os.path.join("runs", "experiments",
                                       f"generators-{budget.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        generators = tuple(g.strip() for g in args.generators.split(",") if g.strip())
        # run_experiment checks these too, naming its own arguments; here they are named as the flags
        check_generators(generators, "--generators")
        check_out_dir(out, "--out")
        check_seed_range(args.seed, "--seed")
        summary = run_experiment(budget, generators=generators, out_dir=out, seed=args.seed, device=args.device,
                                 fused=args.fused, isolate=args.isolate,
                                 fid_weights=args.fid_weights, cuda_graphs=args.cuda_graphs)
    except ValueError as error:
        print(f"effgan.experiments.generators: error: {error}", file=sys.stderr)
        return 2
    print(summary["table"])
    print(f"wrote {out}/results.json, results.md, quality_vs_step_time.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
