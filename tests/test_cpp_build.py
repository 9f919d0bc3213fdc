"""The C++ backend's build machinery: cache keys, concurrent builds, a missing compiler, bad calls.

Builds of the real extension are slow, so the machinery tests build a one-function stand-in
through ``_cpp_build.build(src=..., name=...)``; the tests that call the real extension skip when
it is unavailable (the op tests then list the cpp backend as skipped, with the reason).
"""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from effgan import _cpp_build
from effgan._backend import cpp_status

REPO = Path(__file__).resolve().parents[1]
TINY_SOURCE = textwrap.dedent(
    """
    #include <pybind11/pybind11.h>
    static int answer() { return 42; }
    PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("answer", &answer); }
    """
)

needs_extension = pytest.mark.skipif(not cpp_status()[0], reason=f"C++ extension unavailable: {cpp_status()[1]}")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("EFFGAN_IMPL", "EFFGAN_VERBOSE_BUILD")}
    env.update(extra)
    return env


def _tiny_sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "tiny.cpp").write_text(TINY_SOURCE)
    return src


def test_key_tracks_sources_toolchain_and_name(tmp_path, monkeypatch):
    src = tmp_path / "csrc"
    shutil.copytree(_cpp_build.source_dir(), src, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    key = _cpp_build.build_key(src)
    assert key == _cpp_build.build_key(src), "the key must be stable"
    header = next(src.glob("*.h"))
    header.write_text(header.read_text() + "\n// changed\n")
    changed = _cpp_build.build_key(src)
    assert changed != key, "editing a header must change the key"
    (src / "extra.cpp").write_text("// new source\n")
    assert _cpp_build.build_key(src) != changed, "adding a source must change the key"
    (src / "notes.txt").write_text("not a source")
    (src / "extra.cpp").unlink()
    assert _cpp_build.build_key(src) == changed, "non-source files are not part of the key"
    assert _cpp_build.build_key(src, name="other") != changed
    monkeypatch.setenv("CXX", "/some/other/c++")
    assert _cpp_build.build_key(src) != changed, "the compiler is part of the key"


@pytest.mark.parametrize(
    "machine, capability, expected",
    [
        ("x86_64", "AVX2", _cpp_build.AVX2_FLAGS),
        ("x86_64", "AVX512", _cpp_build.AVX2_FLAGS),  # the kernels' vectors are 256-bit anyway
        ("x86_64", "DEFAULT", ()),
        ("aarch64", "DEFAULT", ()),
    ],
)
def test_isa_flags_follow_the_cpu_and_enter_the_key(monkeypatch, machine, capability, expected):
    monkeypatch.setattr(_cpp_build.platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert _cpp_build.isa_flags() == expected
    assert _cpp_build.compile_flags() == _cpp_build.CFLAGS + expected
    key = _cpp_build.build_key()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT" if expected else "AVX2")
    if machine == "x86_64":
        assert _cpp_build.build_key() != key, "machines with and without AVX2 must not share a build"


def test_cache_root_is_overridable(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFGAN_EXT_DIR", str(tmp_path / "cache"))
    assert _cpp_build.build_dir() == tmp_path / "cache" / _cpp_build.build_key()
    out = subprocess.run(
        [sys.executable, "-m", "effgan.build_ext", "--print-dir"],
        env=_env(EFFGAN_EXT_DIR=str(tmp_path / "cache")), capture_output=True, text=True, check=True,
    )
    assert out.stdout.strip() == str(_cpp_build.build_dir())


def test_concurrent_builds_both_succeed(tmp_path):
    """Two processes building one key at once: one compiles, the other waits, both load it.

    A stale lock file of torch's builder (left by a killed build) is in the way and must not hang them.
    """
    src = _tiny_sources(tmp_path)
    cache = tmp_path / "cache"
    env = _env(EFFGAN_EXT_DIR=str(cache))
    script = textwrap.dedent(
        f"""
        from effgan import _cpp_build
        m = _cpp_build.build(src={str(src)!r}, name="effgan_tiny")
        print("answer", m.answer())
        """
    )
    key_dir = subprocess.run(
        [sys.executable, "-c", f"from effgan import _cpp_build; print(_cpp_build.build_dir({str(src)!r}, 'effgan_tiny'))"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()
    Path(key_dir).mkdir(parents=True)
    (Path(key_dir) / "lock").write_text("")
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out
        assert "answer 42" in out, out
    assert list(Path(key_dir).glob("effgan_tiny*.so"))


def test_a_finished_build_loads_from_its_file(tmp_path, monkeypatch):
    """load_built takes a build only once its error path was checked (the stamp), and then needs
    neither the builder nor the lock: a cache mounted read-only still loads."""
    monkeypatch.setenv("EFFGAN_EXT_DIR", str(tmp_path / "cache"))
    src = _tiny_sources(tmp_path)
    assert _cpp_build.load_built(src, "effgan_tiny_built") is None, "nothing built yet"
    built = _cpp_build.build(src=src, name="effgan_tiny_built")
    assert _cpp_build.load_built(src, "effgan_tiny_built") is None, "an unchecked build must not be used"
    (Path(built.__file__).parent / _cpp_build.ERROR_PATH_STAMP).write_text("checked\n")

    def refuse(*args, **kwargs):
        raise PermissionError("read-only cache")

    monkeypatch.setattr(_cpp_build, "_exclusive", refuse)
    monkeypatch.setattr(_cpp_build, "_build_and_load", refuse)
    module = _cpp_build.load_built(src, "effgan_tiny_built")
    assert module is not None and module.answer() == 42
    assert Path(module.__file__) == Path(built.__file__)


def test_build_reuses_a_finished_build_of_its_key(tmp_path, monkeypatch):
    """Another copy of the same sources (a second checkout or environment) has the same key: build()
    must hand back the finished build instead of running the builder, which would recompile and
    relink the shared .so in place (its build file names the other copy's paths) while other
    processes may be loading it, and which needs a compiler and write access."""
    monkeypatch.setenv("EFFGAN_EXT_DIR", str(tmp_path / "cache"))
    first, second = _tiny_sources(tmp_path), tmp_path / "copy"
    shutil.copytree(first, second)
    assert _cpp_build.build_key(first, "effgan_tiny_reuse") == _cpp_build.build_key(second, "effgan_tiny_reuse")
    built = _cpp_build.build(src=first, name="effgan_tiny_reuse")
    (Path(built.__file__).parent / _cpp_build.ERROR_PATH_STAMP).write_text("checked\n")
    stamp = os.stat(built.__file__).st_mtime_ns

    def refuse(*args, **kwargs):
        raise PermissionError("read-only cache")

    monkeypatch.setattr(_cpp_build, "_exclusive", refuse)
    monkeypatch.setattr(_cpp_build, "_build_and_load", refuse)
    module = _cpp_build.build(src=second, name="effgan_tiny_reuse")
    assert module.answer() == 42
    assert Path(module.__file__) == Path(built.__file__)
    assert os.stat(built.__file__).st_mtime_ns == stamp, "the finished build was rewritten"


@needs_extension
def test_build_ext_reports_a_finished_build_without_building():
    """python -m effgan.build_ext on a cache that already holds this key's checked build (an image's
    prebuilt cache, mounted read-only) reports it ready instead of failing to take the lock."""
    script = textwrap.dedent(
        """
        import sys
        from effgan import _cpp_build, build_ext
        def refuse(*args, **kwargs):
            raise PermissionError("read-only cache")
        _cpp_build._exclusive = refuse
        _cpp_build._build_and_load = refuse
        sys.exit(build_ext.main([]))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ops: " in out.stdout, out.stdout + out.stderr


@needs_extension
def test_the_real_extension_loads_without_builder_or_lock():
    """A fresh process given the prebuilt cache runs the cpp ops with building and locking refused."""
    script = textwrap.dedent(
        """
        import torch
        from effgan import _cpp_build
        def refuse(*args, **kwargs):
            raise PermissionError("read-only cache")
        _cpp_build._exclusive = refuse
        _cpp_build._build_and_load = refuse
        from effgan.ops import instance_norm_act, instance_norm_act_ref, se_scale
        x = torch.randn(2, 3, 6, 7)
        torch.testing.assert_close(instance_norm_act(x, act="relu", impl="cpp"), instance_norm_act_ref(x, act="relu"))
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stdout + out.stderr


def test_builds_with_only_the_ninja_package(tmp_path):
    """PATH without any ninja (a virtual environment's python run by path, no system ninja): the
    build finds the binary of the ninja package effgan requires, and leaves PATH as it was."""
    import ninja  # an install requirement (setup.py)

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in dict.fromkeys(os.environ.get("PATH", "").split(os.pathsep)):
        if (not directory or not os.path.isdir(directory)
                or os.path.realpath(directory) == os.path.realpath(ninja.BIN_DIR)):
            continue
        for entry in os.scandir(directory):
            if entry.name != "ninja" and not (bin_dir / entry.name).exists():
                (bin_dir / entry.name).symlink_to(entry.path)
    assert shutil.which("ninja", path=str(bin_dir)) is None
    src = _tiny_sources(tmp_path)
    script = textwrap.dedent(
        f"""
        import os
        from effgan import _cpp_build
        m = _cpp_build.build(src={str(src)!r}, name="effgan_tiny_ninja")
        assert os.environ["PATH"] == {str(bin_dir)!r}, os.environ["PATH"]
        print("answer", m.answer())
        """
    )
    env = _env(EFFGAN_EXT_DIR=str(tmp_path / "cache"), PATH=str(bin_dir))
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "answer 42" in out.stdout, out.stdout + out.stderr


CRASHING_PROBE_SOURCE = textwrap.dedent(
    """
    #include <csignal>
    #include <pybind11/pybind11.h>
    // What a mismatched C++ runtime did to the real extension's error path on one machine.
    static void probe(long, double) { std::raise(SIGSEGV); }
    PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("error_path_probe", &probe); }
    """
)


@pytest.mark.parametrize(
    "source, name, how, tail",
    [
        (CRASHING_PROBE_SOURCE, "effgan_crashing_probe", "signal 11", ""),
        (TINY_SOURCE, "effgan_tiny_probe", "exit status 1", "no attribute 'error_path_probe'"),  # no probe at all
    ],
)
def test_an_extension_whose_error_path_fails_is_refused(tmp_path, monkeypatch, source, name, how, tail):
    monkeypatch.setenv("EFFGAN_EXT_DIR", str(tmp_path / "cache"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "probe.cpp").write_text(source)
    module = _cpp_build.build(src=src, name=name)
    with pytest.raises(_cpp_build.ExtensionBuildError, match=f"(?s)ended its test process \\({how}\\).*set CXX.*{tail}"):
        _cpp_build.check_error_path(module)
    assert not (Path(module.__file__).parent / _cpp_build.ERROR_PATH_STAMP).exists()


@needs_extension
def test_the_extension_error_path_was_checked():
    module = _ext()
    assert (Path(module.__file__).parent / _cpp_build.ERROR_PATH_STAMP).exists()
    with pytest.raises(ValueError, match="error path probe: 3 0.25"):
        module.error_path_probe(3, 0.25)


FORMATTING_SOURCE = textwrap.dedent(
    """
    #include <sstream>
    #include <string>
    #include <pybind11/pybind11.h>
    // Formats a number the way c10::str does in an argument check's message.
    static std::string show(long n) { std::ostringstream s; s << n; return s.str(); }
    PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("show", &show); }
    """
)
# Defined by the C++ runtime itself (not instantiated from headers): exported only if the runtime's
# static archive was linked in with its symbols left public.
RUNTIME_SYMBOLS = ("_ZNSt6locale7classicEv", "_ZNSo9_M_insertIlEERSoT_", "_ZNSolsEi")


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("nm") is None, reason="GNU ld and nm")
def test_a_statically_linked_cxx_runtime_stays_private(tmp_path, monkeypatch):
    """Built the way a compiler that links its own C++ runtime statically builds it, the extension
    must export none of that runtime's symbols: torch's libraries could bind to them, and the
    extension's own calls could bind to torch's runtime instead of the one it was compiled for."""
    monkeypatch.setenv("EFFGAN_EXT_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(_cpp_build, "LDFLAGS", _cpp_build.LDFLAGS + ("-static-libstdc++",))
    src = tmp_path / "src"
    src.mkdir()
    (src / "show.cpp").write_text(FORMATTING_SOURCE)
    module = _cpp_build.build(src=src, name="effgan_static_runtime")
    assert module.show(-12345) == "-12345"
    exported = set(subprocess.run(["nm", "-D", "--defined-only", module.__file__], capture_output=True, text=True,
                                  check=True).stdout.split())
    assert not exported & set(RUNTIME_SYMBOLS)


def test_missing_compiler_raises_and_auto_falls_back_once(tmp_path):
    script = textwrap.dedent(
        """
        import warnings
        import torch
        from effgan import _cpp_build
        from effgan.ops import instance_norm_act, instance_norm_act_ref, se_scale
        try:
            _cpp_build.load_extension()
        except _cpp_build.ExtensionBuildError as exc:
            assert "Build log tail" in str(exc), str(exc)
            assert "/nonexistent/c++" in str(exc), str(exc)
        else:
            raise SystemExit("load_extension() did not raise")
        x = torch.randn(2, 3, 4, 4)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y1 = instance_norm_act(x, act="relu")
            y2 = instance_norm_act(x, act="relu")
            se_scale(x, torch.rand(2, 3))  # another op: the same missing compiler, no second warning
        msgs = [str(w.message) for w in caught if "cpp backend is unavailable" in str(w.message)]
        assert len(msgs) == 1, [str(w.message) for w in caught]
        torch.testing.assert_close(y1, instance_norm_act_ref(x, act="relu"))
        torch.testing.assert_close(y2, y1)
        try:
            instance_norm_act(x, impl="cpp")
        except RuntimeError as exc:
            assert "impl='cpp' is unavailable" in str(exc)
        else:
            raise SystemExit("impl='cpp' did not raise")
        print("ok")
        """
    )
    env = _env(EFFGAN_EXT_DIR=str(tmp_path / "cache"), CXX="/nonexistent/c++")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "ok" in out.stdout, out.stdout + out.stderr


# ---------------------------------------------------------------- the real extension


def _ext():
    return _cpp_build.load_extension()


def _fwd_args(**over):
    x = torch.randn(2, 3, 4, 5)
    args = dict(x=x, weight=None, bias=None, residual=None, y=torch.empty_like(x), mean=torch.empty(2, 3),
                rstd=torch.empty(2, 3), eps=1e-5, act=0, slope=0.0)
    args.update(over)
    return args


@needs_extension
@pytest.mark.parametrize(
    "over, exc, match",
    [
        (dict(x=torch.ones(2, 3, 4, 5, dtype=torch.int32)), TypeError, "x must be float16"),
        (dict(x=torch.randn(2, 3, 20)), ValueError, "x must be 4-D"),
        (dict(x=torch.randn(2, 3, 5, 4).transpose(2, 3)), ValueError, "x must be contiguous"),
        (dict(y=torch.empty(2, 3, 4, 4)), ValueError, "y must have shape"),
        (dict(y=torch.empty(2, 3, 4, 5, dtype=torch.float64)), TypeError, "y must have dtype"),
        (dict(y=torch.empty(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)), ValueError, "strides"),
        (dict(mean=torch.empty(2, 4)), ValueError, "mean must have shape"),
        (dict(rstd=torch.empty(2, 3, dtype=torch.float64)), TypeError, "rstd must have dtype"),
        (dict(weight=torch.randn(4)), ValueError, "weight must have shape"),
        (dict(residual=torch.randn(2, 3, 4, 6)), ValueError, "residual must have shape"),
        (dict(eps=0.0), ValueError, "eps"),
        (dict(act=7), ValueError, "act must be"),
        (dict(slope=float("nan")), ValueError, "slope"),
        (dict(x=torch.randn(2, 3, 4, 5, device="meta")), ValueError, "CPU tensor"),
        (dict(x=None), TypeError, "incompatible function arguments"),
    ],
)
def test_bad_calls_into_the_extension_raise(over, exc, match):
    with pytest.raises(exc, match=match):
        _ext().instance_norm_act_fwd(**_fwd_args(**over))


@needs_extension
def test_bad_backward_and_adain_calls_raise():
    x = torch.randn(2, 3, 4, 5)
    ext = _ext()
    with pytest.raises(ValueError, match="dy must have shape"):
        ext.instance_norm_act_bwd(torch.randn(2, 3, 4, 4), x, None, None, torch.zeros(2, 3), torch.ones(2, 3),
                                  torch.empty_like(x), torch.empty(2, 3), torch.empty(2, 3), 0, 0.0)
    if hasattr(ext, "adain_fwd"):
        stats = [torch.empty(2, 3) for _ in range(3)]
        with pytest.raises(ValueError, match="noise must be"):
            ext.adain_fwd(x, torch.ones(2, 3), torch.zeros(2, 3), torch.randn(2, 7), torch.ones(3), None,
                          torch.empty_like(x), *stats, 1e-5, 2, 0.2)
        with pytest.raises(ValueError, match="together"):
            ext.adain_fwd(x, torch.ones(2, 3), torch.zeros(2, 3), None, torch.ones(3), None,
                          torch.empty_like(x), *stats, 1e-5, 2, 0.2)
        with pytest.raises(ValueError, match="style_scale must have shape"):
            ext.adain_fwd(x, torch.ones(3, 2), torch.zeros(2, 3), None, None, None,
                          torch.empty_like(x), *stats, 1e-5, 2, 0.2)


@needs_extension
@pytest.mark.parametrize("shape, channels_last", [((1, 2, 130, 97), False), ((2, 5, 67, 65), True),
                                                  ((3, 4, 9, 9), False), ((2, 300, 9, 7), True)])
def test_results_do_not_depend_on_the_thread_count(shape, channels_last):
    """Reductions are cut at fixed blocks and combined in order: 1 thread and 2 threads agree bitwise.

    (1, 2, 130, 97) has too few planes for the thread count, so its planes are split among threads;
    (2, 300, 9, 7) channels_last has more channels than fit kBlock values into a chunk of the minimum
    pixels (csrc/params.h: kChunkMinPixels), so its chunks take more.
    """
    from effgan.ops import instance_norm_act

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen) * 3 + 1
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(shape[1], generator=gen), torch.randn(shape[1], generator=gen)
    g = torch.randn(shape, generator=gen)

    def run():
        xl = x.clone().requires_grad_()
        wl, bl = w.clone().requires_grad_(), b.clone().requires_grad_()
        y = instance_norm_act(xl, wl, bl, act="silu", impl="cpp")
        y.backward(g)
        return y.detach(), xl.grad, wl.grad, bl.grad

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run()
        torch.set_num_threads(max(2, threads))
        many = run()
    finally:
        torch.set_num_threads(threads)
    for a, e in zip(one, many):
        assert torch.equal(a, e)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "c++")) is None, reason="no C++ compiler")
def test_sources_are_cxx17():
    """Torch releases before 2.13 compile extensions as C++17 (setup.py allows torch >= 2.4), so no
    C++20 feature may creep into csrc/ unnoticed here, where torch compiles them as C++20."""
    import sysconfig

    from torch.utils.cpp_extension import include_paths

    src = _cpp_build.source_dir()
    includes = [f"-I{src}"] + [f"-isystem{p}" for p in include_paths() + [sysconfig.get_paths()["include"]]]
    cmd = [os.environ.get("CXX", "c++"), "-std=c++17", "-fsyntax-only", *_cpp_build.compile_flags(),
           "-DTORCH_EXTENSION_NAME=effgan_cpp", "-DTORCH_API_INCLUDE_EXTENSION_H", *includes]
    sources = [p for p in _cpp_build.source_files(src) if p.suffix == ".cpp"]
    # One compiler per source, all at once: each spends most of its time parsing torch's headers.
    checks = {p.name: subprocess.Popen([*cmd, str(p)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
              for p in sources}
    failed = {name: proc.communicate()[1][-3000:] for name, proc in checks.items()}
    failed = {name: err for name, err in failed.items() if checks[name].returncode != 0}
    assert not failed, failed


@needs_extension
@pytest.mark.parametrize("op", ["instance_norm_act", "adain", "se_scale"])
def test_channels_last_with_many_channels(op):
    """channels_last pixel chunks take at least kChunkMinPixels pixels (csrc/params.h); at C=300 and
    C=2100 that is more than kBlock values, with the last chunk of a sample partial: all gradients
    against the float64 reference."""
    from effgan import ops

    for shape in ((2, 300, 9, 7), (1, 2100, 5, 9)):
        gen = torch.Generator().manual_seed(1)
        N, C = shape[:2]
        x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 1
        x = x.contiguous(memory_format=torch.channels_last)
        extra = {"instance_norm_act": [torch.randn(C, generator=gen, dtype=torch.float64) for _ in range(2)],
                 "adain": [torch.randn(N, C, generator=gen, dtype=torch.float64) for _ in range(2)],
                 "se_scale": [torch.randn(N, C, generator=gen, dtype=torch.float64)]}[op]
        dy = torch.randn(shape, generator=gen, dtype=torch.float64)
        fn, ref = getattr(ops, op), getattr(ops, f"{op}_ref")

        def run(f, dtype, **kw):
            inputs = [t.to(dtype).requires_grad_() for t in (x, *extra)]
            y = f(*inputs, **kw)
            y.backward(dy.to(dtype))
            return [y.detach()] + [t.grad for t in inputs]

        got = run(fn, torch.float32, impl="cpp")
        want = run(ref, torch.float64)
        assert got[0].is_contiguous(memory_format=torch.channels_last)
        for name, a, e in zip(("y", "dx", "d1", "d2"), got, want):
            torch.testing.assert_close(a.double(), e, atol=1e-4, rtol=1e-4,
                                       msg=lambda m, n=name: f"{op} {shape} {n}: {m}")
