"""``python -m effgan.translate``: run a trained CycleGAN generator over images.

    python -m effgan.translate --checkpoint runs/cyclegan-20250101-120000 --input photos/ --output out/
    python -m effgan.translate --checkpoint RUN --input can.png --output out/ --direction BtoA

Each input image is converted to the training channels, resized to the training size (or kept
at its own size with --keep-size, rounded down to a side the generator accepts: a multiple of 4
for the ResNet generators), translated and written to the output folder as PNG under its own
name with .png for its extension (photo.jpg -> photo.png). Inputs whose output names would clash
(a.jpg and a.png; names compared ignoring case), an output that would replace an input and an
input that cannot be decoded are refused before anything is written.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

from effgan._paths import file_in_the_way
from effgan.data.image_io import DECODE_ERRORS, IMAGE_EXTENSIONS, decode_image, is_image_file

# Strided convs down and transposed convs up: side lengths must survive two halvings (the ResNet
# generators). Every generator's accepted sides are multiples of it, so they are searched on its grid.
SIZE_MULTIPLE = 4
# Where the search for the sides a generator accepts gives up (a U-Net 256 needs 256).
LARGEST_PROBED_SIDE = 1024


def list_inputs(path: str) -> list[Path]:
    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        # the files training reads as images (effgan.data), not hidden ones
        files = sorted(f for f in p.iterdir() if is_image_file(f) and not f.name.startswith("."))
        if not files:
            raise ValueError(f"--input folder {path!r} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        return files
    raise ValueError(f"--input {path!r} is neither an image file nor a folder")


def output_paths(inputs: list[Path], out_dir: Path) -> list[Path]:
    """<out_dir>/<stem>.png per input; a ValueError names inputs that would share an output or be replaced,
    and an out_dir that is (or lies under) a file, which the folder could not be created over."""
    blocker = file_in_the_way(out_dir)
    if blocker is not None:
        raise ValueError(f"--output {os.fspath(out_dir)!r} must be a folder, but {blocker!r} is a file")
    targets = [out_dir / (path.stem + ".png") for path in inputs]
    # casefold: on macOS and Windows a.png and A.png are one file, and one translation would be lost
    by_name: dict[str, list[Path]] = {}
    for path, target in zip(inputs, targets):
        by_name.setdefault(target.name.casefold(), []).append(path)
    clashes = [paths for paths in by_name.values() if len(paths) > 1]
    if clashes:
        listed = "; ".join(" and ".join(repr(p.name) for p in paths) for paths in clashes)
        raise ValueError(f"--input holds images that would be written to the same output file: {listed}; "
                         f"rename them or translate them into separate --output folders")
    for path, target in zip(inputs, targets):
        if target.resolve() == path.resolve():
            raise ValueError(f"--output {os.fspath(out_dir)!r} would overwrite the input {os.fspath(path)!r}; "
                             f"choose another --output folder")
    return targets


def accepted_sides(module: torch.nn.Module, channels: int, device: torch.device | str) -> tuple[int, int]:
    """(minimum, step): the generator translates sides minimum, minimum + step, ... at their own size.

    Found by running it on blank squares, since the limits come from its architecture (reflection
    padding around the ResNet bottleneck, the depth of a U-Net, EfficientNet's stride).
    """
    working = []
    with torch.no_grad():
        for side in range(SIZE_MULTIPLE, LARGEST_PROBED_SIDE + 1, SIZE_MULTIPLE):
            try:
                module(torch.zeros(1, channels, side, side, device=device))
            except (RuntimeError, ValueError):
                continue
            working.append(side)
            if len(working) == 2:
                return working[0], working[1] - working[0]
    if working:
        return working[0], working[0]
    raise ValueError(f"--keep-size: the generator translates no square image of side {SIZE_MULTIPLE} to "
                     f"{LARGEST_PROBED_SIDE}; drop --keep-size")


def image_sizes(inputs: list[Path]) -> list[tuple[int, int]]:
    """(width, height) of every input, each decoded in full; a ValueError names every input that cannot be.

    Run before anything is written, so a folder with a broken file among good ones is refused whole
    rather than translated up to that file.
    """
    from PIL import Image

    sizes, bad = [], []
    for path in inputs:
        try:
            with Image.open(path) as image:
                image.load()  # the header alone does not catch a truncated file
                sizes.append(image.size)
        except DECODE_ERRORS as error:  # what PIL raises for broken (or bomb-sized) files
            bad.append(f"{os.fspath(path)!r} ({str(error).splitlines()[0] if str(error) else type(error).__name__})")
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise ValueError(f"--input: {len(bad)} of {len(inputs)} image(s) cannot be read: {shown}; "
                         f"nothing was translated")
    return sizes


def check_keep_size(inputs: list[Path], sizes: list[tuple[int, int]], minimum: int) -> None:
    """A ValueError naming the first input smaller than the generator's minimum side."""
    for path, (w, h) in zip(inputs, sizes):
        if min(w, h) < minimum:
            raise ValueError(f"--keep-size: {os.fspath(path)!r} is {w}x{h} pixels, but this generator needs at "
                             f"least {minimum}x{minimum} at an image's own size; drop --keep-size to translate it "
                             f"at the training size")


def load_image(path: Path, channels: int, size: int | None, step: int = SIZE_MULTIPLE) -> torch.Tensor:
    """(1, C, H, W) in [-1, 1]; resized to size x size, or to a multiple of `step` when size is None.

    Decoded as training decodes its images (effgan.data.image_io.decode_image): 16-bit images
    scaled to 8 bits instead of clipped, transparency composited over white, EXIF orientation
    applied.
    """
    from PIL import Image

    array, _ = decode_image(path, channels)
    with Image.fromarray(array[..., 0] if channels == 1 else array) as image:
        if size is not None:
            image = image.resize((size, size), Image.BICUBIC)
        else:
            w, h = image.size
            w, h = max(step, w - w % step), max(step, h - h % step)
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
    parser.add_argument("--output", required=True,
                        help="Folder for the translated PNGs (created if missing), each named after its input "
                             "with .png for its extension; inputs that would share a name (a.jpg, a.png) are "
                             "refused before anything is written.")
    parser.add_argument("--direction", choices=("AtoB", "BtoA"), default="AtoB",
                        help="AtoB uses G_A, BtoA uses G_B (default: AtoB).")
    parser.add_argument("--which", choices=("latest", "best"), default="latest",
                        help="Checkpoint of the run to load (default: latest).")
    parser.add_argument("--keep-size", action="store_true",
                        help="Translate at each image's own size, rounded down to a side the generator accepts, "
                             "instead of the training size; an image smaller than the generator's minimum is "
                             "refused before anything is written.")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto).")
    return parser


def main(argv: list[str] | None = None) -> int:
    from effgan.train.inference import load_generator, pick_inference_device

    args = build_parser().parse_args(argv)
    try:
        device = pick_inference_device(args.device)
        inputs = list_inputs(args.input)
        out_dir = Path(args.output)
        targets = output_paths(inputs, out_dir)
        role = "G_A" if args.direction == "AtoB" else "G_B"
        loaded = load_generator(args.checkpoint, role, which=f"{args.which}.pt", device=device)
    except ValueError as error:
        print(f"effgan.translate: error: {error}", file=sys.stderr)
        return 2
    if loaded.config.model != "cyclegan":
        print(f"effgan.translate: error: {loaded.checkpoint} is a {loaded.config.model} run; "
              "use python -m effgan.sample for unconditional models", file=sys.stderr)
        return 2
    size = None if args.keep_size else loaded.data.image_size
    step = SIZE_MULTIPLE
    try:
        sizes = image_sizes(inputs)
        if args.keep_size:
            minimum, step = accepted_sides(loaded.module, loaded.data.channels, device)
            check_keep_size(inputs, sizes, minimum)
        out_dir.mkdir(parents=True, exist_ok=True)
        with torch.no_grad():
            for path, target in zip(inputs, targets):
                image = load_image(path, loaded.data.channels, size, step).to(device)
                save_image(loaded.module(image), target)
    except (OSError, ValueError) as error:  # an unreadable input image, an unwritable output, a bad size
        print(f"effgan.translate: error: {error}", file=sys.stderr)
        return 1
    print(f"translated {len(inputs)} image(s) {args.direction} with {loaded.checkpoint} "
          f"(step {loaded.step}) into {os.fspath(out_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
