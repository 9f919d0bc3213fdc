"""Runs the op cases for every provider and mode, side by side in one process."""
from __future__ import annotations

import contextlib
import warnings
from typing import Iterable

import torch

from effgan._backend import resolve_impl
from effgan.bench.op_cases import OpCase
from effgan.bench.timing import peak_memory, rotation_copies, time_interleaved

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


def _prepare(fn, case: OpCase, device, dtype, mode: str, n_copies: int, *, retained: bool = False):
    """A run for ``time_interleaved`` timing ``mode`` of ``fn`` on rotating copies of the inputs:
    (run, items), or for "bwd" (run, items, setup).

    "bwd" times a backward alone: setup, untimed, runs the forward that builds the graph the timed
    backward then consumes, as in training. ``retained`` (for CUDA-graph capture, which must replay
    a backward whose saved tensors stay alive) instead builds one graph per item up front and
    times backwards that retain it; torch.compile's donated buffers refuse that, so those runs are
    to be prepared and captured inside ``no_donated_buffers()``.
    """
    if mode == "fwd":
        sets = [case.make_inputs(device, dtype, False) for _ in range(n_copies)]

        def fwd(d):
            with torch.no_grad():
                fn(d)

        return fwd, sets
    sets = [case.make_inputs(device, dtype, True) for _ in range(n_copies)]
    # the output gradients rotate with the inputs: a backward reads them from memory too
    grads = [[torch.randn_like(o) for o in _outputs(fn(sets[0]))] for _ in range(n_copies)]
    items = list(zip(sets, grads))

    def forward(d):
        for t in _leaves(d):
            t.grad = None
        return _outputs(fn(d))

    if mode == "fwd+bwd":
        return (lambda item: torch.autograd.backward(forward(item[0]), item[1])), items
    if not retained:
        return ((lambda outs_and_grads: torch.autograd.backward(*outs_and_grads)), items,
                lambda item: (forward(item[0]), item[1]))
    graphs = [(d, forward(d), g) for d, g in items]

    def bwd(item):
        d, outs, g = item
        for t in _leaves(d):
            t.grad = None
        torch.autograd.backward(outs, g, retain_graph=True)

    return bwd, graphs


def no_donated_buffers():
    """torch.compile's backward without donated buffers (which forbid ``retain_graph=True``) for
    the graphs built and run inside; a no-op on a torch without them."""
    import torch._functorch.config as config

    if not hasattr(config, "donated_buffer"):
        return contextlib.nullcontext()
    return config.patch(donated_buffer=False)


def graphed(run, items, device: torch.device, *, warmup: int = 3):
    """``run`` captured once per item in a CUDA graph: (replay, graphs) with ``replay(graphs[i])``.

    A replay launches the captured kernels with no Python, autograd or launch work on the host, so
    its time is the kernels' own (plus one graph launch); the plain runs, timed from the host's
    side of the stream, measure mostly host work at small shapes. Warm-up runs on a side stream
    first, as capture requires (allocator pools, lazy init, compilation).
    """
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for i in range(warmup):
            run(items[i % len(items)])
    torch.cuda.current_stream(device).wait_stream(side)
    torch.cuda.synchronize(device)
    graphs, pool = [], None
    for item in items:
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=pool):
            run(item)
        pool = graph.pool()  # one memory pool for all copies
        graphs.append(graph)

    # A graph replays at fixed addresses: the inputs and output gradients it reads were allocated
    # outside its pool, so they must live as long as it does. Dropped, their memory goes back to
    # the allocator, and the next capture's empty_cache() unmaps it: the replay then faults
    # (an illegal memory access, after a few cases of the op benchmarks).
    def replay(graph, _keep_alive=(run, items)):
        graph.replay()

    return replay, graphs


def _error_row(case: OpCase, provider: str, dtype, exc: Exception, mode: str | None = None) -> dict:
    where = f"{case.label} {provider}" + (f" {mode}" if mode else "")
    warnings.warn(f"{where}: {type(exc).__name__}: {exc}")
    row = {"op": case.op, "shape": list(case.shape), "provider": provider,
           "dtype": str(dtype).replace("torch.", ""), "error": f"{type(exc).__name__}: {exc}"}
    return row if mode is None else {**row, "mode": mode}


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
    cuda_graphs: bool = False,
    log=print,
) -> list[dict]:
    """Every (case, mode): the providers timed interleaved, run by run (see timing.time_interleaved).

    cuda_graphs: time replays of each run captured in a CUDA graph (``graphed``) instead of the runs.
    """
    if cuda_graphs and device.type != "cuda":
        raise ValueError("cuda_graphs needs a CUDA device")
    rows = []
    el_size = torch.empty((), dtype=dtype).element_size()
    order = [m for m in ("fwd", "fwd+bwd", "bwd") if m in modes]
    for case in cases:
        n_copies = rotation_copies(case.bytes_fwd * el_size, device)
        fns = {}
        for provider in providers:
            try:
                fns[provider] = _provider_fn(case, provider, device, compile_mode)
            except Exception as exc:  # one failing provider must not sink the whole table
                rows.append(_error_row(case, provider, dtype, exc))
        results: dict[str, dict] = {p: {} for p in fns}
        for mode in order:
            runs = {}
            for provider, fn in fns.items():
                retained = cuda_graphs and mode == "bwd"
                try:
                    with no_donated_buffers() if retained else contextlib.nullcontext():
                        spec = _prepare(fn, case, device, dtype, mode, n_copies, retained=retained)
                        run, items, *setup = spec
                        run(setup[0](items[0]) if setup else items[0])  # compile, or fail, before the timed runs
                        runs[provider] = graphed(run, items, device) if cuda_graphs else spec
                except Exception as exc:  # this mode fails; the provider's other modes still count
                    rows.append(_error_row(case, provider, dtype, exc, mode))
            n_elems = {"fwd": case.bytes_fwd, "bwd": case.bytes_bwd}.get(mode, case.bytes_fwd + case.bytes_bwd)
            for provider, timing in time_interleaved(runs, device, budget_s=budget_s).items():
                results[provider][mode] = timing, n_elems
            del runs
        for provider, res in results.items():
            peak = None
            if "fwd+bwd" in res or "bwd" in res:
                try:
                    run, items = _prepare(fns[provider], case, device, dtype, "fwd+bwd", 1)
                    peak = peak_memory(lambda: run(items[0]), device)
                except Exception:  # the timed modes' rows (and any error row) stand without it
                    peak = None
            if provider == "effgan":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    impl_used = resolve_impl("auto", device, case.op)
            else:
                impl_used = "ref"
            for mode, (timing, n) in res.items():
                nbytes = n * el_size
                gbps = nbytes / timing.median_s / 1e9
                row = {"op": case.op, "shape": list(case.shape), "provider": provider, "mode": mode,
                       "dtype": str(dtype).replace("torch.", ""), "memory_format": case.memory_format,
                       **timing.as_dict(), "bytes": nbytes, "timed": "graph replay" if cuda_graphs else "calls",
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
        if r.get("mode") != "fwd+bwd" or "error" in r:
            continue
        key = (r["op"], tuple(r["shape"]), r.get("memory_format", "contiguous"))
        by_key.setdefault(key, {})[r["provider"]] = r
    out = []
    for (op, shape, memory_format), prov in by_key.items():
        e = prov.get("effgan")
        if e is None:
            continue
        row = {"op": op, "shape": list(shape), "memory_format": memory_format, "impl": e.get("impl"),
               "effgan_ms": e["median_ms"], "effgan_gbps": e["gbps"], "frac_bandwidth": e.get("frac_bandwidth")}
        for base in ("eager", "compile"):
            if base in prov:
                row[f"vs_{base}"] = prov[base]["median_ms"] / e["median_ms"]
        out.append(row)
    return out
