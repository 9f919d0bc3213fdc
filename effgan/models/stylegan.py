"""A StyleGAN-style generator on effgan's fused AdaIN.

mapping: z -> w (``MappingNetwork``: pixel norm, 8 equalized-lr layers, lr multiplier 0.01).
synthesis: a learned constant 4x4 input; at each resolution up to ``resolution`` two 3x3
equalized-lr convs (the first after a nearest-neighbour 2x upsampling, except at 4x4, where the
first layer styles the constant itself), each followed by ``effgan.nn.AdaIN``: per-pixel noise
with a learned per-channel weight, a bias, LeakyReLU 0.2, instance norm and a per-layer style
(scale, bias) computed from w by an equalized-lr affine. A 1x1 conv makes the image. Channels per resolution are
``min(channel_base // res, channel_max)`` (512 up to 32x32, then halving, as in StyleGAN).

Training regularisation and sampling tricks live in ``forward``: style mixing (a second latent
takes over from a random crossover layer with probability ``mixing_prob``; all randomness from
the ``generator`` passed in), an exponential moving average ``w_avg`` of mapped w (updated in
training mode), and truncation ``w_avg + psi * (w - w_avg)`` on the first ``truncation_cutoff``
layers.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .norm_act import check_impl, check_positive_int, check_probability
from .stylegan_layers import RELU_GAIN, EqualConv2d, MappingNetwork

RESOLUTIONS = (32, 64, 128, 256)
NOISE_MODES = ("random", "none")


def stylegan_channels(res: int, channel_base: int = 16384, channel_max: int = 512) -> int:
    return max(1, min(channel_base // res, channel_max))


def _adain(channels: int, w_dim: int, fused: bool, impl: str) -> nn.Module:
    # Imported here so that importing effgan.models never depends on the nn backends.
    from effgan.nn import AdaIN

    # equalized_lr: StyleGAN's style affine A is an equalized-learning-rate layer like every other
    return AdaIN(channels, w_dim, noise=True, act="leaky_relu", negative_slope=0.2,
                 impl=impl if fused else "ref", equalized_lr=True)


class SynthesisBlock(nn.Module):
    """One resolution: [upsample, conv] or the constant, AdaIN, conv, AdaIN (two w's, two noises)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, first: bool,
                 fused: bool, impl: str):
        super().__init__()
        self.first = first
        if first:
            # Random, not constant, so each channel has spatial variance from the start: the
            # instance norm right after it would otherwise normalise a flat map (var = 0).
            self.const = nn.Parameter(torch.randn(1, out_channels, 4, 4))
        else:
            self.conv0 = EqualConv2d(in_channels, out_channels, 3, bias=False, gain=RELU_GAIN)
        self.adain0 = _adain(out_channels, w_dim, fused, impl)
        self.conv1 = EqualConv2d(out_channels, out_channels, 3, bias=False, gain=RELU_GAIN)
        self.adain1 = _adain(out_channels, w_dim, fused, impl)

    def forward(self, x: torch.Tensor | None, w0: torch.Tensor, w1: torch.Tensor,
                noise0: torch.Tensor, noise1: torch.Tensor) -> torch.Tensor:
        if self.first:
            x = self.const.expand(w0.shape[0], -1, -1, -1)
        else:
            x = self.conv0(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        # adain wants the noise in x's dtype; under autocast they can differ (the constant stays
        # fp32 while the noise is drawn like the fp16/bf16 ws), so match it here
        x = self.adain0(x, w0, noise0.to(x.dtype))
        x = self.conv1(x)
        return self.adain1(x, w1, noise1.to(x.dtype))


class StyleGANGenerator(nn.Module):
    """z (N, z_dim) -> image (N, out_channels, resolution, resolution).

    Args:
        resolution: output side, 32, 64, 128 or 256 ("stylegan-32" ... "stylegan-256").
        z_dim: latent size; ``w_dim`` defaults to it.
        out_channels: image channels.
        mapping_layers, mapping_lr_mul: depth and learning-rate multiplier of the mapping MLP.
        channel_base, channel_max: channels per resolution, min(channel_base // res, channel_max).
        w_avg_beta: decay of the moving average of w used by truncation.
        fused, impl: AdaIN with ``impl`` (True) or AdaIN(impl="ref") (False).
    """

    def __init__(self, resolution: int = 256, z_dim: int = 512, w_dim: int | None = None,
                 out_channels: int = 3, *, mapping_layers: int = 8, mapping_lr_mul: float = 0.01,
                 channel_base: int = 16384, channel_max: int = 512, w_avg_beta: float = 0.995,
                 fused: bool = True, impl: str = "auto"):
        super().__init__()
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution!r}")
        w_dim = z_dim if w_dim is None else w_dim
        check_positive_int(out_channels, "out_channels")
        check_positive_int(channel_base, "channel_base")
        check_positive_int(channel_max, "channel_max")
        check_probability(w_avg_beta, "w_avg_beta")
        check_impl(impl)
        if not isinstance(fused, bool):
            raise TypeError(f"fused must be a bool, got {type(fused).__name__}")
        self.resolution, self.z_dim, self.w_dim = resolution, z_dim, w_dim
        self.w_avg_beta = float(w_avg_beta)
        if isinstance(mapping_lr_mul, bool) or not isinstance(mapping_lr_mul, (int, float)) \
                or not math.isfinite(mapping_lr_mul) or mapping_lr_mul <= 0:
            raise ValueError(f"mapping_lr_mul must be a finite number > 0, got {mapping_lr_mul!r}")
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, lr_mul=mapping_lr_mul)
        sides = [2 ** k for k in range(2, int(math.log2(resolution)) + 1)]
        self.sides = sides
        blocks, in_ch = [], 0
        for i, side in enumerate(sides):
            out_ch = stylegan_channels(side, channel_base, channel_max)
            blocks.append(SynthesisBlock(in_ch, out_ch, w_dim, first=i == 0, fused=fused,
                                         impl=impl))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = EqualConv2d(in_ch, out_channels, 1)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    @property
    def num_ws(self) -> int:
        """How many per-layer styles the synthesis network reads (two per resolution)."""
        return 2 * len(self.blocks)

    def synthesis(self, ws: torch.Tensor, *, noise: list[torch.Tensor] | None = None,
                  noise_mode: str = "random", generator: torch.Generator | None = None):
        """ws (N, num_ws, w_dim) -> image. ``noise``: one (N, 1, side, side) tensor per layer."""
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must be (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        noise = self._layer_noise(ws, noise, noise_mode, generator)
        x = None
        for i, block in enumerate(self.blocks):
            x = block(x, ws[:, 2 * i], ws[:, 2 * i + 1], noise[2 * i], noise[2 * i + 1])
        return self.to_rgb(x)

    def forward(self, z: torch.Tensor, *, z2: torch.Tensor | None = None,
                mixing_prob: float = 0.0, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, generator: torch.Generator | None = None,
                noise: list[torch.Tensor] | None = None, noise_mode: str = "random",
                update_w_avg: bool | None = None) -> torch.Tensor:
        """Map z, optionally mix styles with a second latent and truncate, then synthesise.

        Args:
            z2: the second latent for style mixing; drawn from ``generator`` when needed.
            mixing_prob: probability (per batch) of mixing; StyleGAN trains with 0.9.
            truncation_psi, truncation_cutoff: w_avg + psi * (w - w_avg) on the first
                ``truncation_cutoff`` layers (all when None); psi 1 disables it.
            generator: the source of the mixing draws, z2 and random noise (repeatability).
            noise, noise_mode: explicit per-layer noise, or "random" / "none" (zeros).
            update_w_avg: update the w moving average; defaults to ``self.training``.
        """
        mixing_prob = check_probability(mixing_prob, "mixing_prob", allow_one=True)
        if z2 is not None and (not isinstance(z2, torch.Tensor) or not isinstance(z, torch.Tensor)
                               or z2.shape != z.shape):
            raise ValueError(f"z2 must have z's shape {tuple(getattr(z, 'shape', ()))}, "
                             f"got {tuple(getattr(z2, 'shape', ())) if isinstance(z2, torch.Tensor) else type(z2).__name__}")
        ws = self._broadcast(self.mapping(z))
        if update_w_avg if update_w_avg is not None else self.training:
            with torch.no_grad():
                batch_mean = ws[:, 0].detach().mean(0).to(self.w_avg.dtype)
                self.w_avg.copy_(batch_mean.lerp(self.w_avg, self.w_avg_beta))
        if mixing_prob > 0 and self._uniform(generator) < mixing_prob:
            if z2 is None:
                z2 = self._randn(z.shape, generator, z)
            crossover = 1 + int(self._uniform(generator) * (self.num_ws - 1))
            ws = torch.cat([ws[:, :crossover], self._broadcast(self.mapping(z2))[:, crossover:]],
                           dim=1)
        ws = self.truncate(ws, truncation_psi, truncation_cutoff)
        return self.synthesis(ws, noise=noise, noise_mode=noise_mode, generator=generator)

    @torch.no_grad()
    def sample(self, num: int, *, truncation_psi: float = 0.7, truncation_cutoff: int | None = 8,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``num`` images with the truncation trick (StyleGAN's psi 0.7 on the first 8 layers)."""
        check_positive_int(num, "num")
        z = self._randn((num, self.z_dim), generator, self.w_avg)
        return self(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                    generator=generator, update_w_avg=False)

    def truncate(self, ws: torch.Tensor, psi: float, cutoff: int | None) -> torch.Tensor:
        # checked first: a NaN or infinite psi would silently make every image NaN
        if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not math.isfinite(psi):
            raise ValueError(f"truncation_psi must be a finite number (1 disables truncation), got {psi!r}")
        if psi == 1.0:
            return ws
        cutoff = self.num_ws if cutoff is None else check_positive_int(cutoff, "truncation_cutoff")
        if cutoff > self.num_ws:
            raise ValueError(f"truncation_cutoff must be at most the generator's {self.num_ws} style layers "
                             f"(None: all of them), got {cutoff}")
        w_avg = self.w_avg.to(ws.dtype)
        truncated = w_avg.lerp(ws[:, :cutoff], psi)
        return torch.cat([truncated, ws[:, cutoff:]], dim=1)

    def _broadcast(self, w: torch.Tensor) -> torch.Tensor:
        return w.unsqueeze(1).expand(-1, self.num_ws, -1)

    def _layer_noise(self, ws, noise, noise_mode, generator) -> list[torch.Tensor]:
        shapes = [(ws.shape[0], 1, side, side) for side in self.sides for _ in range(2)]
        if noise is not None:
            if len(noise) != len(shapes) or any(tuple(n.shape) != s for n, s in zip(noise, shapes)):
                raise ValueError(f"noise must be {len(shapes)} tensors of shapes {shapes}")
            return list(noise)
        if noise_mode == "none":
            return [ws.new_zeros(s) for s in shapes]
        if noise_mode != "random":
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        return [self._randn(s, generator, ws) for s in shapes]

    @staticmethod
    def _randn(shape, generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
        # Draw on the generator's device (torch requires it), then move next to ``like``.
        device = generator.device if generator is not None else like.device
        return torch.randn(shape, generator=generator, device=device).to(like.device, like.dtype)

    @staticmethod
    def _uniform(generator: torch.Generator | None) -> float:
        device = generator.device if generator is not None else "cpu"
        return float(torch.rand((), generator=generator, device=device))
