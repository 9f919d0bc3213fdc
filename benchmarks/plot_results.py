"""A PNG chart of one benchmark JSON: effgan's forward+backward speedup over eager and over
torch.compile, per op and shape, as measured side by side in that run.

    python benchmarks/plot_results.py benchmarks/results/<device>.json docs/images/<name>.png

Needs matplotlib (not a dependency of effgan itself).
"""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a JSON file written by python -m effgan.bench")
    parser.add_argument("png", help="where to write the chart")
    args = parser.parse_args(argv)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_results.py needs matplotlib: pip install matplotlib")
    with open(args.results) as f:
        data = json.load(f)
    # A run of a subset of --providers has speedups against eager, or torch.compile, alone: the
    # missing bars are left empty (NaN), not the whole chart refused.
    rows = [r for r in data.get("speedups", []) if "vs_eager" in r or "vs_compile" in r]
    if not rows:
        sys.exit(f"{args.results} holds no fwd+bwd speedups")
    labels = [f"{r['op']}\n{'x'.join(map(str, r['shape']))}" for r in rows]
    eager = [r.get("vs_eager", float("nan")) for r in rows]
    compiled = [r.get("vs_compile", float("nan")) for r in rows]
    info = data["info"]
    timed = "CUDA-graph replays" if any(r.get("timed") == "graph replay" for r in data.get("ops", [])) else "calls"

    fig, ax = plt.subplots(figsize=(max(8, 0.75 * len(rows)), 4.5))
    xs = range(len(rows))
    ax.bar([x - 0.2 for x in xs], eager, width=0.4, label="vs eager PyTorch")
    ax.bar([x + 0.2 for x in xs], compiled, width=0.4, label="vs torch.compile")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks(list(xs), labels, fontsize=7, rotation=45, ha="right")
    ax.set_ylabel("forward+backward speedup (x)")
    ax.set_title(f"effgan fused ops on {info['device']} ({timed}, {info['date'][:10]}, torch {info['torch']})",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
