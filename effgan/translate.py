"""``python -m effgan.translate``: run a trained CycleGAN generator over images.

    python -m effgan.translate --checkpoint runs/cyclegan-20250101-120000 --input photos/ --output out/
    python -m effgan.translate --checkpoint RUN --input can.png --output out/ --direction BtoA

Each input image is converted to the training channels, resized to the training size (or kept
at its own size with --keep-size, rounded down to a multiple of 4), translated and written to
the output folder as PNG under its own name.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
# Strided convs down and transposed convs up: side lengths must survive two halvings.
SIZE_MULTIPLE = 4


def list_inputs(path: str) -> list[Path]:
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"--input folder {path!r} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return files
    raise ValueError(f"--input {path!r} is neither an image file nor a folder")


def load_image(path: Path, channels: int, size: int | None) -> torch.Tensor:
    """(1, C, H, W) in [-1, 1]; resized to size x size, or to a multiple of 4 when size is None."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("L" if channels == 1 else "RGB")
        if size is not None:
            image = image.resize((size, size), Image.BICUBIC)
        else:
            w, h = image.size
            w, h = max(SIZE_MULTIPLE, w - w % SIZE_MULTIPLE), max(SIZE_MULTIPLE, h - h % SIZE_MULTIPLE)
            if (w, h) != image.size:
                image = image.resize((w, h), Image.BICUBIC)
        array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    tensor = torch.from_numpy(array)
    tensor = tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)
    return tensor[None]


def save_image(tensor: torch.Tensor, path: Path) -> None:
    from PIL import Image

    array = ((tensor.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = array[0].permute(1, 2, 0).numpy()
    Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path, format="PNG")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m effgan.translate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="CycleGAN run directory or checkpoint file.")
    parser.add_argument("--input", required=True, help="An image file or a folder of images.")
    parser.add_argument("--output", required=True, help="Folder for the translated PNGs (created if missing).")
    parser.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                        help="AtoB uses G_A, BtoA uses G_B (default: AtoB).")
    parser.add_argument("--which", choices=("latest", "best"), default="latest",
                        help="Checkpoint of the run to load (default: latest).")
    parser.add_argument("--keep-size", action="store_true",
                        help="Translate at each image's own size instead of the training size.")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto).")
    return parser


def main(argv: list[str] | None = None) -> int:
    from effgan.train.inference import load_generator, pick_inference_device

    args = build_parser().parse_args(argv)
    try:
        device = pick_inference_device(args.device)
        inputs = list_inputs(args.input)
        role = "G_A" if args.direction == "AtoB" else "G_B"
        loaded = load_generator(args.checkpoint, role, which=f"{args.which}.pt", device=device)
    except ValueError as error:
        print(f"effgan.translate: error: {error}", file=sys.stderr)
        return 2
    if loaded.config.model != "cyclegan":
        print(f"effgan.translate: error: {loaded.checkpoint} is a {loaded.config.model} run; "
              "use python -m effgan.sample for unconditional models", file=sys.stderr)
        return 2
    out_dir = Path(args.output)
    size = None if args.keep_size else loaded.data.image_size
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            for path in inputs:
                image = load_image(path, loaded.data.channels, size).to(device)
                save_image(loaded.module(image), out_dir / (path.stem + ".png"))
    except (OSError, ValueError) as error:  # an unreadable input image, an unwritable output, a bad size
        print(f"effgan.translate: error: {error}", file=sys.stderr)
        return 1
    print(f"translated {len(inputs)} image(s) {args.direction} with {loaded.checkpoint} "
          f"(step {loaded.step}) into {os.fspath(out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
