"""Every Triton kernel in effgan.kernels compiles for NVIDIA GPUs (sm_90, and a subset for sm_80).

The other kernel tests run in Triton's CPU interpreter, which accepts code the real compiler rejects
(a loop-carried variable changing type, scalar/tensor mixing, ...). This test compiles each kernel
ahead of time through the full NVIDIA pipeline down to a cubin (ptxas ships with Triton's wheel),
no GPU needed, with the arguments and launch geometry its host launcher would use on an H100.

conftest.py sets TRITON_INTERPRET=1, which makes @triton.jit return interpreted functions, so the
compilation runs in a subprocess without it: tests/triton_compile_worker.py (which can also be run
by hand, see its docstring).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("triton_compile_worker.py")
REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run_worker(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    # A fresh cache, so every kernel really goes through the compiler (and ~/.triton is left alone).
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    # Triton 3.9 warns when this is unset; 1 is the default of the Triton releases effgan runs on.
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, str(WORKER), str(report)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    shutil.rmtree(tmp_path / "triton-cache", ignore_errors=True)  # tens of MB of IR and cubins
    if proc.returncode != 0 or not report.exists():
        pytest.fail(f"{WORKER.name} exited with {proc.returncode}\n"
                    f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-8000:]}")
    return json.loads(report.read_text())


def _describe(failed):
    """Per kernel: the first failure's full error, then the other failing cases' last error line."""
    by_kernel = {}
    for case in failed:
        by_kernel.setdefault(case["kernel"], []).append(case)
    out = []
    for kernel, cases in by_kernel.items():
        msg = cases[0]["error"]
        if len(msg) > 3000:
            msg = msg[:1500] + "\n[...]\n" + msg[-1500:]
        out.append(f"--- {cases[0]['id']}\n{msg}")
        out += [f"--- {c['id']}\n    {c['error'].strip().splitlines()[-1]}" for c in cases[1:]]
    return "\n".join(out)


def test_every_kernel_compiles_for_nvidia_targets(tmp_path):
    pytest.importorskip("triton")
    report = _run_worker(tmp_path)
    if report["status"] == "skip":
        pytest.skip(report["reason"])

    cases = report["cases"]
    assert cases, "no compile cases"
    assert {c["arch"] for c in cases} == {90, 80}
    problems = []
    if report["uncovered"]:
        problems.append("coverage gaps in tests/triton_compile_cases.py:\n  " + "\n  ".join(report["uncovered"]))
    failed = [c for c in cases if not c["ok"]]
    if failed:
        kernels = sorted({f"{c['kernel']} (sm_{c['arch']})" for c in failed})
        problems.append(f"{len(failed)} of {len(cases)} compilations failed, in {', '.join(kernels)}:\n"
                        + _describe(failed))
    # Successful cases went all the way down to a cubin (ptxas ran).
    short = [c["id"] for c in cases if c["ok"] and "cubin" not in c["stages"]]
    if short:
        problems.append("compiled without reaching a cubin:\n  " + "\n  ".join(short))
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
