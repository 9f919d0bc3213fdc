"""Choosing the implementation of a fused op, per call.

Every effgan op takes ``impl="auto" | "triton" | "cpp" | "ref"``. Resolution happens on each call
from the argument, the tensors' device and the ``EFFGAN_IMPL`` environment variable; nothing here
is a switch that other code flips. What is cached is only the answer to "can this backend load on
this machine, and if not, why" — a fact that does not change while the process runs.
"""
from __future__ import annotations

import functools
import importlib
import os
import warnings

import torch

IMPLS = ("auto", "triton", "cpp", "ref")
ENV_VAR = "EFFGAN_IMPL"


def triton_interpreter_enabled() -> bool:
    """Whether Triton kernels run in the CPU interpreter (decided when kernels are decorated)."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "on", "yes")


@functools.cache
def triton_status() -> tuple[bool, str]:
    """(available, reason) for the Triton backend; the kernels package is imported here, lazily."""
    try:
        importlib.import_module("triton")
    except Exception as exc:  # ImportError, or a broken install raising anything else
        return False, f"triton could not be imported ({type(exc).__name__}: {exc})"
    try:
        importlib.import_module("effgan.kernels")
    except Exception as exc:
        return False, f"effgan.kernels could not be imported ({type(exc).__name__}: {exc})"
    return True, ""


@functools.cache
def cpp_status() -> tuple[bool, str]:
    """(available, reason) for the C++ CPU backend; building it on first use if needed."""
    try:
        from effgan import _cpp_build
    except Exception as exc:
        return False, f"the C++ backend is not part of this install ({type(exc).__name__}: {exc})"
    try:
        _cpp_build.load_extension()
    except Exception as exc:
        return False, f"the C++ extension could not be built or loaded ({type(exc).__name__}: {exc})"
    return True, ""


def cpp_extension():
    """The loaded C++ extension module (call only after cpp_status() reported it available)."""
    from effgan import _cpp_build

    return _cpp_build.load_extension()


@functools.cache
def launcher_module(backend: str, op: str):
    """The module whose ``forward``/``backward`` run ``op`` on ``backend``.

    Both backends expose the same launcher signatures per op: ``effgan.kernels.<op>`` (Triton) and
    ``effgan.ops._cpp_kernels.<op>`` (the C++ extension, outputs allocated in Python).
    """
    if backend == "triton":
        return importlib.import_module(f"effgan.kernels.{op}")
    if backend == "cpp":
        return getattr(importlib.import_module("effgan.ops._cpp_kernels"), op)
    raise ValueError(f"no launcher for backend {backend!r}")


def _warn_fallback_once(op: str, backend: str, reason: str) -> None:
    # Once per (backend, reason), not per op: a machine without a compiler would otherwise repeat
    # one cause for every fused op a model uses. A reason that names an op warns for that op.
    if (backend, reason) in _warned_fallbacks:
        return
    _warned_fallbacks.add((backend, reason))
    warnings.warn(
        f"effgan.{op}: the {backend} backend is unavailable ({reason}); effgan's fused ops use the "
        "PyTorch reference instead.",
        RuntimeWarning,
        stacklevel=5,  # _warn_fallback_once, _resolve, resolve_impl, the op, its caller
    )


_warned_fallbacks: set[tuple[str, str]] = set()


def _check_impl_name(impl: object, source: str) -> str:
    if not isinstance(impl, str) or impl not in IMPLS:
        raise ValueError(f"{source} must be one of {IMPLS}, got {impl!r}")
    return impl


def _backend_error(op: str, backend: str, device: torch.device) -> str | None:
    """Why `backend` cannot run `op` on `device`, or None when it can."""
    if backend == "ref":
        return None
    if backend == "triton":
        if device.type != "cuda" and not triton_interpreter_enabled():
            return (
                f"impl='triton' needs CUDA tensors (got {device.type}); on the CPU it runs only in the "
                "Triton interpreter, enabled by TRITON_INTERPRET=1 before effgan's kernels are first used"
            )
        ok, reason = triton_status()
        return None if ok else reason
    if backend == "cpp":
        if device.type != "cpu":
            return f"impl='cpp' runs on CPU tensors only (got {device.type})"
        ok, reason = cpp_status()
        if not ok:
            return reason
        if not hasattr(cpp_extension(), f"{op}_fwd"):
            return f"the C++ extension has no kernel for {op}"
        return None
    raise AssertionError(backend)


def _assume_constant_result(fn):
    """``torch.compiler.assume_constant_result`` without importing ``torch._dynamo``.

    torch's decorator imports the compiler stack (~1.2 s) to set one attribute; applied at import
    time it would make ``import effgan`` pay that in every process that never compiles. The
    attribute is what dynamo reads when it meets the function; tests/test_eager_path.py checks
    that torch's decorator still sets exactly this.
    """
    fn._dynamo_marked_constant = True
    return fn


# Under torch.compile the answer is baked into the graph: it depends only on the arguments, the
# environment and what can load, none of which a compiled region may change.
@_assume_constant_result
def resolve_impl(impl: str, device: torch.device, op: str) -> str:
    """Map the user's ``impl`` to the backend that will run ``op`` on ``device``.

    An explicit backend that cannot run raises RuntimeError with the reason; ``"auto"`` falls back
    to the reference with one warning per (op, backend, reason).
    """
    # Every input of the answer is in the key, the environment included, so the memo below is
    # never stale; it only spares eager calls the ~10 µs of working it out again.
    impl = _check_impl_name(impl, "impl")  # first: an unhashable impl must get this error, not lru_cache's
    return _resolve(impl, device, op, os.environ.get(ENV_VAR, "").strip(), triton_interpreter_enabled())


@functools.lru_cache(maxsize=256)
def _resolve(impl: str, device: torch.device, op: str, env: str, _interpreter: bool) -> str:
    if impl == "auto" and env:
        impl = _check_impl_name(env, f"the environment variable {ENV_VAR}")
    if impl != "auto":
        reason = _backend_error(op, impl, device)
        if reason is not None:
            raise RuntimeError(f"effgan.{op}: impl={impl!r} is unavailable: {reason}")
        return impl
    preferred = "triton" if device.type == "cuda" else "cpp" if device.type == "cpu" else "ref"
    if preferred == "ref":
        return "ref"
    reason = _backend_error(op, preferred, device)
    if reason is None:
        return preferred
    _warn_fallback_once(op, preferred, reason)
    return "ref"


def available_impls(device: torch.device | str, op: str) -> list[str]:
    """The backends that can run ``op`` on ``device`` in this process (for tests and benchmarks)."""
    device = torch.device(device)
    return [b for b in ("triton", "cpp", "ref") if _backend_error(op, b, device) is None]
