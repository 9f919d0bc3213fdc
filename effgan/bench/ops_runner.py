"""Runs the op cases for every provider and mode, side by side in one process."""
from __future__ import annotations

import warnings
from typing import Iterable

import torch

from effgan._backend import resolve_impl
from effgan.bench.op_cases import OpCase
from effgan.bench.timing import peak_memory, rotation_copies, time_fn

PROVIDERS = ("effgan", "eager", "compile")
MODES = ("fwd", "bwd", "fwd+bwd")


def _outputs(out) -> list[torch.Tensor]:
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if isinstance(o, torch.Tensor) and o.requires_grad]


def _leaves(inputs: dict) -> list[torch.Tensor]:
    return [t for t in inputs.values() if isinstance(t, torch.Tensor) and t.requires_grad]


def _provider_fn(case: OpCase, provider: str, device: torch.device, compile_mode: str | None):
    if provider == "effgan":
        return case.effgan
    if provider == "eager":
        return case.eager
    return torch.compile(case.eager, mode=compile_mode, dynamic=False)


def _timed_modes(fn, case: OpCase, device, dtype, modes, budget_s):
    results = {}
    el_size = torch.empty((), dtype=dtype).element_size()
    n_copies = rotation_copies(case.bytes_fwd * el_size, device)
    if "fwd" in modes:
        sets = [case.make_inputs(device, dtype, False) for _ in range(n_copies)]
        with torch.no_grad():
            results["fwd"] = time_fn(fn, sets, device, budget_s=budget_s), case.bytes_fwd
    if "fwd+bwd" in modes or "bwd" in modes:
        sets = [case.make_inputs(device, dtype, True) for _ in range(n_copies)]
        first = _outputs(fn(sets[0]))
        grads = [torch.randn_like(o) for o in first]

        def fwd_bwd(d):
            for t in _leaves(d):
                t.grad = None
            torch.autograd.backward(_outputs(fn(d)), grads)

        if "fwd+bwd" in modes:
            results["fwd+bwd"] = time_fn(fwd_bwd, sets, device, budget_s=budget_s), case.bytes_fwd + case.bytes_bwd
        if "bwd" in modes:
            graphs = [(d, _outputs(fn(d))) for d in sets]

            def bwd(item):
                d, outs = item
                for t in _leaves(d):
                    t.grad = None
                torch.autograd.backward(outs, grads, retain_graph=True)

            results["bwd"] = time_fn(bwd, graphs, device, budget_s=budget_s), case.bytes_bwd
        mem_inputs = sets[0]
        results["peak_bytes"] = peak_memory(lambda: fwd_bwd(mem_inputs), device)
    return results


def run_op_benchmarks(
    cases: Iterable[OpCase],
    device: torch.device,
    *,
    dtype: torch.dtype = torch.float32,
    providers=PROVIDERS,
    modes=MODES,
    bandwidth: float | None = None,
    budget_s: float = 1.0,
    compile_mode: str | None = None,
    log=print,
) -> list[dict]:
    rows = []
    for case in cases:
        el_size = torch.empty((), dtype=dtype).element_size()
        for provider in providers:
            try:
                fn = _provider_fn(case, provider, device, compile_mode)
                res = _timed_modes(fn, case, device, dtype, modes, budget_s)
            except Exception as exc:  # one failing provider must not sink the whole table
                warnings.warn(f"{case.label} {provider}: {type(exc).__name__}: {exc}")
                rows.append({"op": case.op, "shape": list(case.shape), "provider": provider,
                             "dtype": str(dtype).replace("torch.", ""), "error": f"{type(exc).__name__}: {exc}"})
                continue
            peak = res.pop("peak_bytes", None)
            if provider == "effgan":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    impl_used = resolve_impl("auto", device, case.op)
            else:
                impl_used = "ref"
            for mode, (timing, n_elems) in res.items():
                nbytes = n_elems * el_size
                gbps = nbytes / timing.median_s / 1e9
                row = {"op": case.op, "shape": list(case.shape), "provider": provider, "mode": mode,
                       "dtype": str(dtype).replace("torch.", ""), **timing.as_dict(), "bytes": nbytes,
                       "gbps": gbps, "peak_bytes_fwdbwd": peak, "impl": impl_used}
                if bandwidth:
                    row["frac_bandwidth"] = gbps * 1e9 / bandwidth
                rows.append(row)
                log(f"  {case.label:38s} {provider:8s} {mode:8s} {timing.median_s * 1e3:9.3f} ms  {gbps:7.1f} GB/s")
    return rows


def speedup_table(rows: list[dict]) -> list[dict]:
    """fwd+bwd speedups of effgan against eager and compile, one row per (op, shape)."""
    by_key: dict = {}
    for r in rows:
        if r.get("mode") != "fwd+bwd":
            continue
        by_key.setdefault((r["op"], tuple(r["shape"])), {})[r["provider"]] = r
    out = []
    for (op, shape), prov in by_key.items():
        e = prov.get("effgan")
        if e is None:
            continue
        row = {"op": op, "shape": list(shape), "impl": e.get("impl"), "effgan_ms": e["median_ms"], "effgan_gbps": e["gbps"],
               "frac_bandwidth": e.get("frac_bandwidth")}
        for base in ("eager", "compile"):
            if base in prov:
                row[f"vs_{base}"] = prov[base]["median_ms"] / e["median_ms"]
        out.append(row)
    return out
