"""Printing evaluation results as an aligned two-column table and writing them as JSON."""
from __future__ import annotations

import json
import math
import os
from typing import Any

from effgan._paths import file_in_the_way, probe_writable


def format_value(value: Any) -> str:
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            return str(value)
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return str(value)


def format_table(metrics: dict[str, Any], *, title: str | None = None) -> str:
    """`metric  value` rows in key order, with a header."""
    width = max([len("metric")] + [len(k) for k in metrics])
    lines = [title] if title else []
    lines.append(f"{'metric':<{width}}  value")
    lines.append(f"{'-' * width}  {'-' * 10}")
    lines += [f"{key:<{width}}  {format_value(value)}" for key, value in metrics.items()]
    return "\n".join(lines)


def check_writable(path: str | os.PathLike) -> None:
    """A ValueError unless ``path`` can become a file: not a folder, and its nearest existing parent
    a writable folder (write_json creates the missing ones)."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise ValueError(f"--json {path!r} is a folder; give a file name")
    if os.path.splitext(path)[1].lower() in (".pt", ".pth"):
        # checkpoints and cached metric networks are .pt files: the JSON would replace one
        raise ValueError(f"--json {path!r} names a .pt/.pth file, where effgan keeps checkpoints and networks; "
                         "give a .json name")
    blocker = file_in_the_way(os.path.dirname(path))
    if blocker is not None:
        raise ValueError(f"--json {path!r} cannot be written: {blocker!r} is a file")
    try:
        probe_writable(path)
    except OSError as error:
        raise ValueError(f"--json {path!r} cannot be written ({error.strerror or error})") from None


def write_json(payload: dict[str, Any], path: str | os.PathLike) -> None:
    """JSON with non-finite floats as strings ("inf"), since JSON has no literal for them."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w") as f:
        json.dump(clean(payload), f, indent=2, sort_keys=False)
        f.write("\n")
