"""Checkpoints that are safe to load and safe to write.

Safe to load: a checkpoint holds only tensors and primitive containers (dicts, lists, str, int,
float, bool, None), so ``torch.load(..., weights_only=True)`` reads it and loading can never run
code. RNG states are therefore stored as tensors, the config as a dict of primitives and the image
pool as a list of tensors.

Safe to write: :func:`save_atomic` writes to a temporary file in the destination folder, fsyncs
it and renames it over the old file with ``os.replace`` (atomic on POSIX and Windows), so a crash
mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import os
import pickle
import random
import warnings
from typing import Any

import numpy as np
import torch

from effgan._paths import create_temp_file

FORMAT_VERSION = 1
LATEST = "latest.pt"
BEST = "best.pt"
CHECKPOINT_DIR = "checkpoints"
TEMP_PREFIX = ".tmp-"  # save_atomic's files before their rename


def remove_unfinished_writes(folder: str | os.PathLike) -> int:
    """Delete the temp files of checkpoint writes that never finished in ``folder`` (their process was
    killed mid-write, where no handler runs), with a warning, and return how many. Only the run's own
    writer may be alive when this is called: a run's checkpoints are written by one process."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if name.startswith(TEMP_PREFIX) and name.endswith(".pt"):
            try:
                os.remove(os.path.join(folder, name))
                removed += 1
            except OSError:
                pass
    if removed:
        warnings.warn(f"{os.fspath(folder)}: removed {removed} unfinished checkpoint write(s) ({TEMP_PREFIX}*.pt) "
                      "left by a process killed while saving", stacklevel=2)
    return removed


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to ``path`` such that readers see either the old or the new file, whole."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp_path = create_temp_file(folder, prefix=TEMP_PREFIX, suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as f:
            try:
                torch.save(obj, f)
            except RuntimeError as error:
                disk_error = _disk_error(error, path)
                if disk_error is None:
                    raise
                raise disk_error from error
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except BaseException:
        # also on KeyboardInterrupt: never leave a half-written temp file behind
        try:
            os.unlink(tmp_path)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)


def _disk_error(error: RuntimeError, path: str) -> OSError | None:
    """The OSError behind a failed torch.save (a full disk, a quota), naming the checkpoint.

    torch.save's zip writer reports a failed write as a RuntimeError of its own ("unexpected pos ...")
    raised while the OSError is handled; callers (python -m effgan.train) report OSErrors plainly."""
    cause = error.__context__
    while cause is not None and not isinstance(cause, OSError):
        cause = cause.__context__
    if cause is None:
        return None
    return OSError(cause.errno, f"checkpoint {path} could not be written ({cause.strerror or cause}); "
                                f"any earlier file of that name is intact")


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable; not possible on every OS, where it is simply skipped."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


# What every reader of a checkpoint relies on (train's resume, sample, translate, evaluate); a
# reader that needs more passes its own ``require``.
REQUIRED_KEYS = ("family", "config", "step", "models")


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu", *,
         require: tuple[str, ...] = REQUIRED_KEYS) -> dict[str, Any]:
    """Load a checkpoint without unpickling arbitrary objects.

    A file that cannot be read as one (truncated, corrupt, empty, another kind of file) or that
    lacks any of ``require`` raises ValueError naming it, with the other checkpoint of its run to try.
    """
    path = os.fspath(path)
    data = _read(path, map_location=map_location)
    missing = [k for k in require if k not in data]
    if missing:
        raise ValueError(f"{path!r} is not a complete effgan checkpoint: it lacks {missing}. "
                         f"{_other_checkpoint_hint(path)}")
    return data


def _other_checkpoint_hint(path: str) -> str:
    """Where the run's other checkpoint is, if it has one."""
    name = os.path.basename(path)
    other = {LATEST: BEST, BEST: LATEST}.get(name)
    if other is None or not os.path.isfile(os.path.join(os.path.dirname(path), other)):
        return "No other checkpoint of this run was found beside it."
    return f"The run's {other} may still be good: pass that file instead."


def read_best_record(path: str | os.PathLike) -> dict[str, Any]:
    """The ``best`` record ({metric, value, step}) a checkpoint holds, without reading its tensors."""
    return dict(_read(os.fspath(path), map_location="cpu", mmap=True).get("best") or {})


def read_step(path: str | os.PathLike) -> int:
    """The step a checkpoint was written at, without reading its tensors."""
    step = _read(os.fspath(path), map_location="cpu", mmap=True).get("step")
    if not isinstance(step, int):
        raise ValueError(f"{os.fspath(path)!r} records no step")
    return step


def _read(path: str, **load_kwargs) -> dict[str, Any]:
    """torch.load, weights only, of an effgan checkpoint; any failure is a ValueError naming the file."""
    try:
        data = torch.load(path, weights_only=True, **load_kwargs)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as error:
        raise ValueError(f"{path!r} cannot be read as a checkpoint ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else 'no detail'}); it may be truncated or "
                         f"corrupt. {_other_checkpoint_hint(path)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path!r} is not an effgan training checkpoint (format {FORMAT_VERSION})")
    return data


def find(run_or_file: str | os.PathLike, which: str = LATEST) -> str:
    """Resolve a run directory (or a checkpoint file) to a checkpoint path."""
    path = os.fspath(run_or_file)
    if os.path.isfile(path):
        return path
    if os.path.isdir(path):
        for candidate in (os.path.join(path, CHECKPOINT_DIR, which), os.path.join(path, which)):
            if os.path.isfile(candidate):
                return candidate
        raise ValueError(f"no {which} checkpoint in run directory {path!r}")
    raise ValueError(f"checkpoint {path!r} does not exist")


def read_config(run_or_file: str | os.PathLike, which: str = LATEST) -> dict[str, Any]:
    return load(find(run_or_file, which))["config"]


def run_dir_of(checkpoint_path: str) -> str:
    """The run directory a checkpoint file belongs to."""
    folder = os.path.dirname(os.path.abspath(checkpoint_path))
    return os.path.dirname(folder) if os.path.basename(folder) == CHECKPOINT_DIR else folder


# ----------------------------------------------------------------------------- RNG states as tensors

def capture_rng_state() -> dict[str, Any]:
    """Python, numpy, torch CPU and (if initialised) CUDA generator states, as tensors."""
    version, mt_state, gauss_next = random.getstate()
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": torch.tensor(mt_state, dtype=torch.int64),
                   "gauss_next": gauss_next},
        "numpy": {"kind": np_kind, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Set the generators from ``capture_rng_state``'s dict, wherever its tensors were loaded: a
    checkpoint read with map_location="cuda" holds them on the GPU, and every generator wants
    CPU tensors (torch's and CUDA's states are CPU byte tensors)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss_next"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].cpu().numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["gauss"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:  # a different machine: keep what matches, in order
            for index, cuda_state in enumerate(cuda_states[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state, index)
