"""``python -m effgan.sample``: draw images from a trained dcgan, cgan or stylegan run.

    python -m effgan.sample --checkpoint runs/dcgan-20250101-120000 -n 64
    python -m effgan.sample --checkpoint runs/cgan-... -n 16 --label 3
    python -m effgan.sample --checkpoint runs/stylegan-... -n 64 --truncation 0.7

Writes one PNG grid (default: <run>/samples/sample-<step>-n<n>.png) and, with --individual DIR,
every image on its own; --no-grid with --individual writes only those (for FID sets of 50,000,
whose images need not all be held at once). Images are generated --batch-size at a time, and image
i depends only on --seed and i: not on -n or the batch size.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import torch

from effgan._paths import file_in_the_way, probe_writable


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
    parser.add_argument("--no-grid", action="store_true", help="With --individual: write no grid.")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="Images per generator call; bounds the memory it takes (default: 64).")
    parser.add_argument("--nrow", type=int, default=None, help="Images per grid row (default: about sqrt(n)).")
    parser.add_argument("--which", choices=("latest", "best"), default="latest",
                        help="Checkpoint of the run to load (default: latest).")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto).")
    return parser


def _latents(loaded, start: int, stop: int, stream: torch.Generator, device):
    """z (and stylegan's per-layer noise) for images start..stop-1, drawn image by image.

    One seeded stream, one draw per image and tensor: image i's values do not depend on how the
    images are batched. (Per-image seeds would not do: torch's CPU generator keeps 32 bits of a
    seed, so 50,000 seeds would collide with odds near 1/4.)
    """
    config, module = loaded.config, loaded.module
    zs, noises = [], []
    for _ in range(start, stop):
        zs.append(torch.randn(1, config.latent_dim, generator=stream))
        if config.model == "stylegan":
            noises.append([torch.randn(1, 1, side, side, generator=stream)
                           for side in module.sides for _ in range(2)])
    z = torch.cat(zs).to(device)
    noise = [torch.cat(layer).to(device) for layer in zip(*noises)] if noises else None
    return z, noise


def generate(loaded, n: int, *, label: int | None, truncation: float, seed: int, device,
             batch_size: int = 64):
    """Yield the n images, batch by batch, as float CPU tensors in [-1, 1]."""
    config, data = loaded.config, loaded.data
    stream = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        z, noise = _latents(loaded, start, stop, stream, device)
        with torch.no_grad():
            if config.model == "cgan":
                if label is None:
                    labels = torch.arange(start, stop) % data.num_classes
                else:
                    labels = torch.full((stop - start,), label)
                images = loaded.module(z, labels.to(device))
            elif config.model == "stylegan":
                images = loaded.module(z, truncation_psi=truncation, noise=noise)
            else:
                images = loaded.module(z)
        yield images.float().cpu()


def _out_of_memory(error: BaseException) -> bool:
    # torch's CPU allocator raises a plain RuntimeError; CUDA's is torch.OutOfMemoryError
    return isinstance(error, (MemoryError, torch.OutOfMemoryError)) or "allocate memory" in str(error)


def _check_grid_fits(n: int, image: torch.Tensor) -> None:
    """Fail before generating the rest when the grid could not fit in this machine's memory.

    The grid keeps every image as float32 and is then built as a second copy of about the same
    size: an -n far beyond memory would otherwise run for hours and then fail.
    """
    needed = 2 * n * 3 * image.shape[-2] * image.shape[-1] * 4
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX: let the allocator decide
        return
    if needed > physical:
        raise MemoryError(f"a grid of {n} images needs about {needed / 2**30:.1f} GiB, this machine has "
                          f"{physical / 2**30:.1f} GiB")


def _check_output_path(option: str, path: str | None, *, folder: bool) -> None:
    """A ValueError naming ``option`` when ``path`` cannot become the file (or folder) it names: checked
    before any image is generated, since the grid is written only after the last one."""
    if path is None:
        return
    if not folder and os.path.isdir(path):
        raise ValueError(f"{option} {path!r} is a folder; give the grid's file name")
    blocker = file_in_the_way(path if folder else os.path.dirname(os.path.abspath(path)))
    if blocker is not None:
        raise ValueError(f"{option} {path!r} cannot be written: {blocker!r} is a file")


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
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
        if args.no_grid and not args.individual:
            raise ValueError("--no-grid needs --individual DIR (otherwise nothing would be written)")
        if args.no_grid and (args.output is not None or args.nrow is not None):
            raise ValueError("--no-grid writes no grid: drop --output and --nrow")
        if args.nrow is not None and args.nrow < 1:
            raise ValueError(f"--nrow must be >= 1, got {args.nrow}")
        if not math.isfinite(args.truncation):
            raise ValueError(f"--truncation must be a finite number, got {args.truncation}")
        if args.output is not None and not args.output.lower().endswith(".png"):
            # the grid is written as PNG: under another extension its viewers would misread it
            raise ValueError(f"--output must be a .png path, got {args.output!r}")
        _check_output_path("--output", args.output, folder=False)
        _check_output_path("--individual", args.individual, folder=True)
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
    nrow = args.nrow or max(1, int(math.ceil(math.sqrt(args.num))))
    output = None if args.no_grid else args.output or os.path.join(
        ckpt.run_dir_of(loaded.checkpoint), "samples", f"sample-{loaded.step}-n{args.num}.png")
    kept = []  # the grid's images; with --no-grid each batch is written and let go
    digits = max(5, len(str(args.num - 1)))  # names that sort in image order
    try:
        if args.individual:
            os.makedirs(args.individual, exist_ok=True)
        if output is not None:
            probe_writable(output)  # the default grid path is checked only here
        index = 0
        for images in generate(loaded, args.num, label=args.label, truncation=args.truncation, seed=args.seed,
                               device=device, batch_size=args.batch_size):
            if output is not None and not kept:
                _check_grid_fits(args.num, images[0])
            if args.individual:
                for image in images:
                    save_png(image_grid(image[None], nrow=1, padding=0),
                             os.path.join(args.individual, f"{index:0{digits}d}.png"))
                    index += 1
            if output is not None:
                kept.append(images)
        if output is not None:
            save_png(image_grid(torch.cat(kept), nrow=nrow), output)
    except OSError as error:  # an output path under a file, or not writable
        print(f"effgan.sample: error: {error}", file=sys.stderr)
        return 1
    except (RuntimeError, MemoryError) as error:
        if not _out_of_memory(error):
            raise
        print(f"effgan.sample: error: out of memory with -n {args.num} --batch-size {args.batch_size}: "
              f"{str(error).splitlines()[0]}\nUse a smaller --batch-size, or --individual DIR --no-grid to "
              f"hold no image in memory", file=sys.stderr)
        return 1
    where = output if output is not None else args.individual
    print(f"{args.num} {model} samples from {loaded.checkpoint} (step {loaded.step}): {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
