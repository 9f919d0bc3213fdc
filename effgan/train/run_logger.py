"""Where a run's numbers and pictures go: a JSONL file, TensorBoard, and PNG sample grids.

Only the main process (rank 0) writes. Every logged scalar goes to ``metrics.jsonl`` (one JSON
object per log call, with step and epoch), so a run can be analysed without TensorBoard, which
is optional: if it cannot be imported the logger warns once and carries on.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from typing import Any

import numpy as np
import torch


def image_grid(images: torch.Tensor, nrow: int, padding: int = 2) -> torch.Tensor:
    """Tile (N, C, H, W) images in [-1, 1] into one (C, H', W') image in [0, 1], ``nrow`` per row."""
    if images.dim() != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    images = ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)
    n, c, h, w = images.shape
    if c == 1:
        images, c = images.expand(n, 3, h, w), 3
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = torch.ones(c, rows * (h + padding) + padding, cols * (w + padding) + padding)
    for index in range(n):
        r, col = divmod(index, cols)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top:top + h, left:left + w] = images[index]
    return grid


def save_png(grid: torch.Tensor, path: str) -> None:
    from PIL import Image

    array = (grid.permute(1, 2, 0).numpy() * 255.0 + 0.5).clip(0, 255).astype(np.uint8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    Image.fromarray(array).save(tmp, format="PNG")
    os.replace(tmp, path)


class RunLogger:
    """``resumed_at``: the step a resumed run starts from. TensorBoard then drops its events past
    that step (a resume from best.pt, behind the log's end, would otherwise draw two curves over the
    same steps), and the JSONL log gets a ``resume`` record there (see ``current_records``)."""

    def __init__(self, run_dir: str, *, enabled: bool = True, tensorboard: bool = True,
                 resumed_at: tuple[int, int, str] | None = None) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self._writer = None
        self._jsonl = None
        if not enabled:
            return
        os.makedirs(run_dir, exist_ok=True)
        # append: a resumed run continues the same log
        self._jsonl = open(os.path.join(run_dir, "metrics.jsonl"), "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except Exception as error:  # tensorboard is an optional dependency
                warnings.warn(f"TensorBoard logging disabled: cannot import it ({error})", stacklevel=2)
            else:
                purge = {"purge_step": resumed_at[0] + 1} if resumed_at is not None else {}
                self._writer = SummaryWriter(log_dir=os.path.join(run_dir, "tensorboard"), **purge)
        if resumed_at is not None:
            step, epoch, checkpoint = resumed_at
            self._write({"kind": "resume", "step": step, "epoch": epoch, "checkpoint": checkpoint})

    def scalars(self, values: dict[str, float], step: int, epoch: int, kind: str = "train") -> None:
        if not self.enabled:
            return
        record: dict[str, Any] = {"kind": kind, "step": step, "epoch": epoch}
        record.update({k: float(v) for k, v in values.items()})
        self._write(record)
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(f"{kind}/{name}", float(value), step)

    def _write(self, record: dict[str, Any]) -> None:
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()

    def image(self, name: str, grid: torch.Tensor, step: int, path: str | None = None) -> None:
        """Log a (C, H, W) grid in [0, 1] to TensorBoard and, if ``path`` is given, as PNG."""
        if not self.enabled:
            return
        if path is not None:
            save_png(grid, path)
        if self._writer is not None:
            self._writer.add_image(name, grid, step)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Every record of a ``metrics.jsonl``, as written (see ``current_records`` for one history)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def current_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the run's current history: at each ``resume`` record (a resume from step s),
    the records logged earlier for steps after s are dropped. They belong to a branch the run left,
    such as the steps after a best.pt it went back to; the resume records themselves are dropped too."""
    kept: list[dict[str, Any]] = []
    for record in records:
        if record.get("kind") == "resume":
            kept = [r for r in kept if r["step"] <= record["step"]]
        else:
            kept.append(record)
    return kept
