"""The compile cases of tests/triton_compile_worker.py: stand-in tensors and, per op, the launches
its host launcher in kernels/<op>.py makes, with the same arguments and a CUDA device's launch geometry.

A case function build(K, launch) calls launch(kernel, *args, **kwargs) once per kernel launch; K gives
the kernel modules (effgan.kernels.<op>) and their helpers. The worker specialises and compiles what
was recorded, and reports kernels, flags and dtypes no case reaches.
"""
from __future__ import annotations

import torch


H100_SMS = 132  # the launch geometry depends on the SM count; this is the target machine's
SLOPE = 0.2  # leaky_relu slope passed to the launchers (only ACT == 2 keeps it)

DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16", torch.float64: "fp64",
               torch.int32: "i32", torch.int64: "i64", torch.uint8: "u8"}
FLOAT_DTYPES = {"fp32", "fp16", "bf16", "fp64"}

f32, f16, bf16, f64, i32 = torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int32
u8 = torch.uint8


# ----------------------------------------------------------------------------------------------
# Stand-ins for CUDA tensors: what the launchers and plane_split read (shape, strides, dtype, device).

class FakeDevice:
    type = "cuda"
    index = 0


class FakeTensor:
    is_cuda = True
    device = FakeDevice()

    def __init__(self, shape, dtype, strides=None):
        self.shape = tuple(shape)
        self.dtype = dtype
        if strides is None:
            strides, step = [], 1
            for size in reversed(self.shape):
                strides.insert(0, step)
                step *= max(size, 1)
        self.strides = tuple(strides)

    def stride(self, dim=None):
        return self.strides if dim is None else self.strides[dim]

    def numel(self):
        n = 1
        for s in self.shape:
            n *= s
        return n


def tensor(shape, dtype, layout="nchw"):
    """A dense tensor; layout "cl" gives a 4-D tensor channels_last strides."""
    if layout == "cl":
        N, C, H, W = shape
        return FakeTensor(shape, dtype, (H * W * C, 1, W * C, C))
    return FakeTensor(shape, dtype)


def like(t, dtype=None):
    """empty_like: same shape and strides (dense inputs keep their memory format)."""
    return FakeTensor(t.shape, dtype or t.dtype, t.strides)


def dummy(t):
    return FakeTensor((1,), t.dtype)


# ----------------------------------------------------------------------------------------------
# The cases: one function per launcher module, each a few configurations that together set every
# constexpr flag both ways, every activation code, every input dtype and both memory layouts.

def act_slope(K, act):
    return K._launch.constexpr_slope(act, SLOPE)


def plane_case(K, dt, shape, layout, act):
    """x of ``shape`` and what a per-plane op's launcher derives from it: (x, HW, split, slope, acc)."""
    x = tensor(shape, dt, layout)
    N, C, H, W = shape
    return (x, H * W, K._launch.plane_split(x, N, C, H * W), act_slope(K, act),
            K._launch.torch_acc_dtype(dt))


def instance_norm_act(K, launch):
    m = K.instance_norm_act
    configs = [
        # dtype, (N, C, H, W), layout, act, has_w, has_b, has_res
        (f32, (1, 64, 256, 256), "nchw", 0, True, True, False),
        (f16, (1, 64, 64, 64), "cl", 1, False, False, True),
        (bf16, (4, 256, 4, 4), "nchw", 2, True, False, True),
        (f64, (1, 3, 256, 256), "cl", 3, False, True, False),
        (f32, (2, 256, 4, 4), "cl", 4, True, True, True),
        (f16, (1, 3, 1, 1), "nchw", 1, True, True, False),
    ]
    for dt, shape, layout, act, has_w, has_b, has_res in configs:
        launch.label = f"{DTYPE_NAMES[dt]} {layout} {shape} act={act} W={has_w:d} B={has_b:d} R={has_res:d}"
        N, C, H, W = shape
        x, HW, split, slope, acc = plane_case(K, dt, shape, layout, act)
        ACC = K._launch.triton_acc_dtype(dt)
        y = like(x)
        psum = tensor((N * C, split.S), acc)
        psq = like(psum)
        mean = tensor((N, C), acc)
        rstd = like(mean)
        strides = (x.stride(0), x.stride(1), x.stride(3))
        weight = tensor((C,), dt) if has_w else None
        bias = tensor((C,), dt) if has_b else None
        residual = like(x) if has_res else None
        # forward()
        launch(m._partial_stats_kernel,
               x, psum, psq, C, HW, split.CHUNK, split.S, *strides,
               BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW, SAMPLE_HW=split.SAMPLE_HW, ACC=ACC,
               num_warps=split.num_warps)
        launch(m._norm_act_fwd_kernel,
               x, y,
               residual if residual is not None else dummy(x),
               weight if weight is not None else dummy(x),
               bias if bias is not None else dummy(x),
               psum, psq, mean, rstd,
               C, HW, split.CHUNK, split.S, 1e-5, *strides,
               HAS_W=weight is not None, HAS_B=bias is not None, HAS_RES=residual is not None, ACT=act,
               SLOPE=slope, BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW, SAMPLE_HW=split.SAMPLE_HW,
               BLOCK_S=split.BLOCK_S, ACC=ACC, num_warps=split.num_warps)
        # backward()
        dy = like(x)
        dx = like(x)
        pdz = tensor((N * C, split.S), acc)
        pdzx = like(pdz)
        sum_dz = tensor((N, C), acc)
        sum_dzx = like(sum_dz)
        w = weight if weight is not None else dummy(x)
        b = bias if bias is not None else dummy(x)
        flags = dict(HAS_W=weight is not None, HAS_B=bias is not None, ACT=act, SLOPE=slope)
        launch(m._partial_grad_sums_kernel,
               x, dy, w, b, mean, rstd, pdz, pdzx, C, HW, split.CHUNK, split.S, *strides, **flags,
               BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW, SAMPLE_HW=split.SAMPLE_HW, ACC=ACC,
               num_warps=split.num_warps)
        launch(m._input_grad_kernel,
               x, dy, dx, w, b, mean, rstd, pdz, pdzx, sum_dz, sum_dzx,
               C, HW, split.CHUNK, split.S, *strides, **flags,
               BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW, SAMPLE_HW=split.SAMPLE_HW, BLOCK_S=split.BLOCK_S,
               ACC=ACC, num_warps=split.num_warps)


def resident_case(K, dt, shape, layout, act):
    """As plane_case, for a configuration the launchers run on the resident path: (x, HW, geometry, slope)."""
    x = tensor(shape, dt, layout)
    N, C, H, W = shape
    geometry = K._launch.resident_geometry(x, N, C, H * W, min_programs=H100_SMS)
    assert geometry is not None, f"{shape} {layout} does not take the resident path"
    return x, H * W, geometry, act_slope(K, act)


def instance_norm_act_resident(K, launch):
    m = K.instance_norm_act
    configs = [
        # dtype, (N, C, H, W), layout, act, has_w, has_b, has_res
        (f32, (1, 256, 64, 64), "nchw", 0, True, True, False),
        (f16, (8, 128, 128, 128), "nchw", 1, False, False, True),
        (bf16, (64, 256, 8, 8), "cl", 2, True, False, True),
        (f64, (2, 256, 32, 32), "nchw", 3, False, True, False),
        (f32, (4, 64, 32, 32), "nchw", 4, True, True, True),
    ]
    for dt, shape, layout, act, has_w, has_b, has_res in configs:
        launch.label = f"resident {DTYPE_NAMES[dt]} {layout} {shape} act={act} W={has_w:d} B={has_b:d} R={has_res:d}"
        N, C, H, W = shape
        x, HW, r, slope = resident_case(K, dt, shape, layout, act)
        acc = K._launch.torch_acc_dtype(dt)
        ACC = K._launch.triton_acc_dtype(dt)
        grid_kw = dict(BLOCK_C=r.BLOCK_C, BLOCK_HW=r.BLOCK_HW, ACC=ACC, num_warps=r.num_warps)
        mean, rstd = tensor((N, C), acc), tensor((N, C), acc)
        strides = (x.stride(0), x.stride(1), x.stride(3))
        w = tensor((C,), dt) if has_w else dummy(x)
        b = tensor((C,), dt) if has_b else dummy(x)
        launch(m._resident_fwd_kernel,
               x, like(x), like(x) if has_res else dummy(x), w, b, mean, rstd, C, HW, 1e-5, *strides,
               HAS_W=has_w, HAS_B=has_b, HAS_RES=has_res, ACT=act, SLOPE=slope, **grid_kw)
        launch(m._resident_bwd_kernel,
               x, like(x), like(x), w, b, mean, rstd, like(mean), like(mean), C, HW, *strides,
               HAS_W=has_w, HAS_B=has_b, ACT=act, SLOPE=slope, **grid_kw)


def adain_resident(K, launch):
    m = K.adain
    configs = [
        # dtype, (N, C, H, W), layout, act, noise ("shared", "sample", None), has_bias
        (f32, (1, 512, 32, 32), "nchw", 0, "shared", True),
        (bf16, (32, 512, 8, 8), "cl", 1, None, False),
        (f16, (8, 256, 64, 64), "nchw", 2, "sample", False),
        (f64, (4, 64, 64, 64), "nchw", 3, None, True),
        (f32, (2, 256, 128, 128), "nchw", 4, "sample", True),
    ]
    for dt, shape, layout, act, noise_kind, has_bias in configs:
        launch.label = f"resident {DTYPE_NAMES[dt]} {layout} {shape} act={act} noise={noise_kind} bias={has_bias:d}"
        N, C, H, W = shape
        x, HW, r, slope = resident_case(K, dt, shape, layout, act)
        acc = K._launch.torch_acc_dtype(dt)
        if noise_kind is None:
            z, zstrides = dummy(x), (0, 0)
        else:
            z = FakeTensor((N, HW), dt, (0 if noise_kind == "shared" else HW, 1))
            zstrides = z.stride()
        nw = tensor((C,), dt) if noise_kind is not None else dummy(x)
        b = tensor((C,), dt) if has_bias else dummy(x)
        stats = [tensor((N, C), acc) for _ in range(3)]  # shift, mean, rstd
        flags = dict(HAS_NOISE=noise_kind is not None, HAS_BIAS=has_bias, ACT=act, SLOPE=slope,
                     BLOCK_C=r.BLOCK_C, BLOCK_HW=r.BLOCK_HW, ACC=K._launch.triton_acc_dtype(dt),
                     num_warps=r.num_warps)
        strides = (x.stride(0), x.stride(1), x.stride(3), *zstrides)
        launch(m._resident_fwd_kernel,
               x, like(x), z, nw, b, tensor((N, C), dt), tensor((N, C), dt), *stats, C, HW, 1e-8, *strides, **flags)
        launch(m._resident_bwd_kernel,
               x, like(x), like(x), z, nw, b, tensor((N, C), dt), *stats, *[tensor((N, C), acc) for _ in range(4)],
               C, HW, *strides, **flags)


def adain(K, launch):
    m = K.adain
    configs = [
        # dtype, (N, C, H, W), layout, act, noise ("shared" over the batch, "sample", None), has_bias
        (f32, (1, 64, 256, 256), "nchw", 0, "shared", True),
        (bf16, (4, 64, 64, 64), "cl", 1, None, False),
        (f16, (8, 512, 4, 4), "nchw", 2, "sample", False),
        (f64, (2, 3, 32, 32), "cl", 3, None, True),
        (f32, (4, 256, 4, 4), "cl", 4, "sample", True),
    ]
    for dt, shape, layout, act, noise_kind, has_bias in configs:
        launch.label = f"{DTYPE_NAMES[dt]} {layout} {shape} act={act} noise={noise_kind} bias={has_bias:d}"
        N, C, H, W = shape
        x, HW, split, slope, acc = plane_case(K, dt, shape, layout, act)
        style_scale = tensor((N, C), dt)
        style_bias = tensor((N, C), dt)
        y = like(x)
        psum = tensor((N * C, split.S), acc)
        psq = like(psum)
        shift = tensor((N, C), acc)
        mean = like(shift)
        rstd = like(shift)
        # _noise_2d(): the (N, H*W) view of the (N, 1, H, W) noise, batch stride 0 when expanded
        if noise_kind is None:
            z, zstrides = dummy(x), (0, 0)
        else:
            z = FakeTensor((N, HW), dt, (0 if noise_kind == "shared" else HW, 1))
            zstrides = z.stride()
        nw = tensor((C,), dt) if noise_kind is not None else dummy(x)
        b = tensor((C,), dt) if has_bias else dummy(x)
        strides = (x.stride(0), x.stride(1), x.stride(3), *zstrides)
        flags = dict(HAS_NOISE=noise_kind is not None, HAS_BIAS=has_bias, ACT=act, SLOPE=slope,
                     BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW, ACC=K._launch.triton_acc_dtype(dt),
                     num_warps=split.num_warps)
        # forward()
        launch(m._fwd_partial_stats_kernel,
               x, z, nw, b, shift, psum, psq, C, HW, split.CHUNK, split.S, *strides, SAMPLE_HW=split.SAMPLE_HW,
               **flags)
        launch(m._fwd_norm_style_kernel,
               x, y, z, nw, b, style_scale, style_bias, shift, psum, psq, mean, rstd,
               C, HW, split.CHUNK, split.S, 1e-8, *strides, BLOCK_S=split.BLOCK_S, **flags)
        # backward()
        dy = like(x)
        dx = like(x)
        pdy = tensor((N * C, split.S), acc)
        pdyh, pduz, pdu = like(pdy), like(pdy), like(pdy)
        sum_dy = tensor((N, C), acc)
        sum_dyh = like(sum_dy)
        launch(m._bwd_partial_sums_kernel,
               x, dy, z, nw, b, shift, mean, rstd, pdy, pdyh, C, HW, split.CHUNK, split.S, *strides, **flags)
        launch(m._bwd_input_grad_kernel,
               x, dy, dx, z, nw, b, style_scale, shift, mean, rstd, pdy, pdyh, sum_dy, sum_dyh, pduz, pdu,
               C, HW, split.CHUNK, split.S, *strides, BLOCK_S=split.BLOCK_S, **flags)


def dwconv_norm_act(K, launch):
    m = K.dwconv_norm_act
    configs = [
        # dtype, (N, C, H, W) of the (padded) input, layout, k, stride, pad, act, norm affine
        # (dtype or None for weight and bias), dy ("like" y, or "expanded": all strides 0)
        (f32, (1, 32, 112, 112), "nchw", 3, 1, 1, 3, (f32, f32), "like"),
        (f16, (8, 96, 56, 56), "cl", 5, 2, 2, 0, (None, None), "like"),
        (bf16, (2, 40, 30, 30), "nchw", 3, 2, 0, 1, (bf16, None), "expanded"),
        (f64, (2, 6, 12, 12), "cl", 3, 1, 0, 2, (None, f64), "like"),
        (bf16, (4, 1152, 7, 7), "cl", 3, 1, 1, 4, (f32, f32), "like"),
    ]
    for dt, shape, layout, k, stride, pad, act, (nw_dt, nb_dt), dy_kind in configs:
        launch.label = (f"{DTYPE_NAMES[dt]} {layout} {shape} k={k} stride={stride} pad={pad} act={act} "
                        f"nw={nw_dt is not None:d} nb={nb_dt is not None:d} dy={dy_kind}")
        x = tensor(shape, dt, layout)
        N, C, H, W = shape
        weight = tensor((C, 1, k, k), dt)
        Ho, Wo = m._out_size(H, k, stride, pad), m._out_size(W, k, stride, pad)
        HWo = Ho * Wo
        split = m._conv_split(K._launch.plane_split(x, N, C, HWo), layout == "cl")
        slope = act_slope(K, act)
        acc = K._launch.torch_acc_dtype(dt)
        y = tensor((N, C, Ho, Wo), dt, layout)
        psum = tensor((N * C, split.S), acc)
        psq, psqz = like(psum), like(psum)
        stats = tensor((3, N, C), acc)
        norm_weight = tensor((C,), nw_dt) if nw_dt is not None else None
        norm_bias = tensor((C,), nb_dt) if nb_dt is not None else None
        geo = dict(K=k, STRIDE=stride, PAD=pad, BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW,
                   ACC=K._launch.triton_acc_dtype(dt), num_warps=split.num_warps)
        # forward()
        launch(m._stats_kernel, x, weight, psum, psq, stats, C, H, W, Wo, HWo, split.CHUNK, split.S, N * C,
               *x.stride(), SAMPLE_HW=split.SAMPLE_HW, **geo)
        launch(m._fwd_kernel,
               x, weight,
               norm_weight if norm_weight is not None else dummy(x),
               norm_bias if norm_bias is not None else dummy(x),
               y, psum, psq, psqz, stats, C, H, W, Wo, HWo, split.CHUNK, split.S, N * C, 1e-5,
               *x.stride(), *y.stride(),
               HAS_W=norm_weight is not None, HAS_B=norm_bias is not None, ACT=act, SLOPE=slope,
               BLOCK_S=split.BLOCK_S, **geo)
        # backward()
        dy = like(y) if dy_kind == "like" else FakeTensor(y.shape, dt, (0, 0, 0, 0))
        dsqueeze = tensor((N, C), dt)
        pg = tensor((N * C, split.S), acc)
        pgz = like(pg)
        sum_g = tensor((N, C), acc)
        sum_gz = like(sum_g)
        dz = tensor((N, C, Ho, Wo), acc, layout)
        pdw = tensor((N, split.S, C, k * k), acc)
        nw = norm_weight if norm_weight is not None else dummy(x)
        nb = norm_bias if norm_bias is not None else dummy(x)
        flags = dict(K=k, STRIDE=stride, PAD=pad, HAS_W=norm_weight is not None, HAS_B=norm_bias is not None,
                     ACT=act, SLOPE=slope, BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW,
                     ACC=K._launch.triton_acc_dtype(dt), num_warps=split.num_warps)
        common = (C, H, W, Wo, HWo, split.CHUNK, split.S, N * C, *x.stride(), *dy.stride())
        launch(m._grad_sums_kernel, x, weight, nw, nb, dy, dsqueeze, stats, pg, pgz, *common, **flags)
        launch(m._pre_norm_grad_kernel,
               x, weight, nw, nb, dy, dsqueeze, stats, pg, pgz, sum_g, sum_gz, dz, pdw, *common, *dz.stride(),
               BLOCK_S=split.BLOCK_S, BLOCK_KK=next_pow2(k * k), **flags)
        dx = like(x)
        split_in = m._conv_split(K._launch.plane_split(x, N, C, H * W), layout == "cl")
        launch(m._input_grad_kernel,
               dz, weight, dx, C, H, W, Ho, Wo, H * W, split_in.CHUNK, *dz.stride(), *dx.stride(),
               K=k, STRIDE=stride, PAD=pad, BLOCK_C=split_in.BLOCK_C, BLOCK_HW=split_in.BLOCK_HW,
               ACC=K._launch.triton_acc_dtype(dt), num_warps=split_in.num_warps)


def se_scale(K, launch):
    m = K.se_scale
    configs = [
        (f32, (1, 32, 112, 112), "nchw"),
        (f16, (8, 96, 56, 56), "cl"),
        (bf16, (8, 1152, 7, 7), "cl"),
        (f64, (2, 16, 8, 8), "nchw"),
        (f32, (16, 256, 14, 14), "nchw"),  # a plane per program: the kernel finishes dgate
    ]
    for dt, shape, layout in configs:
        launch.label = f"{DTYPE_NAMES[dt]} {layout} {shape}"
        x = tensor(shape, dt, layout)
        N, C, H, W = shape
        gate = tensor((N, C), dt)
        split = K._launch.plane_split(x, N, C, H * W, programs_per_sm=1)
        strides = (x.stride(0), x.stride(1), x.stride(3))
        ACC = K._launch.triton_acc_dtype(dt)
        launch(m._se_scale_fwd_kernel, x, gate, like(x), C, H * W, split.CHUNK, *strides,
               BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW, ACC=ACC, num_warps=split.num_warps)
        finish = split.S == 1
        psum = tensor((N, C), dt) if finish else tensor((N * C, split.S), K._launch.torch_acc_dtype(dt))
        launch(m._se_scale_bwd_kernel, x, like(x), like(x), gate, psum, C, H * W, split.CHUNK, split.S, *strides,
               FINISH=finish, BLOCK_C=split.BLOCK_C, BLOCK_HW=split.BLOCK_HW, ACC=ACC, num_warps=split.num_warps)


def cyclegan_loss(K, launch):
    from effgan._signs import sign_bytes

    m = K.cyclegan_loss
    configs = [
        # gan_mode, preds (dtype, shape), L1 pairs (dtype, shape), targets, need_x, need_y
        (m.LSGAN, [(f32, (1, 1, 30, 30)), (f32, (1, 1, 30, 30))], [(f32, (1, 3, 256, 256))] * 2,
         [1.0, 0.0], [True, False], [False, True]),
        (m.VANILLA, [(f16, (4, 1, 30, 30))], [(f16, (4, 3, 128, 128))], [1.0], [True], [True]),
        (m.VANILLA, [(bf16, (1, 1, 30, 30))], [(bf16, (1, 3, 64, 64))], [0.9], [True], [False]),
        (m.LSGAN, [(f64, (1, 1, 4, 4))], [(f64, (1, 3, 8, 8))], [1.0], [False], [True]),
        # a float64 pair makes the float16 logits accumulate in float64
        (m.VANILLA, [(f16, (2, 1, 14, 14))], [(f64, (2, 3, 16, 16))], [0.0], [True], [True]),
    ]
    for gan_mode, pred_specs, pair_specs, targets, need_x, need_y in configs:
        launch.label = (f"gan_mode={gan_mode} preds={[DTYPE_NAMES[d] for d, _ in pred_specs]} "
                        f"pairs={[DTYPE_NAMES[d] for d, _ in pair_specs]}")
        preds = [tensor(s, d) for d, s in pred_specs]
        xs = [tensor(s, d) for d, s in pair_specs]
        ys = [like(x) for x in xs]
        l1_weights = [10.0] * len(xs)
        device = FakeDevice()
        acc = m._acc_dtype(preds + xs)
        ACC = K._launch.triton_acc_dtype(acc)
        P, T = len(preds), len(preds) + len(xs)
        # forward(): GAN terms, then the pairs (the first config's two pairs share y: one launch)
        groups = [[0, 1]] if len(xs) == 2 else [[0]]
        G = max(m._programs(t.numel(), device, m.BLOCK) for t in preds + xs)
        part = tensor((T, G), acc)
        out = tensor((T + 1,), acc)
        signs = [tensor((sign_bytes(x.numel()),), u8) for x in xs]
        for row, (p, target) in enumerate(zip(preds, targets)):
            launch(m._gan_fwd_kernel, p, part, p.numel(), m._chunk(p.numel(), G, m.BLOCK), row, G,
                   *m._split(target), *m._split(1.0), KIND=gan_mode, BLOCK=m.BLOCK, ACC=ACC, num_warps=4)
        for group in groups:
            i, j = group[0], group[-1]
            y = ys[i]
            for save in (True, False):
                launch(m._l1_fwd_kernel, xs[i], xs[j], y, part, signs[i] if save else y, signs[j] if save else y,
                       y.numel(), m._chunk(y.numel(), G, m.BLOCK), P + i, P + j, G, *m._split(l1_weights[i]),
                       *m._split(l1_weights[j]), TWO=len(group) == 2, SAVE_SIGNS=save, BLOCK=m.BLOCK, ACC=ACC,
                       num_warps=4)
        launch(m._finalize_kernel, part, out, T, G,
               BLOCK_T=next_pow2(T), BLOCK_G=min(next_pow2(G), 256), ACC=ACC, num_warps=4)
        # backward() with every prediction needed; programs as in the CUDA branch of backward()
        dloss = tensor((T + 1,), acc)
        for row, (p, target) in enumerate(zip(preds, targets)):
            programs = triton_cdiv(p.numel(), m.BLOCK)
            launch(m._gan_bwd_kernel, p, dloss, like(p), p.numel(), m._chunk(p.numel(), programs, m.BLOCK), row, T,
                   *m._split(target), *m._split(1.0), KIND=gan_mode, BLOCK=m.BLOCK, ACC=ACC, num_warps=4)
        for i, (x, has_dx, has_dy) in enumerate(zip(xs, need_x, need_y)):
            if not (has_dx or has_dy):
                continue
            programs = triton_cdiv(x.numel(), m.BLOCK)
            launch(m._l1_bwd_kernel, signs[i], dloss, like(x) if has_dx else x, like(x) if has_dy else x,
                   x.numel(), m._chunk(x.numel(), programs, m.BLOCK), P + i, T, *m._split(l1_weights[i]),
                   HAS_DX=has_dx, HAS_DY=has_dy, BLOCK=m.BLOCK, ACC=ACC, num_warps=4)


def diff_augment(K, launch):
    m = K.diff_augment
    configs = [
        # dtype, (N, C, H, W), layout, color, translation, cutout
        (f32, (8, 3, 32, 32), "nchw", True, True, True),
        (f16, (4, 3, 64, 64), "cl", True, False, False),
        (bf16, (16, 1, 28, 28), "nchw", True, True, False),
        (f64, (2, 3, 16, 16), "cl", True, False, True),
        (f32, (8, 3, 32, 32), "nchw", False, True, True),
        (bf16, (4, 3, 256, 256), "cl", False, True, False),
    ]
    for dt, shape, layout, color, translation, cutout in configs:
        launch.label = f"{DTYPE_NAMES[dt]} {layout} {shape} color={color:d} trans={translation:d} cut={cutout:d}"
        x = tensor(shape, dt, layout)
        N, C, H, W, HW, block_c, block_p, num_warps = m._geometry(x)
        cut_h, cut_w = (int(H * 0.5 + 0.5), int(W * 0.5 + 0.5)) if cutout else (0, 0)
        brightness, saturation, contrast = (tensor((N,), f32) for _ in range(3))
        params = dict(shift=tensor((N, 2), i32) if translation else dummy(x),
                      cut=tensor((N, 2), i32) if cutout else dummy(x))

        def sample_sums(t, keep_only):  # _sample_sums() on a CUDA device
            s = max(1, min(K._launch.MAX_SPLITS, triton_cdiv(HW, block_p), triton_cdiv(4 * H100_SMS, N)))
            chunk = triton_cdiv(triton_cdiv(HW, s), block_p) * block_p
            s = triton_cdiv(HW, chunk)
            psum = tensor((N, s), K._launch.torch_acc_dtype(t.dtype))
            launch(m._sample_partial_sum_kernel,
                   t, params["shift"], params["cut"], psum, C, H, W, chunk, s, cut_h, cut_w, *t.stride(),
                   KEEP_ONLY=keep_only, TRANS=translation, CUTOUT=cutout,
                   BLOCK_C=block_c, BLOCK_P=block_p, ACC=K._launch.triton_acc_dtype(t.dtype), num_warps=num_warps)
            return psum

        flags = dict(COLOR=color, TRANS=translation, CUTOUT=cutout, BLOCK_C=block_c, BLOCK_P=block_p,
                     ACC=K._launch.triton_acc_dtype(dt), num_warps=num_warps)
        # forward()
        psum = sample_sums(x, False) if color else dummy(x)
        S = psum.shape[1] if color else 1
        launch(m._augment_fwd_kernel,
               x, like(x),
               brightness if color else dummy(x), saturation if color else dummy(x),
               contrast if color else dummy(x),
               params["shift"], params["cut"], psum, C, H, W, S, C * HW, cut_h, cut_w, *x.stride(),
               BLOCK_S=next_pow2(S), **flags)
        # backward()
        dy = like(x)
        psum = sample_sums(dy, True) if color else dummy(dy)
        S = psum.shape[1] if color else 1
        launch(m._augment_bwd_kernel,
               dy, like(dy),
               saturation if color else dummy(dy), contrast if color else dummy(dy),
               params["shift"], params["cut"], psum, C, H, W, S, C * HW, cut_h, cut_w, *dy.stride(),
               BLOCK_S=next_pow2(S), **flags)


CASES = {
    "instance_norm_act": instance_norm_act,
    "instance_norm_act_resident": instance_norm_act_resident,
    "adain": adain,
    "adain_resident": adain_resident,
    "dwconv_norm_act": dwconv_norm_act,
    "se_scale": se_scale,
    "cyclegan_loss": cyclegan_loss,
    "diff_augment": diff_augment,
}

# Configurations also compiled for sm_80 (Ampere): per op, the label substrings to select.
SM80_SUBSET = {
    "instance_norm_act": ["bf16 "],
    "instance_norm_act_resident": ["bf16 "],
    "adain": ["bf16 "],
    "adain_resident": ["bf16 "],
    "dwconv_norm_act": ["bf16 nchw"],
    "se_scale": ["bf16 "],
    "cyclegan_loss": ["preds=['bf16']"],
    "diff_augment": ["bf16 nchw"],
}

# Kernels whose pointers are all accumulation buffers (float32 or float64 only).
ACC_ONLY_KERNELS = {"cyclegan_loss._finalize_kernel"}


def next_pow2(n):
    import triton
    return triton.next_power_of_2(n)


def triton_cdiv(a, b):
    return (a + b - 1) // b
