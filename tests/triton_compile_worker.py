"""Ahead-of-time compilation of every Triton kernel in effgan.kernels for NVIDIA targets, no GPU needed.

The CPU interpreter that the other tests run the kernels in (TRITON_INTERPRET=1) accepts code the
real compiler rejects, so this script compiles each kernel with ``triton.compile`` for sm_90 (and a
subset for sm_80) through the whole NVIDIA pipeline (ttir -> ttgir -> llir -> ptx -> cubin with the
ptxas bundled in the Triton wheel).

Each case (tests/triton_compile_cases.py) mirrors one launch of a host launcher in kernels/<op>.py: the same positional and keyword
arguments, built from stand-in tensors that only carry shape, strides and dtype, with the launch
geometry of a CUDA device (the real ``plane_split`` etc., with an H100's SM count). Arguments are
specialised the way ``JITFunction.run`` does it: tensors become 16-byte aligned pointers, an int
equal to 1 becomes a constant and a multiple of 16 gets the divisibility hint (unless the kernel
lists the argument in ``do_not_specialize``), floats become fp32.

It must run with TRITON_INTERPRET unset (tests/conftest.py sets it, which turns @triton.jit into
interpreted functions), hence a separate process:

    python tests/triton_compile_worker.py REPORT.json [--arch 90] [--match SUBSTRING] [--resources]

The report is JSON: {"status": "ok" | "skip", "reason", "triton", "cases": [...], "uncovered": [...]}.
Exit status 0 whether or not kernels failed to compile (the report says which); non-zero only when
the script itself broke.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import subprocess
import sys
import tempfile
import time
import traceback

if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
    raise SystemExit("run with TRITON_INTERPRET unset: the interpreter replaces @triton.jit kernels")

from triton_compile_cases import (  # noqa: E402  (this directory is on sys.path: the worker runs as a script)
    ACC_ONLY_KERNELS,
    CASES,
    DTYPE_NAMES,
    FLOAT_DTYPES,
    H100_SMS,
    SM80_SUBSET,
    FakeTensor,
)


# ----------------------------------------------------------------------------------------------
# Launch records and their specialisation into (signature, constexprs, attrs).

class Launch:
    def __init__(self, fn, args, kwargs, label):
        self.num_warps = kwargs.pop("num_warps", 4)
        self.fn, self.args, self.kwargs, self.label = fn, args, kwargs, label

    @property
    def kernel_name(self):
        return f"{self.fn.fn.__module__.rsplit('.', 1)[-1]}.{self.fn.__name__}"

    def bound(self):
        names = self.fn.arg_names
        if len(self.args) > len(names):
            raise TypeError(f"{len(self.args)} positional arguments for {len(names)} parameters")
        values = dict(zip(names, self.args))
        for k, v in self.kwargs.items():
            if k not in names:
                raise TypeError(f"unknown keyword argument {k!r}")
            if k in values:
                raise TypeError(f"argument {k!r} given twice")
            values[k] = v
        missing = [n for n in names if n not in values]
        if missing:
            raise TypeError(f"missing arguments {missing}")
        return values

    def specialise(self):
        """(signature, constexprs, attrs) as JITFunction.run would derive them from these arguments."""
        values = self.bound()
        signature, constexprs, attrs = {}, {}, {}
        for i, p in enumerate(self.fn.params):
            v = values[p.name]
            if p.is_constexpr:
                signature[p.name] = "constexpr"
                constexprs[(i,)] = v
            elif isinstance(v, FakeTensor):
                signature[p.name] = "*" + DTYPE_NAMES[v.dtype]
                attrs[(i,)] = [["tt.divisibility", 16]]
            elif isinstance(v, bool):
                signature[p.name] = "u1"
            elif isinstance(v, int):
                if v == 1 and not p.do_not_specialize:
                    signature[p.name] = "constexpr"
                    constexprs[(i,)] = 1
                    continue
                signature[p.name] = "i32" if -2**31 <= v < 2**31 else "i64"
                if v % 16 == 0 and not p.do_not_specialize:
                    attrs[(i,)] = [["tt.divisibility", 16]]
            elif isinstance(v, float):
                signature[p.name] = "fp32"
            else:
                raise TypeError(f"argument {p.name}: no specialisation for {type(v).__name__}")
        return signature, constexprs, attrs

    def key(self):
        sig, cx, attrs = self.specialise()
        return (self.kernel_name, tuple(sig.items()), tuple((k, repr(v)) for k, v in sorted(cx.items())),
                tuple(sorted(attrs)), self.num_warps)


class Recorder:
    def __init__(self):
        self.launches = []
        self.label = ""

    def __call__(self, fn, *args, **kwargs):
        self.launches.append(Launch(fn, args, kwargs, self.label))


# ----------------------------------------------------------------------------------------------

class Kernels:
    """effgan.kernels' modules, with the SM count of a CUDA device patched in for plane_split etc."""

    def __init__(self):
        import effgan.kernels as pkg
        self.modules = {}
        for info in pkgutil.iter_modules(pkg.__path__):
            mod = importlib.import_module(f"effgan.kernels.{info.name}")
            self.modules[info.name] = mod
            if hasattr(mod, "_sm_count"):
                mod._sm_count = lambda index: H100_SMS

    def __getattr__(self, name):
        try:
            return self.modules[name]
        except KeyError:
            raise AttributeError(name) from None

    def launched_kernels(self):
        """Every @triton.jit function meant to be launched (named *_kernel), as 'module.name'."""
        from triton.runtime.jit import JITFunction
        out = set()
        for name, mod in self.modules.items():
            for attr, v in vars(mod).items():
                if isinstance(v, JITFunction) and v.fn.__module__ == mod.__name__ and attr.endswith("_kernel"):
                    out.add(f"{name}.{attr}")
        return out


def collect(K, arch):
    """The distinct launches to compile for ``arch``, in a fixed order."""
    launches, seen = [], set()
    for op, build in CASES.items():
        rec = Recorder()
        build(K, rec)
        for ln in rec.launches:
            if arch != 90 and not any(s in ln.label for s in SM80_SUBSET.get(op, ())):
                continue
            key = ln.key()
            if key not in seen:
                seen.add(key)
                launches.append(ln)
    return launches


def coverage_gaps(K, launches):
    """What the sm_90 cases leave out: kernels never compiled, flags compiled one way only, activation
    codes, accumulation dtypes and input dtypes missing."""
    import triton.language as tl
    gaps = []
    compiled = {ln.kernel_name for ln in launches}
    for name in sorted(K.launched_kernels() - compiled):
        gaps.append(f"{name}: no compile case (add one to tests/triton_compile_cases.py)")
    by_kernel = {}
    for ln in launches:
        by_kernel.setdefault(ln.kernel_name, []).append(ln.bound())
    for name, bounds in sorted(by_kernel.items()):
        fn = next(ln.fn for ln in launches if ln.kernel_name == name)
        for p in fn.params:
            vals = [b[p.name] for b in bounds]
            if p.is_constexpr and all(isinstance(v, bool) for v in vals) and set(vals) != {False, True}:
                gaps.append(f"{name}: {p.name} only compiled as {set(vals)}")
            if p.is_constexpr and p.name == "ACT" and set(vals) != {0, 1, 2, 3, 4}:
                gaps.append(f"{name}: ACT only compiled for {sorted(set(vals))}")
            if p.is_constexpr and p.name == "ACC" and {str(v) for v in vals} != {str(tl.float32), str(tl.float64)}:
                gaps.append(f"{name}: ACC only compiled as {sorted({str(v) for v in vals})}")
        ptr_dtypes = {DTYPE_NAMES[v.dtype] for b in bounds for v in b.values() if isinstance(v, FakeTensor)}
        need = {"fp32", "fp64"} if name in ACC_ONLY_KERNELS else FLOAT_DTYPES
        if not need <= ptr_dtypes:
            gaps.append(f"{name}: no case with {sorted(need - ptr_dtypes)} tensors")
    return gaps


def resource_usage(cubin: bytes):
    """(registers, stack bytes) from cuobjdump, or None. Register spills land in the stack frame
    (cuobjdump's STACK), not in LOCAL, which counts only declared local arrays."""
    try:
        from triton import knobs
        tool = knobs.nvidia.cuobjdump.path
    except Exception:
        return None
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        out = subprocess.run([tool, "--dump-resource-usage", f.name], capture_output=True, text=True).stdout
    import re
    regs = re.search(r"REG:(\d+)", out)
    stack = re.search(r"STACK:(\d+)", out)
    return (int(regs.group(1)) if regs else None, int(stack.group(1)) if stack else None)


def compile_one(ln, arch, resources):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    sig, constexprs, attrs = ln.specialise()
    t0 = time.perf_counter()
    record = {"kernel": ln.kernel_name, "arch": arch, "config": ln.label, "num_warps": ln.num_warps,
              "signature": {k: v for k, v in sig.items() if v != "constexpr"},
              "constexprs": {ln.fn.arg_names[k[0]]: repr(v) for k, v in constexprs.items()}}
    try:
        compiled = triton.compile(ASTSource(ln.fn, sig, constexprs, attrs), target=GPUTarget("cuda", arch, 32),
                                  options={"num_warps": ln.num_warps})
        record.update(ok=True, stages=[k for k in ("ttir", "ttgir", "llir", "ptx", "cubin") if k in compiled.asm])
        if resources and "cubin" in compiled.asm:
            usage = resource_usage(compiled.asm["cubin"])
            if usage:
                record["registers"], record["stack_bytes"] = usage
    except Exception as e:  # one failure must not hide the others
        record.update(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc(limit=-6))
    record["seconds"] = round(time.perf_counter() - t0, 3)
    record["id"] = f"{ln.kernel_name}[sm_{arch}: {ln.label}]"
    return record


def unavailable_reason():
    try:
        import triton  # noqa: F401
        from triton.backends import backends
        from triton.backends.compiler import GPUTarget  # noqa: F401
        from triton.compiler import ASTSource  # noqa: F401
    except Exception as e:
        return f"triton is not importable: {type(e).__name__}: {e}"
    if "nvidia" not in backends:
        return f"triton has no NVIDIA backend (backends: {sorted(backends)})"
    try:
        from triton import knobs
        path = knobs.nvidia.ptxas.path
    except Exception as e:
        return f"no ptxas for the NVIDIA backend: {type(e).__name__}: {e}"
    if not path or not os.path.exists(path):
        return f"no ptxas for the NVIDIA backend (looked for {path!r})"
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", help="where to write the JSON report")
    ap.add_argument("--arch", type=int, action="append", help="compute capability (default: 90 and 80)")
    ap.add_argument("--match", default="", help="only cases whose id contains this")
    ap.add_argument("--resources", action="store_true",
                    help="record registers and stack bytes, where spills go (cuobjdump)")
    ap.add_argument("--list", action="store_true", help="list the cases without compiling")
    args = ap.parse_args(argv)

    reason = unavailable_reason()
    if reason:
        report = {"status": "skip", "reason": reason}
    else:
        import triton
        K = Kernels()
        archs = args.arch or [90, 80]
        cases = [(ln, arch) for arch in archs for ln in collect(K, arch)]
        uncovered = coverage_gaps(K, collect(K, 90))
        results = []
        t0 = time.perf_counter()
        for ln, arch in cases:
            cid = f"{ln.kernel_name}[sm_{arch}: {ln.label}]"
            if args.match not in cid:
                continue
            if args.list:
                print(cid)
                continue
            r = compile_one(ln, arch, args.resources)
            results.append(r)
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['seconds']:6.2f}s {cid}", flush=True)
        report = {"status": "ok", "triton": triton.__version__, "seconds": round(time.perf_counter() - t0, 1),
                  "cases": results, "uncovered": uncovered}
    with open(args.report, "w") as f:
        json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
