"""The experiment's figure: translation quality against training step time, one point per generator."""
from __future__ import annotations

import os


def plot_quality_vs_step_time(rows: list[dict], path: str | os.PathLike, *, quality_keys: list[str],
                              title: str) -> None:
    """One panel per quality key, x = step time (ms), each point labelled with its generator."""
    # A Figure drawn on an Agg canvas directly: headless, and no pyplot backend switch for the caller.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [r for r in rows if r.get("step_time_ms") is not None]
    fig = Figure(figsize=(5 * len(quality_keys), 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(quality_keys), squeeze=False)
    for ax, key in zip(axes[0], quality_keys):
        for row in points:
            value = row["metrics"].get(key)
            if value is None:
                continue
            ax.scatter(row["step_time_ms"], value)
            ax.annotate(row["generator"], (row["step_time_ms"], value), textcoords="offset points", xytext=(4, 4),
                        fontsize=8)
        ax.set_xlabel("training step time (ms)")
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
