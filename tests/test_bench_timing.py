"""effgan.bench.timing: what the interleaved timer runs, in which order, and what it times."""
import time

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
