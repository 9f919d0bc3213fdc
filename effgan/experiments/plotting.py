"""The experiment's figure: translation quality against training step time, one point per generator."""
from __future__ import annotations

import os


def plot_quality_vs_step_time(rows: list[dict], path: str | os.PathLike, *, quality_keys: list[str],
                              title: str) -> None:
    """One panel per quality key, x = step time (ms); each generator one colour and marker in every
    panel, named in a legend beside them (labels next to the points overlap where points cluster)."""
    # A Figure drawn on an Agg canvas directly: headless, and no pyplot backend switch for the caller.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [r for r in rows if r.get("step_time_ms") is not None]
    fig = Figure(figsize=(5 * len(quality_keys) + 1.8, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(quality_keys), squeeze=False)
    markers = "os^Dv<>pPX*h"
    handles: dict[str, object] = {}
    for i, row in enumerate(points):
        style = dict(color=f"C{i % 10}", marker=markers[(i // 10) % len(markers)], s=36)
        for ax, key in zip(axes[0], quality_keys):
            value = row["metrics"].get(key)
            if value is not None:
                handles.setdefault(row["generator"], ax.scatter(row["step_time_ms"], value, **style))
    for ax, key in zip(axes[0], quality_keys):
        ax.set_xlabel("training step time (ms)")
        ax.set_ylabel(key)
        ax.grid(True, alpha=0.3)
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="center right", fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1 - 1.8 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=120)
