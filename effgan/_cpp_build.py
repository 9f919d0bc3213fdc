"""Building and loading the C++ CPU extension (``csrc/``, shipped as data of ``effgan.csrc``).

The extension is compiled on first use with ``torch.utils.cpp_extension.load`` (ninja) into a
cache directory keyed by everything that changes the binary: the sources, the torch and Python
versions, the compiler and the flags. A later process with the same key loads the cached build
straight from its file (``load_built``), without the builder, the compiler or write access.

The build targets the machine it runs on: on x86-64 CPUs where torch reports AVX2 (or AVX-512)
it adds ``-mavx2 -mfma -mf16c``, elsewhere no ISA flag (the SSE2 baseline on x86-64). AVX-512
machines get the same 256-bit build: the kernels' vectors are a fixed 8 floats wide (csrc/simd.h).
These flags are part of the key, so machines with different CPUs sharing one cache directory get
separate builds. Within a build, results do not depend on the thread count: the summation order is
fixed, and ``-ffp-contract=off`` keeps the compiler from fusing a * b + c into one rounding where
it happens to see both (which would differ between a kernel's vector loop and its scalar tail, and
so between its whole-plane and split-plane paths). The kernels' hot multiply-adds are written as
explicit fused ones instead (``csrc/simd.h: fmadd``: one rounding where the build has FMA, two
at the SSE2 baseline), so the AVX2 and baseline builds agree to rounding, not bit for bit.
``ATEN_CPU_CAPABILITY=default`` (torch's own switch) selects the baseline build.

Two processes building the same key at once serialise on an ``fcntl.flock`` lock file beside the
keyed directory: the first builds, the second waits and then loads what the first built. Holding
that lock also makes it safe to clear a lock file torch's own builder may have left behind when a
build was killed (torch's builder would otherwise wait on it forever).

Each new build is then checked once in a child process (``check_error_path``): an argument error
raised inside the extension must reach Python as an exception. A C++ compiler whose runtime does not
match torch's can produce an extension whose kernels work but whose error path crashes the process;
such a build is reported unavailable (effgan falls back to the reference) instead of being used.

Environment:
  EFFGAN_EXT_DIR         cache root (default ``~/.cache/effgan/ext``); builds go to ``<root>/<key>``.
  EFFGAN_VERBOSE_BUILD=1 show the compiler output while building.
  CXX                    the C++ compiler (torch's default: ``c++``); part of the key.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.resources
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

EXT_NAME = "effgan_cpp"
# Bump when the build recipe itself changes in a way the key would not otherwise see.
RECIPE_VERSION = 1
# -O3; -fno-trapping-math lets GCC turn the activations' selects and clamps into blends (without
# it the loops it auto-vectorises stay scalar); -fno-math-errno for sqrt; -fopenmp because
# at::parallel_for is an OpenMP region in torch's headers: without it every kernel would run on one
# thread. No -ffast-math and no FMA contraction: the kernels' rounding is part of their
# determinism (fused multiply-adds are explicit, csrc/simd.h). The ISA flags are added per machine,
# see isa_flags().
CFLAGS = ("-O3", "-fopenmp", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-Wno-unused-function")
# x86-64 with AVX2: 256-bit vectors, FMA, and F16C's half <-> float conversions.
AVX2_FLAGS = ("-mavx2", "-mfma", "-mf16c")
# --exclude-libs,ALL keeps the symbols of any static library the compiler links in private to the
# extension. A compiler configured to link its own C++ runtime statically (newer than the one torch
# loads) would otherwise export that runtime's symbols, and the extension's calls into it would
# bind to torch's older copy at load time: iostream and locale state of one version used by code of
# the other. Formatting a number in an error message crashed that way on one machine.
LDFLAGS = ("-fopenmp",) + (("-Wl,--exclude-libs,ALL",) if sys.platform.startswith("linux") else ())
SOURCE_SUFFIXES = (".cpp", ".h")
LOG_TAIL_CHARS = 4000


def source_dir() -> Path:
    """The directory holding the C++ sources (``csrc/`` in a checkout, ``effgan/csrc`` installed)."""
    return Path(str(importlib.resources.files("effgan.csrc")))


def source_files(src: Path | None = None) -> list[Path]:
    root = source_dir() if src is None else Path(src)
    return sorted(p for p in root.iterdir() if p.suffix in SOURCE_SUFFIXES and p.is_file())


def cache_root() -> Path:
    env = os.environ.get("EFFGAN_EXT_DIR", "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "effgan" / "ext"


def isa_flags() -> tuple[str, ...]:
    """The vector ISA flags for this machine: AVX2_FLAGS on x86-64 where torch finds AVX2, else none.

    torch's capability check (cpuinfo) also requires FMA for AVX2; every AVX2 CPU has F16C.
    """
    import torch

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return ()
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        return AVX2_FLAGS
    return ()


def compile_flags() -> tuple[str, ...]:
    return CFLAGS + isa_flags()


def build_key(src: Path | None = None, name: str = EXT_NAME) -> str:
    """A short hash of the sources, the toolchain and the flags: one cache entry per distinct build."""
    import torch

    h = hashlib.sha256()
    h.update(f"recipe={RECIPE_VERSION} name={name}\n".encode())
    h.update(f"torch={torch.__version__}\n".encode())
    h.update(f"python={sys.version_info[:2]}\n".encode())
    h.update(f"cxx={os.environ.get('CXX', 'c++')}\n".encode())
    h.update(f"cflags={compile_flags()} ldflags={LDFLAGS}\n".encode())
    for path in source_files(src):
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def build_dir(src: Path | None = None, name: str = EXT_NAME) -> Path:
    return cache_root() / build_key(src, name)


def verbose_build() -> bool:
    return os.environ.get("EFFGAN_VERBOSE_BUILD", "0").lower() in ("1", "true", "on", "yes")


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """An exclusive advisory lock held across processes (a no-op where fcntl does not exist)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: fall back to torch's own lock inside the build directory
        yield
        return
    with open(lock_path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class ExtensionBuildError(RuntimeError):
    """The C++ extension failed to compile or load; the message ends with the build log's tail."""


def _log_tail(text: str) -> str:
    text = text.strip()
    if len(text) > LOG_TAIL_CHARS:
        text = "...\n" + text[-LOG_TAIL_CHARS:]
    return text


@contextlib.contextmanager
def _ninja_on_path():
    """Make the ``ninja`` package's binary findable for the build, where PATH does not have one.

    torch's builder runs ``ninja`` by name. effgan requires the ``ninja`` package, whose binary
    sits in the environment's scripts directory: on PATH in an activated virtual environment, not
    when its python is run by path. PATH is extended for the build only and then restored (a build
    happens once per key, under the lock).
    """
    try:
        import ninja
        bin_dir = ninja.BIN_DIR
    except Exception:  # not installed (or an unexpected layout): torch's error will say ninja is missing
        bin_dir = None
    if bin_dir is None or shutil.which("ninja") is not None:
        yield
        return
    old = os.environ.get("PATH")
    os.environ["PATH"] = bin_dir if not old else bin_dir + os.pathsep + old
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old


def _build_and_load(target: Path, src: Path, name: str):
    from torch.utils import cpp_extension

    target.mkdir(parents=True, exist_ok=True)
    # Only effgan processes use this directory, and we hold the flock: a leftover torch lock file
    # can only come from a build that was killed, so it is safe (and necessary) to remove it.
    with contextlib.suppress(FileNotFoundError):
        (target / "lock").unlink()
    with _ninja_on_path():
        return cpp_extension.load(
            name=name,
            sources=[str(p) for p in source_files(src) if p.suffix == ".cpp"],
            extra_cflags=list(compile_flags()),
            extra_ldflags=list(LDFLAGS),
            extra_include_paths=[str(src)],
            build_directory=str(target),
            verbose=verbose_build(),
        )


def build(*, quiet: bool = True, src: Path | None = None, name: str = EXT_NAME):
    """Build (or reuse) the extension for this machine and return the loaded module.

    ``src``/``name`` default to effgan's own sources; the tests build small stand-ins through them.
    Raises ExtensionBuildError with the tail of the compiler output when the build fails.
    A finished build of this key is loaded from its file without the builder: the key covers the
    sources' contents, not their paths, so another copy of the same sources (a second checkout or
    environment) shares the entry, and torch's builder would recompile and relink its .so in place
    (the build file then names other paths) while other processes may be loading it.
    """
    src = source_dir() if src is None else Path(src)
    start = time.perf_counter()
    finished = load_built(src, name)
    if finished is not None:
        if not quiet:
            print(f"effgan C++ extension ready in {Path(finished.__file__).parent} (already built)")
        return finished
    target = build_dir(src, name)
    cache_root().mkdir(parents=True, exist_ok=True)
    with _exclusive(cache_root() / f"{target.name}.lock"):
        try:
            module = _build_and_load(target, src, name)
        except Exception as exc:
            detail = _log_tail(str(exc))
            with contextlib.suppress(OSError):
                (target / "effgan_build_error.log").write_text(str(exc))
            raise ExtensionBuildError(
                f"building the effgan C++ extension in {target} failed "
                f"(compiler: {os.environ.get('CXX', 'c++')}; set EFFGAN_VERBOSE_BUILD=1 for the full "
                f"output). Build log tail:\n{detail}"
            ) from exc
    if not quiet:
        print(f"effgan C++ extension ready in {target} ({time.perf_counter() - start:.1f} s)")
    return module


# Run in a child process by check_error_path: loads the extension from its file and calls its
# probe, which raises through TORCH_CHECK with numbers in the message, the path every argument check
# takes. Exit 0 only when that arrives here as the ValueError it should be.
_ERROR_PATH_PROBE = """
import importlib.util, sys
import torch
spec = importlib.util.spec_from_file_location(sys.argv[2], sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
try:
    module.error_path_probe(7, 0.5)
except ValueError as exc:
    sys.exit(0 if "error path probe: 7 0.5" in str(exc) else f"unexpected message: {exc}")
sys.exit("error_path_probe returned instead of raising")
"""
ERROR_PATH_STAMP = "error_path_ok"


def check_error_path(module) -> None:
    """Raise ExtensionBuildError unless the extension's argument errors reach Python as exceptions.

    A toolchain that does not match torch's can build an extension whose kernels run but whose
    error path (formatting the message, throwing, translating to Python) kills the process. That
    must never happen on a user's bad call, so each new build is checked once, in a child process,
    and marked by a stamp file beside it.
    """
    path = Path(module.__file__)
    stamp = path.parent / ERROR_PATH_STAMP
    if stamp.exists():
        return
    probe = subprocess.run([sys.executable, "-c", _ERROR_PATH_PROBE, str(path), module.__name__],
                           capture_output=True, text=True, timeout=600)
    if probe.returncode != 0:
        how = f"signal {-probe.returncode}" if probe.returncode < 0 else f"exit status {probe.returncode}"
        raise ExtensionBuildError(
            f"the effgan C++ extension in {path.parent} built, but raising an argument error from it "
            f"ended its test process ({how}) instead of raising ValueError. This happens when the C++ "
            f"compiler ({os.environ.get('CXX', 'c++')}) does not match the C++ runtime torch uses; set CXX "
            f"to the system compiler and rebuild. Output tail:\n{_log_tail(probe.stdout + probe.stderr)}"
        )
    tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text("the error path raised ValueError in a child process\n")
    os.replace(tmp, stamp)


def load_built(src: Path | None = None, name: str = EXT_NAME):
    """The finished build of this key, loaded straight from its file; None where there is none.

    Finished means its error path was checked (the stamp is written after the build and the check
    both succeeded, by an atomic rename), and the key covers everything the binary depends on, so
    the builder's own up-to-date check has nothing to add. Skipping it needs no compiler, no ninja,
    no lock and no write access: a cache built into an image and mounted read-only loads this way
    (taking the lock would fail there), and a process saves the builder's check (~60 ms: ninja
    run in a child process).
    """
    path = build_dir(src, name) / f"{name}{'.pyd' if sys.platform == 'win32' else '.so'}"
    if not (path.parent / ERROR_PATH_STAMP).is_file() or not path.is_file():
        return None
    return module_from_file(path, name)


def module_from_file(path: str | Path, name: str):
    """The extension module in the file at ``path``, imported as ``name`` (its last component must
    be the name the module was built with: the init symbol is looked up by it)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@functools.cache
def load_extension():
    """The compiled extension module, cached per process: a finished build if this key has one,
    else built now (its error path checked)."""
    module = load_built()
    if module is None:
        module = build()
        check_error_path(module)
    return module
