"""The benchmark command runs end to end at a tiny size and writes a complete JSON report."""
import json

from effgan.bench.__main__ import main


def test_bench_cli_tiny(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["--device", "cpu", "--ops", "instance_norm_act", "--shapes", "1x3x9x7", "--providers", "effgan,eager",
               "--modes", "fwd,fwd+bwd", "--e2e", "no", "--budget", "0.01", "--out", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    assert data["info"]["torch"] and data["info"]["commit"]
    assert data["copy_bandwidth_gbps"] > 0
    rows = [r for r in data["ops"] if "error" not in r]
    assert {(r["provider"], r["mode"]) for r in rows} == {(p, m) for p in ("effgan", "eager") for m in ("fwd", "fwd+bwd")}
    assert all(r["median_ms"] > 0 and r["gbps"] > 0 for r in rows)
    (row,) = data["speedups"]
    assert row["vs_eager"] > 0
    assert "| instance_norm_act | 1x3x9x7 |" in capsys.readouterr().out
