"""A run's folder: naming a new one without replacing another run's checkpoints, and keeping a
latest.pt that a resumed run would otherwise overwrite with earlier steps."""
from __future__ import annotations

import os
import time
import warnings

from effgan._paths import file_in_the_way
from effgan.train import checkpoint as ckpt
from effgan.train import config as cfg
from effgan.train.distributed import DistInfo


def _holds_checkpoints(run_dir: str) -> bool:
    folders = (os.path.join(run_dir, ckpt.CHECKPOINT_DIR), run_dir)
    return any(os.path.isfile(os.path.join(folder, name)) for folder in folders for name in (ckpt.LATEST, ckpt.BEST))


def new_run_dir(config: cfg.TrainConfig, info: DistInfo) -> str:
    """runs/<model>-<timestamp>[-k]; rank 0 picks the name and tells the others.

    A --run-name whose folder already holds checkpoints is refused: a new run there would replace
    them. They are continued with --resume. (A folder without any, left by a run that stopped
    before its first checkpoint, may be reused.)
    """
    name = error = None
    if info.is_main:
        error = _out_dir_problem(config.out_dir)
    if info.is_main and error is None:
        base = config.run_name or f"{config.model}-{time.strftime('%Y%m%d-%H%M%S')}"
        name, k = base, 1
        while os.path.exists(os.path.join(config.out_dir, name)) and config.run_name is None:
            name, k = f"{base}-{k}", k + 1
        path = os.path.join(config.out_dir, name)
        if _holds_checkpoints(path):
            error = (f"run_name {name!r}: {path} already holds a run's checkpoints; continue it with "
                     f"--resume {path}, or pick another --run-name (a new run would overwrite them)")
        elif os.path.exists(path) and not os.path.isdir(path):
            error = f"run_name {name!r}: {path} exists and is not a folder"
        else:
            os.makedirs(path, exist_ok=True)
            _set_aside_earlier_logs(path)
    if info.enabled:
        import torch.distributed as dist

        box = [name, error]
        dist.broadcast_object_list(box, src=0)
        name, error = box
    if error is not None:
        raise ValueError(error)
    return os.path.join(config.out_dir, name)


def _out_dir_problem(out_dir: str) -> str | None:
    """Why out_dir cannot hold run folders, if it cannot: it, or the nearest part of it that exists, is
    a file (makedirs would fail with an OSError about the run's path, naming no option)."""
    blocker = file_in_the_way(out_dir)
    if blocker is None:
        return None
    return f"out_dir {out_dir!r}: {blocker} is a file, not a folder; choose another --out-dir"


# What a run writes besides its checkpoints.
RUN_LOGS = ("metrics.jsonl", "tensorboard", "samples")


def _set_aside_earlier_logs(path: str) -> None:
    """A reused folder's logs (of a run stopped before its first checkpoint) move to earlier-run[-k]/
    inside it, with the config.yaml that describes them: the new run appends to metrics.jsonl and
    TensorBoard, which would mix the two runs. A run that failed before logging anything (an empty
    metrics.jsonl) leaves nothing to keep."""
    def has_content(name: str) -> bool:
        p = os.path.join(path, name)
        return os.path.isdir(p) or (os.path.isfile(p) and os.path.getsize(p) > 0)

    present = [name for name in RUN_LOGS if has_content(name)]
    if not present:
        return
    if os.path.isfile(os.path.join(path, "config.yaml")):
        present.append("config.yaml")
    dest, k = os.path.join(path, "earlier-run"), 1
    while os.path.exists(dest):
        dest, k = os.path.join(path, f"earlier-run-{k}"), k + 1
    os.makedirs(dest)
    for name in present:
        os.replace(os.path.join(path, name), os.path.join(dest, name))
    warnings.warn(f"{path} held logs of a run without checkpoints ({', '.join(present)}); they were moved to "
                  f"{dest}", stacklevel=3)


def check_resume_run_name(config: cfg.TrainConfig, run_dir: str) -> None:
    """A resumed run continues in its own folder: another --run-name would be silently ignored."""
    if config.run_name is not None and config.run_name != os.path.basename(os.path.abspath(run_dir)):
        raise ValueError(f"run_name {config.run_name!r} with --resume: the run continues in its own folder "
                         f"{run_dir}; drop --run-name, or start a new run without --resume")


def check_resume_out_dir(out_dir: str, run_dir: str) -> None:
    """--out-dir with --resume: the run continues in its own folder, so another parent folder would
    be silently ignored."""
    if os.path.realpath(out_dir) != os.path.realpath(os.path.dirname(os.path.abspath(run_dir))):
        raise ValueError(f"out_dir {out_dir!r} with --resume: the run continues in its own folder {run_dir}; "
                         f"drop --out-dir, or start a new run without --resume")


def latest_ahead_of(ckpt_dir: str, resumed: str, step: int) -> tuple[str, int] | None:
    """The run's latest.pt and its step, when a resume from another file (best.pt, a copy) at ``step``
    starts behind it: the resumed run's first checkpoint would otherwise replace those later steps."""
    latest = os.path.join(ckpt_dir, ckpt.LATEST)
    if not os.path.isfile(latest) or os.path.samefile(latest, resumed):
        return None
    try:
        latest_step = ckpt.read_step(latest)
    except ValueError:
        return None  # unreadable: nothing worth keeping
    return (latest, latest_step) if latest_step > step else None


def keep_aside(latest: str, step: int) -> str:
    """Move ``latest`` (holding ``step``) to latest-step<step>.pt beside it; returns the new path.
    An earlier rewind's file of the same step is never replaced (-1, -2, ... are appended)."""
    folder = os.path.dirname(latest)
    kept, k = os.path.join(folder, f"latest-step{step}.pt"), 1
    while os.path.exists(kept):
        kept, k = os.path.join(folder, f"latest-step{step}-{k}.pt"), k + 1
    os.replace(latest, kept)
    return kept
