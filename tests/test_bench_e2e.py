"""The end-to-end benchmark times real training steps of each family, eager and fused, side by side."""
import torch

from effgan.bench.e2e import VARIANTS, ModelSpec, run_e2e_benchmarks


def test_e2e_runs_each_family_eager_and_fused():
    specs = (
        ModelSpec("cyclegan-tiny", "cyclegan", 32, 1, overrides=(("ngf", 4), ("ndf", 4))),
        ModelSpec("dcgan-tiny", "dcgan", 28, 4, channels=1, overrides=(("ngf", 8),)),
        ModelSpec("stylegan-tiny", "stylegan", 32, 2, overrides=(("ngf", 8),)),
    )
    variants = [v for v in VARIANTS if v.name in ("eager", "fused", "fused+graphs")]
    rows = run_e2e_benchmarks(torch.device("cpu"), specs=specs, variants=variants, budget_s=0.01,
                              warmup=1, min_runs=2, log=lambda *_: None)
    assert [r.get("error") for r in rows] == [None] * len(rows)
    # CUDA graphs are skipped on the CPU; the other two run for every family
    assert {(r["model"], r["variant"]) for r in rows} == {(s.label, v) for s in specs for v in ("eager", "fused")}
    for r in rows:
        assert r["images_per_s"] > 0 and r["step_ms"] > 0 and r["runs"] >= 2
        assert r["vs_eager"] > 0
        assert r["peak_bytes"] is None and r["first_step_peak_bytes"] is None  # CUDA only


def test_a_variant_failing_while_timed_is_an_error_row(monkeypatch):
    """A step may fail after its first call succeeded (StyleGAN's R1 steps come every few steps): that
    variant becomes an error row and the others are still timed."""
    from effgan.bench import e2e

    def fake_step_fn(spec, variant, device):
        calls = {"n": 0}

        def step(batch):
            calls["n"] += 1
            if variant.name == "fused" and calls["n"] == 3:
                raise RuntimeError("no double backward here")
            return batch

        return step, [0, 1]

    monkeypatch.setattr(e2e, "step_fn", fake_step_fn)
    variants = [v for v in VARIANTS if v.name in ("eager", "fused")]
    rows = run_e2e_benchmarks(torch.device("cpu"), specs=(ModelSpec("m", "dcgan", 28, 1),), variants=variants,
                              budget_s=0.01, warmup=1, min_runs=3, log=lambda *_: None)
    errors = [r for r in rows if "error" in r]
    assert [(r["variant"], r["error"]) for r in errors] == [("fused", "RuntimeError: no double backward here")]
    (timed,) = [r for r in rows if "error" not in r]
    assert timed["variant"] == "eager" and timed["runs"] >= 3
