"""DiffAugment (differentiable augmentation for data-efficient GANs) as one differentiable op.

Transforms, per sample, in this order (a policy names a subset, comma-separated):
  color:       brightness x + U(-0.5, 0.5); saturation (x - cm) * U[0, 2) + cm about the per-pixel
               channel mean cm; contrast (x - m) * U[0.5, 1.5) + m about the per-sample mean m.
  translation: integer shift by up to round(size / 8) pixels per axis, zero fill.
  cutout:      a zeroed square of half the image size (rounded) at a random position.
The random parameters come from ``sample_diff_augment_params`` (on the CPU, from the given
``torch.Generator``, then moved), which the reference and every backend share, so a seeded call
repeats exactly. Given its parameters the transform is linear in x, which is what the kernels use
(``kernels/diff_augment.py``); this file holds the parameter sampling, the reference (the classic
sequence of torch ops), the torch.library ops and the functional form; ``effgan/nn/diff_augment.py``
the module. Gradients flow to x only (the parameters are random constants).

The transforms must be listed in the order above: translation or cutout before color would change
the means color uses (zero-filled pixels would enter them), which the fused kernels do not model.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from effgan._backend import launcher_module, resolve_impl
from effgan.ops._checks import as_kernel_layout, check_tensor, dense_or_none, like_layout
from effgan.ops._double_backward import forbid_double_backward
from effgan.ops._eager import FusedOp, call_backward, save_for_backward

OP = "diff_augment"
TRANSFORMS = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


@dataclass(frozen=True)
class DiffAugmentParams:
    """Sampled parameters for N images of size H x W; tensors are None for transforms not in ``policy``.

    brightness, saturation, contrast: (N,) float32. translation: (N, 2) int32 (dh, dw); output pixel
    (h, w) reads input pixel (h + dh, w + dw). cutout_origin: (N, 2) int32 top-left corner of the
    zeroed square of size cutout_size (it may start outside the image and is clipped).
    """

    policy: tuple[str, ...]
    size: tuple[int, int, int]  # (N, H, W)
    brightness: Optional[torch.Tensor] = None
    saturation: Optional[torch.Tensor] = None
    contrast: Optional[torch.Tensor] = None
    translation: Optional[torch.Tensor] = None
    cutout_origin: Optional[torch.Tensor] = None
    cutout_size: tuple[int, int] = (0, 0)


def parse_policy(policy: object) -> tuple[str, ...]:
    """The policy's transform names, validated (known, distinct, in the order color, translation, cutout)."""
    if not isinstance(policy, str):
        raise TypeError(f"policy must be a comma-separated string, got {type(policy).__name__}")
    names = tuple(p.strip() for p in policy.split(",")) if policy.strip() else ()
    for name in names:
        if name not in TRANSFORMS:
            raise ValueError(f"policy has unknown transform {name!r}; choose from {TRANSFORMS}")
    if len(set(names)) != len(names):
        raise ValueError(f"policy names a transform twice: {policy!r}")
    if list(names) != sorted(names, key=TRANSFORMS.index):
        raise ValueError(f"policy must list its transforms in the order {', '.join(TRANSFORMS)}, got {policy!r}")
    return names


def _round_half_up(v: float) -> int:
    return int(v + 0.5)


def _check_generator(generator: object) -> Optional[torch.Generator]:
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU torch.Generator (parameters are drawn on the CPU), got {generator.device}")
    return generator


def sample_diff_augment_params(
    n: int, h: int, w: int, policy: str = "color,translation,cutout",
    generator: Optional[torch.Generator] = None, device: torch.device | str = "cpu",
) -> DiffAugmentParams:
    """Draw the per-sample parameters on the CPU (from ``generator``, else torch's default), then move them.

    Draw order: brightness, saturation, contrast, translation (h then w), cutout position (h then w).
    """
    for name, v in (("n", n), ("h", h), ("w", w)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    names = parse_policy(policy)
    generator = _check_generator(generator)
    kw = dict(generator=generator)
    out: dict = dict(policy=names, size=(n, h, w))
    if "color" in names:
        out["brightness"] = torch.rand(n, **kw) - 0.5
        out["saturation"] = torch.rand(n, **kw) * 2.0
        out["contrast"] = torch.rand(n, **kw) + 0.5
    if "translation" in names:
        sh, sw = _round_half_up(h * TRANSLATION_RATIO), _round_half_up(w * TRANSLATION_RATIO)
        th = torch.randint(-sh, sh + 1, (n,), **kw)
        tw = torch.randint(-sw, sw + 1, (n,), **kw)
        out["translation"] = torch.stack([th, tw], 1).to(torch.int32)
    if "cutout" in names:
        ch, cw = _round_half_up(h * CUTOUT_RATIO), _round_half_up(w * CUTOUT_RATIO)
        # Centre drawn in [0, size + (1 - cut % 2)), then the square spans centre - cut // 2 ...
        oh = torch.randint(0, h + (1 - ch % 2), (n,), **kw) - ch // 2
        ow = torch.randint(0, w + (1 - cw % 2), (n,), **kw) - cw // 2
        out["cutout_origin"] = torch.stack([oh, ow], 1).to(torch.int32)
        out["cutout_size"] = (ch, cw)
    for key in ("brightness", "saturation", "contrast", "translation", "cutout_origin"):
        if key in out:
            out[key] = out[key].to(device)
    return DiffAugmentParams(**out)


# ----------------------------------------------------------------------------------------------
# Reference: the classic sequence of torch ops, consuming the same parameters.


def diff_augment_ref(
    x: torch.Tensor,
    policy: str = "color,translation,cutout",
    generator: Optional[torch.Generator] = None,
    *,
    params: Optional[DiffAugmentParams] = None,
) -> torch.Tensor:
    """DiffAugment in plain torch: brightness, saturation, contrast, pad-and-gather translation, mask cutout."""
    x = check_tensor(x, "x", ndim=4)
    params = _params_for(x, policy, generator, params)
    N, _, H, W = x.shape
    names = params.policy
    if "color" in names:
        view = (N, 1, 1, 1)
        x = x + params.brightness.to(x.dtype).view(view)
        x_mean = x.mean(dim=1, keepdim=True)
        x = (x - x_mean) * params.saturation.to(x.dtype).view(view) + x_mean
        x_mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - x_mean) * params.contrast.to(x.dtype).view(view) + x_mean
    if "translation" in names:
        t = params.translation.long()
        # Index into a one-pixel zero border: sources outside the image land on it.
        rows = (torch.arange(H, device=x.device)[None, :] + t[:, :1] + 1).clamp(0, H + 1)
        cols = (torch.arange(W, device=x.device)[None, :] + t[:, 1:] + 1).clamp(0, W + 1)
        padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
        batch = torch.arange(N, device=x.device)[:, None, None]
        x = padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if "cutout" in names:
        o = params.cutout_origin.long()
        ch, cw = params.cutout_size
        hh = torch.arange(H, device=x.device)[None, :]
        ww = torch.arange(W, device=x.device)[None, :]
        in_rows = (hh >= o[:, :1]) & (hh < o[:, :1] + ch)
        in_cols = (ww >= o[:, 1:]) & (ww < o[:, 1:] + cw)
        keep = ~(in_rows[:, :, None] & in_cols[:, None, :])
        # A select, not a multiply by the 0/1 mask: the square is zeros whatever it covered (inf * 0
        # and NaN * 0 are NaN), as in the kernels, which never read the pixels there.
        x = torch.where(keep[:, None], x, torch.zeros((), dtype=x.dtype, device=x.device))
    return x


def _params_for(x, policy, generator, params) -> DiffAugmentParams:
    N, _, H, W = x.shape
    if params is None:
        return sample_diff_augment_params(N, H, W, policy, generator, x.device)
    if not isinstance(params, DiffAugmentParams):
        raise TypeError(f"params must be a DiffAugmentParams, got {type(params).__name__}")
    if params.size != (N, H, W):
        raise ValueError(f"params were sampled for (N, H, W) = {params.size}, but x has {(N, H, W)}")
    if params.policy != parse_policy(policy):
        raise ValueError(f"params were sampled for policy {','.join(params.policy)!r}, not {policy!r}")
    _check_param_fields(params, N, x.device)
    return params


# The fields each transform reads, with their shape (in units of N) and dtype. The kernels apply a
# transform exactly when its tensors are present, so presence must match the policy both ways.
_PARAM_FIELDS = {
    "color": (("brightness", (), torch.float32), ("saturation", (), torch.float32), ("contrast", (), torch.float32)),
    "translation": (("translation", (2,), torch.int32),),
    "cutout": (("cutout_origin", (2,), torch.int32),),
}


def _check_param_fields(params: DiffAugmentParams, N: int, device: torch.device) -> None:
    """Hand-built params hold what their policy needs, in the form the samplers give it."""
    for transform, fields in _PARAM_FIELDS.items():
        for field, tail, dtype in fields:
            t = getattr(params, field)
            if transform not in params.policy:
                if t is not None:
                    raise ValueError(f"params.{field} is set but the policy {','.join(params.policy)!r} has no "
                                     f"{transform!r}")
                continue
            if not isinstance(t, torch.Tensor):
                raise ValueError(f"params.{field} must be a tensor for a policy with {transform!r}, got "
                                 f"{type(t).__name__}")
            if tuple(t.shape) != (N, *tail) or t.dtype != dtype:
                raise ValueError(f"params.{field} must be a {dtype} tensor of shape {(N, *tail)}, got {t.dtype} "
                                 f"of shape {tuple(t.shape)}")
            if t.device != device:
                raise ValueError(f"params.{field} is on {t.device} but x is on {device}")
    if "cutout" in params.policy:
        size = params.cutout_size
        if not (isinstance(size, tuple) and len(size) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)):
            raise ValueError(f"params.cutout_size must be a pair of ints >= 0, got {size!r}")


# ----------------------------------------------------------------------------------------------
# torch.library ops.


def _kernels(impl: str):
    return launcher_module(impl, OP)


def _fwd_impl(
    x: torch.Tensor,
    brightness: Optional[torch.Tensor],
    saturation: Optional[torch.Tensor],
    contrast: Optional[torch.Tensor],
    translation: Optional[torch.Tensor],
    cutout_origin: Optional[torch.Tensor],
    cut_h: int,
    cut_w: int,
    impl: str,
) -> torch.Tensor:
    return _kernels(impl).forward(x, brightness, saturation, contrast, translation, cutout_origin, cut_h, cut_w,
                                  brightness is not None, translation is not None, cutout_origin is not None)


_fwd = torch.library.custom_op("effgan::diff_augment_fwd", _fwd_impl, mutates_args=())


@_fwd.register_fake
def _fwd_fake(x, brightness, saturation, contrast, translation, cutout_origin, cut_h, cut_w, impl):
    return torch.empty_like(x)


def _bwd_impl(
    dy: torch.Tensor,
    saturation: Optional[torch.Tensor],
    contrast: Optional[torch.Tensor],
    translation: Optional[torch.Tensor],
    cutout_origin: Optional[torch.Tensor],
    cut_h: int,
    cut_w: int,
    impl: str,
) -> torch.Tensor:
    return _kernels(impl).backward(dy, None, saturation, contrast, translation, cutout_origin, cut_h, cut_w,
                                   saturation is not None, translation is not None, cutout_origin is not None)


_bwd = torch.library.custom_op("effgan::diff_augment_bwd", _bwd_impl, mutates_args=())


@_bwd.register_fake
def _bwd_fake(dy, saturation, contrast, translation, cutout_origin, cut_h, cut_w, impl):
    return torch.empty_like(dy)


def _setup_context(ctx, inputs, output):
    x, brightness, saturation, contrast, translation, cutout_origin, cut_h, cut_w, impl = inputs
    save_for_backward(ctx, x, saturation, contrast, translation, cutout_origin)
    ctx.cut, ctx.impl = (cut_h, cut_w), impl


def _backward(ctx, dy):
    x, saturation, contrast, translation, cutout_origin = ctx.saved_tensors
    dx = call_backward(_bwd, _bwd_impl, like_layout(dy, x), saturation, contrast, translation, cutout_origin,
                       *ctx.cut, ctx.impl)
    return dx, None, None, None, None, None, None, None, None


torch.library.register_autograd("effgan::diff_augment_fwd", _backward, setup_context=_setup_context)
_diff_augment = FusedOp(OP, _fwd, _fwd_impl, _setup_context, _backward)
forbid_double_backward(_bwd, OP)


def diff_augment(
    x: torch.Tensor,
    policy: str = "color,translation,cutout",
    generator: Optional[torch.Generator] = None,
    *,
    params: Optional[DiffAugmentParams] = None,
    impl: str = "auto",
) -> torch.Tensor:
    """DiffAugment of a 4-D image batch (NCHW or channels_last; the output keeps the layout).

    The parameters are drawn by ``sample_diff_augment_params`` from ``generator`` (a CPU generator;
    None uses torch's default), or passed in as ``params``. An empty policy returns x unchanged.
    Inside ``torch.compile(fullgraph=True)`` use ``generator=None`` or pass ``params`` sampled
    outside: torch.compile does not trace random draws from an explicit generator.
    """
    x = check_tensor(x, "x", ndim=4)
    if x.shape[2] * x.shape[3] >= 2**31:
        raise ValueError(f"x has {x.shape[2] * x.shape[3]} pixels per image; at most 2**31 - 1 are supported")
    params = _params_for(x, policy, generator, params)
    backend = resolve_impl(impl, x.device, OP)
    if not params.policy:
        return x
    if backend == "ref":
        return diff_augment_ref(x, policy, params=params)
    x = as_kernel_layout(x)
    # hand-built parameters may be strided views
    return _diff_augment(x, dense_or_none(params.brightness), dense_or_none(params.saturation),
                         dense_or_none(params.contrast), dense_or_none(params.translation),
                         dense_or_none(params.cutout_origin), params.cutout_size[0], params.cutout_size[1], backend)
