"""``python -m effgan.sample``: draw images from a trained dcgan, cgan or stylegan run.

    python -m effgan.sample --checkpoint runs/dcgan-20250101-120000 -n 64
    python -m effgan.sample --checkpoint runs/cgan-... -n 16 --label 3
    python -m effgan.sample --checkpoint runs/stylegan-... -n 64 --truncation 0.7

Writes one PNG grid (default: <run>/samples/sample-<step>-n<n>.png) and, with --individual DIR,
every image on its own. The same --seed gives the same images.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import torch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m effgan.sample", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="Run directory or checkpoint file.")
    parser.add_argument("-n", "--num", type=int, default=64, help="Number of images (default: 64).")
    parser.add_argument("--label", type=int, default=None,
                        help="cgan only: class of every image (default: classes in turn).")
    parser.add_argument("--truncation", type=float, default=1.0,
                        help="stylegan only: truncation psi, 1 disables (default: 1.0).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the latent draws (default: 0).")
    parser.add_argument("--output", default=None, help="Path of the PNG grid.")
    parser.add_argument("--individual", default=None, metavar="DIR", help="Also save each image into DIR.")
    parser.add_argument("--nrow", type=int, default=None, help="Images per grid row (default: about sqrt(n)).")
    parser.add_argument("--which", choices=("latest", "best"), default="latest",
                        help="Checkpoint of the run to load (default: latest).")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto).")
    return parser


def generate(loaded, n: int, *, label: int | None, truncation: float, seed: int, device) -> torch.Tensor:
    """n images in [-1, 1] from a loaded generator; latents from a seeded CPU generator."""
    config, data = loaded.config, loaded.data
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, config.latent_dim, generator=generator).to(device)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the generator's own noise inputs (stylegan) come from the global stream
        if config.model == "cgan":
            if label is None:
                labels = torch.arange(n) % data.num_classes
            else:
                labels = torch.full((n,), label)
            return loaded.module(z, labels.to(device))
        if config.model == "stylegan":
            return loaded.module(z, truncation_psi=truncation)
        return loaded.module(z)


def main(argv: list[str] | None = None) -> int:
    from effgan.train import checkpoint as ckpt
    from effgan.train.inference import load_generator, pick_inference_device
    from effgan.train.run_logger import image_grid, save_png

    args = build_parser().parse_args(argv)
    try:
        if args.num < 1:
            raise ValueError(f"-n must be >= 1, got {args.num}")
        if not 0 <= args.seed < 2**32:
            raise ValueError(f"--seed must be in [0, 2**32), got {args.seed}")
        if args.nrow is not None and args.nrow < 1:
            raise ValueError(f"--nrow must be >= 1, got {args.nrow}")
        if not math.isfinite(args.truncation):
            raise ValueError(f"--truncation must be a finite number, got {args.truncation}")
        if args.output is not None and not args.output.lower().endswith(".png"):
            # the grid is written as PNG: under another extension its viewers would misread it
            raise ValueError(f"--output must be a .png path, got {args.output!r}")
        device = pick_inference_device(args.device)
        if ckpt.read_config(args.checkpoint, f"{args.which}.pt")["model"] == "cyclegan":
            raise ValueError(f"{args.checkpoint} is a cyclegan run; use python -m effgan.translate")
        loaded = load_generator(args.checkpoint, "G", which=f"{args.which}.pt", device=device)
        model = loaded.config.model
        if args.label is not None:
            if model != "cgan":
                raise ValueError(f"--label needs a cgan run, this one is {model}")
            if not 0 <= args.label < loaded.data.num_classes:
                raise ValueError(f"--label must be in [0, {loaded.data.num_classes}), got {args.label}")
        if args.truncation != 1.0 and model != "stylegan":
            raise ValueError(f"--truncation needs a stylegan run, this one is {model}")
    except ValueError as error:
        print(f"effgan.sample: error: {error}", file=sys.stderr)
        return 2
    images = generate(loaded, args.num, label=args.label, truncation=args.truncation, seed=args.seed,
                      device=device).float().cpu()
    nrow = args.nrow or max(1, int(math.ceil(math.sqrt(args.num))))
    output = args.output or os.path.join(ckpt.run_dir_of(loaded.checkpoint), "samples",
                                         f"sample-{loaded.step}-n{args.num}.png")
    try:
        save_png(image_grid(images, nrow=nrow), output)
        if args.individual:
            os.makedirs(args.individual, exist_ok=True)
            for i, image in enumerate(images):
                save_png(image_grid(image[None], nrow=1, padding=0), os.path.join(args.individual, f"{i:05d}.png"))
    except OSError as error:  # an output path under a file, or not writable
        print(f"effgan.sample: error: {error}", file=sys.stderr)
        return 1
    print(f"{args.num} {model} samples from {loaded.checkpoint} (step {loaded.step}): {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
