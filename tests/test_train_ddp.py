"""Data-parallel training with two CPU processes on gloo, as torchrun would start them."""
from __future__ import annotations

import os
import socket
import sys
import time

import pytest

import torch
import torch.multiprocessing as mp

from effgan.train import checkpoint as ckpt
from effgan.train.run_logger import read_jsonl

HERE = os.path.dirname(os.path.abspath(__file__))
LENGTH = {"cyclegan": 8, "dcgan": 16}
BATCH = {"cyclegan": 1, "dcgan": 4}
# the dcgan run also evaluates (tiny metric networks), which rank 0 alone does
EXTRA = {"cyclegan": {}, "dcgan": dict(eval_every=2, eval_items=4, eval_train_items=16, eval_train_steps=2,
                                      best_metric="fid")}


def _free_ports(count: int) -> tuple[int, ...]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:  # all bound at once, so the ports differ
            s.bind(("127.0.0.1", 0))
        return tuple(s.getsockname()[1] for s in sockets)
    finally:
        for s in sockets:
            s.close()


def _worker(rank: int, world_size: int, ports: tuple[int, int], out_dir: str) -> None:
    # what torchrun puts in the environment of each process
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1")
    sys.path.insert(0, HERE)
    from train_support import tiny_config

    from effgan.train import trainer

    # keep each rank's trained networks, to compare the ranks' weights afterwards
    families = []
    original_run = trainer.Trainer.run

    def run_and_keep(self):
        families.append(self.family)
        with open(os.path.join(out_dir, f"{self.config.model}-rank{rank}-evaluates"), "w") as f:
            f.write(str(self.eval_hook is not None))
        return original_run(self)

    trainer.Trainer.run = run_and_keep
    for model, port in zip(("cyclegan", "dcgan"), ports):
        # a fresh rendezvous port per run: re-creating the store on the port just released can hang
        os.environ["MASTER_PORT"] = str(port)
        trainer.train(tiny_config(model, out_dir, run_name=model, max_steps=2, train_length=LENGTH[model],
                                  **EXTRA[model]))
        weights = {name: [p.detach() for p in module.parameters()] for name, module in families[-1].modules().items()}
        torch.save(weights, os.path.join(out_dir, f"{model}-rank{rank}.pt"))


def _run_two_processes(out_dir: str, timeout_s: float = 240.0) -> None:
    """Start both ranks and wait; a hang (e.g. a collective only one rank reached) fails, never blocks CI."""
    context = mp.start_processes(_worker, args=(2, _free_ports(2), out_dir), nprocs=2, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + timeout_s
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.terminate()
            pytest.fail(f"the two training processes did not finish within {timeout_s:.0f} s")


def test_two_process_gloo_run_keeps_ranks_in_sync(tmp_path):
    _run_two_processes(str(tmp_path))
    for model in ("cyclegan", "dcgan"):
        rank0 = torch.load(tmp_path / f"{model}-rank0.pt", weights_only=True)
        rank1 = torch.load(tmp_path / f"{model}-rank1.pt", weights_only=True)
        for name in rank0:  # DDP averaged the gradients: both ranks hold the same weights
            for a, b in zip(rank0[name], rank1[name]):
                assert torch.equal(a, b), f"{model} {name} diverged between ranks"
        run = tmp_path / model
        state = ckpt.load(run / "checkpoints" / "latest.pt")
        assert state["step"] == 2
        # rank 0 alone logs: one record per step, not one per process
        steps = [r["step"] for r in read_jsonl(str(run / "metrics.jsonl")) if r["kind"] == "train"]
        assert steps == [1, 2]
        # the sharded sampler gives each rank half the data: steps per epoch halve
        per_epoch = LENGTH[model] // 2 // BATCH[model]
        assert (state["epoch"], state["batch_in_epoch"]) == divmod(2, per_epoch)
    # only rank 0 built the evaluation; its numbers are in the log and chose best.pt
    evaluates = {rank: (tmp_path / f"dcgan-rank{rank}-evaluates").read_text() for rank in (0, 1)}
    assert evaluates == {0: "True", 1: "False"}
    [record] = [r for r in read_jsonl(str(tmp_path / "dcgan" / "metrics.jsonl")) if r["kind"] == "checkpoint"]
    assert any(k.startswith("fid/") for k in record)
    assert (tmp_path / "dcgan" / "checkpoints" / "best.pt").is_file()


def _resume_worker(rank: int, world_size: int, ports: tuple[int, ...], out_dir: str) -> None:
    """Per model: 4 steps straight, and 2 steps then a resume to 4, all on two ranks."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1")
    sys.path.insert(0, HERE)
    from train_support import tiny_config

    from effgan.train import trainer

    ports = iter(ports)
    for model in ("cyclegan", "dcgan"):
        common = dict(train_length=LENGTH[model], epochs=2)
        for name, steps, resume in (("whole", 4, None), ("split", 2, None), ("split", 4, f"{model}-split")):
            os.environ["MASTER_PORT"] = str(next(ports))
            run_name = None if resume else f"{model}-{name}"
            trainer.train(tiny_config(model, out_dir, run_name=run_name, max_steps=steps, **common,
                                      resume=os.path.join(out_dir, resume) if resume else None))


def test_a_two_process_resume_takes_the_uninterrupted_runs_steps(tmp_path):
    """Every rank's random streams and image pools are in the checkpoint: rank 1's latents and pool
    draws feed the averaged gradients, so with rank 0's alone the weights part after the resume."""
    context = mp.start_processes(_resume_worker, args=(2, _free_ports(6), str(tmp_path)), nprocs=2, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + 300
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                if process.is_alive():
                    process.terminate()
            pytest.fail("the two training processes did not finish within 300 s")
    for model in ("cyclegan", "dcgan"):
        whole = ckpt.load(tmp_path / f"{model}-whole" / "checkpoints" / "latest.pt")
        split = ckpt.load(tmp_path / f"{model}-split" / "checkpoints" / "latest.pt")
        assert whole["step"] == split["step"] == 4 and len(split["rank_states"]) == 1
        for name, weights in whole["models"].items():
            for key, tensor in weights.items():
                assert torch.equal(tensor, split["models"][name][key]), f"{model} {name}.{key} differs after resume"
