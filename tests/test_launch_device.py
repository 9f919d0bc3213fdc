"""The Triton launchers run their kernels on the device of their tensors, whichever CUDA device is current.

Triton launches on the current device (and its current stream), so a launcher handed cuda:1 tensors
while cuda:0 is current must make cuda:1 current first. Without two GPUs the check stands in a CPU
tensor that reports itself on cuda:1 and records which device the launcher switches to; the real
kernels on a second GPU are checked where there is one.
"""
import contextlib
import importlib

import pytest
import torch

pytest.importorskip("triton")

LAUNCHER_MODULES = ("adain", "cyclegan_loss", "diff_augment", "dwconv_norm_act", "instance_norm_act", "se_scale")


class _ReportsCuda1(torch.Tensor):
    """A CPU tensor whose device reads cuda:1: all the launchers' device guard looks at."""

    @property
    def is_cuda(self):
        return True

    @property
    def device(self):
        return torch.device("cuda", 1)


@pytest.fixture
def switches(monkeypatch):
    """cuda:0 is current; records every device torch.cuda.device() is asked to make current."""
    seen = []

    @contextlib.contextmanager
    def device(d):
        seen.append(torch.device(d))
        yield

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "device", device)
    return seen


def _launchers():
    for name in LAUNCHER_MODULES:
        module = importlib.import_module(f"effgan.kernels.{name}")
        for fn in ("forward", "backward"):
            yield pytest.param(getattr(module, fn), id=f"{name}.{fn}")


@pytest.mark.parametrize("launcher", _launchers())
def test_launcher_makes_the_tensors_device_current(launcher, switches):
    t = torch.Tensor._make_subclass(_ReportsCuda1, torch.zeros(1))
    # Only the first argument is given: the launcher body fails at once, inside the device switch.
    first = [t] if launcher.__module__.endswith("cyclegan_loss") and launcher.__name__ == "forward" else t
    with pytest.raises(TypeError):
        launcher(first)
    assert switches == [torch.device("cuda", 1)]


def test_launcher_on_the_current_device_does_not_switch(switches, monkeypatch):
    from effgan.kernels import se_scale

    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    t = torch.Tensor._make_subclass(_ReportsCuda1, torch.zeros(1))
    with pytest.raises(TypeError):
        se_scale.forward(t)
    assert switches == []


def test_cpu_launch_needs_no_cuda(monkeypatch):
    """The interpreter's CPU tensors never query CUDA (a CPU-only torch has no devices to ask)."""
    from effgan._backend import available_impls
    from effgan.kernels import se_scale

    if "triton" not in available_impls("cpu", "se_scale"):
        pytest.skip("triton unavailable on cpu")

    def no_cuda(*_args):
        raise AssertionError("CUDA queried for a CPU launch")

    monkeypatch.setattr(torch.cuda, "current_device", no_cuda)
    x, gate = torch.randn(2, 3, 4, 4), torch.randn(2, 3)
    torch.testing.assert_close(se_scale.forward(x, gate), x * torch.sigmoid(gate)[:, :, None, None])


@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_ops_on_a_second_gpu_while_the_first_is_current():
    from effgan.functional import instance_norm_act, se_scale

    with torch.cuda.device(0):
        x = torch.randn(2, 8, 16, 16, device="cuda:1", requires_grad=True)
        gate = torch.randn(2, 8, device="cuda:1")
        y = se_scale(instance_norm_act(x, act="relu", impl="triton"), gate, impl="triton")
        y.sum().backward()
        x_ref = x.detach().clone().requires_grad_(True)
        y_ref = torch.relu(torch.nn.functional.instance_norm(x_ref)) * torch.sigmoid(gate)[:, :, None, None]
        y_ref.sum().backward()
        torch.cuda.synchronize(1)
    torch.testing.assert_close(y, y_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(x.grad, x_ref.grad, atol=1e-4, rtol=1e-4)
