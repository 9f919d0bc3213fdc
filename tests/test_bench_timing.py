"""effgan.bench.timing: what the interleaved timer runs, in which order, and what it times."""
import time

import pytest
import torch

from effgan.bench.timing import time_interleaved

CPU = torch.device("cpu")


def test_providers_take_turns_in_a_shuffled_order():
    """Run i of every provider comes before run i + 1 of any, and no provider always goes first
    (a fixed order hands whatever the previous provider leaves behind to the same provider)."""
    calls = []
    runs = {name: (lambda item, name=name: calls.append((name, item)), [0, 1, 2]) for name in "abc"}
    time_interleaved(runs, CPU, warmup=0, min_runs=30, max_runs=30, budget_s=0.0)
    assert len(calls) == 90
    rounds = [calls[i:i + 3] for i in range(0, 90, 3)]
    for i, rnd in enumerate(rounds):
        assert sorted(name for name, _ in rnd) == ["a", "b", "c"]
        assert {item for _, item in rnd} == {i % 3}
    assert {rnd[0][0] for rnd in rounds} == {"a", "b", "c"}


def test_setup_runs_before_each_call_and_is_not_timed():
    """A run given with a setup gets setup(item) as its argument; the setup's time is left out."""
    seen = []

    def setup(item):
        time.sleep(0.02)
        return ("built", item)

    timings = time_interleaved({"fn": (seen.append, [5, 6], setup), "plain": (lambda item: None, [0])}, CPU,
                               warmup=1, min_runs=6, max_runs=6, budget_s=0.0)
    assert seen == [("built", 5)] + [("built", 5 + i % 2) for i in range(6)]
    assert timings["fn"].runs == 6
    assert timings["fn"].median_s < 0.01  # the 20 ms sleeps are not in it


def test_inputs_rotate_past_the_last_level_cache_on_the_cpu_too():
    """A 4 MiB op's working set fits a 32 MiB L3: one input set would be read from cache run after
    run (eager's plain multiply then timed at 2.6x the copy bandwidth)."""
    from effgan.bench.op_cases import cases
    from effgan.bench.ops_runner import _prepare, _provider_fn
    from effgan.bench.timing import last_level_cache_bytes, rotation_copies

    assert last_level_cache_bytes(CPU) >= 2**20
    assert rotation_copies(12 * 2**20, CPU, cache_bytes=32 * 2**20) == 6
    assert rotation_copies(48 * 2**20, CPU, cache_bytes=32 * 2**20) == 2
    assert rotation_copies(1024, CPU, cache_bytes=32 * 2**20) == 16  # capped
    (case,) = cases(["se_scale"], [(1, 4, 5, 3)])
    run, items = _prepare(_provider_fn(case, "eager", CPU, None), case, CPU, torch.float32, "fwd+bwd", 3)
    assert len(items) == 3
    (inputs_a, grads_a), (inputs_b, grads_b) = items[0], items[1]
    assert inputs_a["x"].data_ptr() != inputs_b["x"].data_ptr()
    assert grads_a[0].data_ptr() != grads_b[0].data_ptr()  # the output gradients rotate with them
    run(items[2])
    assert items[2][0]["x"].grad is not None


def test_the_e2e_table_shows_the_first_steps_peak():
    """A graphed variant allocates its pools at capture: a replay's own peak is next to nothing."""
    from effgan.bench.report import format_e2e_table

    row = {"model": "m", "variant": "fused+graphs", "images_per_s": 10.0, "step_ms": 5.0, "vs_eager": 2.0,
           "peak_bytes": 3 * 2**20, "first_step_peak_bytes": 2112 * 2**20}
    assert "| 2112 |" in format_e2e_table([row])


def test_percentiles_interpolate_between_runs_symmetrically():
    """The 20th and 80th percentiles are numpy's (linear between the sorted runs): of 5 runs the
    80th is not the slowest, and of evenly spaced runs both lie as far from the median."""
    import random

    import numpy as np

    from effgan.bench.timing import _summary

    for n in (2, 5, 10, 37):
        rng = random.Random(n)
        times = [rng.uniform(1e-4, 1e-2) for _ in range(n)]
        t = _summary(times)
        p20, p50, p80 = np.percentile(times, [20, 50, 80])
        assert (t.p20_s, t.median_s, t.p80_s) == pytest.approx((p20, p50, p80), rel=1e-12)
        assert t.runs == n
    even = _summary([float(i) for i in range(1, 11)])
    assert even.median_s - even.p20_s == pytest.approx(even.p80_s - even.median_s)
    assert _summary([0.5]).p80_s == 0.5


def test_bad_run_counts_and_empty_inputs_are_named_errors():
    """No run to take a median of, or no item to call fn on, is a ValueError naming the cause."""
    from effgan.bench.timing import time_fn

    with pytest.raises(ValueError, match="max_runs"):
        time_fn(lambda _: None, [None], CPU, max_runs=0)
    with pytest.raises(ValueError, match="inputs of \\['b'\\] are empty"):
        time_interleaved({"a": (lambda _: None, [0]), "b": (lambda _: None, [])}, CPU)
