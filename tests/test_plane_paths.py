"""The per-plane ops' launch paths: resident (one program per plane tile, one kernel per direction)
and split (a plane over several programs, two kernels), each against the reference.

On the CPU the launchers pick neither by default (one program per plane, two kernels); these tests
force each path in the Triton interpreter, and on CUDA check that the geometry picks the resident
path where it should and that both paths match the reference there.
"""
import pytest
import torch

from effgan.ops import adain, adain_ref, instance_norm_act, instance_norm_act_ref
from op_harness import CUDA, available_impls, force_triton_path, rand, seeded

TRITON_CPU = pytest.param("cpu", marks=[] if "triton" in available_impls("cpu", "instance_norm_act") else
                          [pytest.mark.skip(reason="triton unavailable on cpu")], id="triton-cpu")


def _in_inputs(shape, dtype, device, channels_last, gen):
    C = shape[1]
    x = rand(shape, dtype=dtype, device=device, channels_last=channels_last, scale=2.0, offset=1.5, gen=gen)
    return (x, rand((C,), dtype=dtype, device=device, gen=gen), rand((C,), dtype=dtype, device=device, gen=gen),
            rand(shape, dtype=dtype, device=device, channels_last=channels_last, gen=gen))


def _adain_inputs(shape, dtype, device, channels_last, gen):
    N, C, H, W = shape
    return (rand(shape, dtype=dtype, device=device, channels_last=channels_last, scale=2.0, offset=0.5, gen=gen),
            rand((N, C), dtype=dtype, device=device, gen=gen), rand((N, C), dtype=dtype, device=device, gen=gen),
            rand((N, 1, H, W), dtype=dtype, device=device, gen=gen), rand((C,), dtype=dtype, device=device, gen=gen),
            rand((C,), dtype=dtype, device=device, gen=gen))


def _adain_plain_inputs(shape, dtype, device, channels_last, gen):
    """AdaIN without noise and bias (the kernels' HAS_NOISE/HAS_BIAS off)."""
    return _adain_inputs(shape, dtype, device, channels_last, gen)[:3] + (None, None, None)


OPS = {
    "instance_norm_act": (instance_norm_act, instance_norm_act_ref, _in_inputs,
                          [dict(act="relu"), dict(act="leaky_relu", negative_slope=0.2), dict(act="silu")]),
    "adain": (adain, adain_ref, _adain_inputs, [dict(act="leaky_relu", negative_slope=0.2), dict(act="identity")]),
    "adain-plain": (adain, adain_ref, _adain_plain_inputs, [dict(act="relu")]),
}


def _run(fn, tensors, grad_out, **kw):
    leaves = [t.detach().clone().requires_grad_() if t is not None else None for t in tensors]
    y = fn(*leaves, **kw)
    y.backward(grad_out)
    return y.detach(), [t.grad for t in leaves if t is not None]


def _check(op, shape, dtype, device, channels_last, impl="triton"):
    fn, ref, make, kws = OPS[op]
    gen = seeded(op, shape, channels_last)
    tensors = make(shape, dtype, device, channels_last, gen)
    g = rand(shape, dtype=dtype, device=device, gen=gen)
    # The reference runs in float64 on the same values. A float32 parameter gradient (fewer than 4
    # dims) is a sum over N*H*W terms (up to 20480 here) that largely cancel: the exact sum of the
    # norm's input gradient over a plane is 0, so float32 rounding of the terms (|du| ~ 1) leaves
    # an absolute error near 1e-4 whatever the summation order (float32 eager's is of that size too).
    exact = [t.double() if t is not None else None for t in tensors]
    tol = dict(atol=1e-9, rtol=1e-7) if dtype == torch.float64 else dict(atol=1e-4, rtol=1e-4)
    sum_tol = tol if dtype == torch.float64 else dict(atol=1e-3, rtol=1e-3)
    for kw in kws:
        y, grads = _run(fn, tensors, g, impl=impl, **kw)
        y_ref, grads_ref = _run(ref, exact, g.double(), **kw)
        torch.testing.assert_close(y, y_ref.to(dtype), **tol, msg=lambda m: f"{op} {kw} y: {m}")
        for i, (a, e) in enumerate(zip(grads, grads_ref)):
            torch.testing.assert_close(a, e.to(dtype), **(tol if a.dim() == 4 else sum_tol),
                                       msg=lambda m, i=i: f"{op} {kw} grad {i}: {m}")
        assert y.stride() == tensors[0].stride()


@pytest.mark.parametrize("device", [TRITON_CPU])
@pytest.mark.parametrize("path", ["resident", "split"])
@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape,channels_last", [((2, 3, 5, 7), False), ((1, 2, 37, 37), False),
                                                 ((2, 5, 9, 6), True), ((1, 1, 1, 1), False)])
def test_forced_path_matches_reference(device, path, op, dtype, shape, channels_last, monkeypatch, poison_outputs):
    # split: three programs a plane (their partials combined under a mask: 3 of a power of two)
    # looping over 16-position tiles, the last one partial at 37x37. One tile a program took the
    # interpreter ~10x longer for no other path.
    force_triton_path(monkeypatch, op.split('-')[0], path, programs=3)
    _check(op, shape, dtype, device, channels_last)


def test_resident_geometry():
    from effgan.kernels._launch import RESIDENT_MAX_BYTES, resident_geometry

    x = torch.empty(1, 256, 64, 64)
    r = resident_geometry(x, 1, 256, 64 * 64, min_programs=132)
    assert (r.BLOCK_C, r.BLOCK_HW, r.S, r.CHUNK) == (1, 4096, 1, 4096) and r.num_warps == 8
    assert resident_geometry(x, 1, 64, 4096, min_programs=132) is None  # too few planes for the SMs
    big = RESIDENT_MAX_BYTES // 4
    assert resident_geometry(x, 8, 64, big, min_programs=132).BLOCK_HW == big
    assert resident_geometry(x, 8, 64, big + 1, min_programs=132) is None  # plane beyond registers
    assert resident_geometry(x.double(), 8, 64, big, min_programs=132) is None  # float64: half as many
    cl = torch.empty(2, 64, 16, 16).contiguous(memory_format=torch.channels_last)
    r = resident_geometry(cl, 2, 64, 256)
    assert r.BLOCK_C == 64 and r.BLOCK_HW == 256
    cl_big = torch.empty(2, 64, 64, 64).contiguous(memory_format=torch.channels_last)
    assert resident_geometry(cl_big, 2, 64, 4096) is None  # too few channels per tile to coalesce


@CUDA
@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape,channels_last,resident", [((2, 80, 20, 24), False, True), ((1, 8, 20, 24), False, False),
                                                          ((32, 320, 8, 8), True, True), ((1, 4, 128, 160), False, False)])
def test_cuda_paths_match_reference(op, dtype, shape, channels_last, resident, poison_outputs):
    from effgan.kernels._launch import resident_plane

    device = torch.device("cuda")
    x = torch.empty(shape, device=device, dtype=dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    N, C, H, W = shape
    assert (resident_plane(x, N, C, H * W) is not None) == resident
    _check(op, shape, dtype, device, channels_last)
