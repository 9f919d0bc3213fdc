"""Markdown tables of benchmark results (printed last by the CLI, pasted into the README)."""
from __future__ import annotations


def _fmt(v, spec, suffix=""):
    return format(v, spec) + suffix if isinstance(v, (int, float)) else "n/a"


def format_speedup_table(speedups: list[dict]) -> str:
    lines = ["| op | shape | impl | effgan fwd+bwd ms | GB/s | of copy BW | vs eager | vs compile |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in speedups:
        shape = "x".join(map(str, r["shape"]))
        if r.get("memory_format") == "channels_last":
            shape += " (channels_last)"
        lines.append(
            f"| {r['op']} | {shape} | {r.get('impl')} | {_fmt(r['effgan_ms'], '.3f')} | "
            f"{_fmt(r['effgan_gbps'], '.1f')} | {_fmt(r.get('frac_bandwidth'), '.0%')} | "
            f"{_fmt(r.get('vs_eager'), '.2f', 'x')} | {_fmt(r.get('vs_compile'), '.2f', 'x')} |")
    return "\n".join(lines)


def format_e2e_table(rows: list[dict]) -> str:
    lines = ["| model | variant | images/s | step ms | peak MB | vs eager |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['variant']} | error: {r['error'][:60]} | | | |")
            continue
        # the first step's peak: a graphed variant's graphs allocate their pools at capture, and a
        # replay afterwards allocates next to nothing (the README's "peak MB" column)
        peak = r.get("first_step_peak_bytes", r.get("peak_bytes"))
        lines.append(
            f"| {r['model']} | {r['variant']} | {_fmt(r['images_per_s'], '.2f')} | {_fmt(r['step_ms'], '.1f')} | "
            f"{_fmt(peak / 2**20 if peak else None, '.0f')} | {_fmt(r.get('vs_eager'), '.2f', 'x')} |")
    return "\n".join(lines)
