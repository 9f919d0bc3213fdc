"""Write preview grids of the generated datasets, to eyeball what they look like.

    python -m effgan.data.preview --out /tmp --size 128 --seed 0

writes ``cans_preview.png`` (top row: domain A scenes; bottom row: the same scenes
with the domain B can, i.e. their ground-truth translations) and
``digits_preview.png`` (ten rows of digits, one column per class).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from effgan._paths import file_in_the_way

from .cans_pairs import CansPairs
from .digits import Digits
from .grid import save_image_grid


def write_previews(out_dir: str | Path, *, size: int = 128, seed: int = 0, count: int = 8) -> tuple[Path, Path]:
    """Write the cans and digits preview grids into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    pairs = CansPairs(size=size, length=count, seed=seed)
    items = [pairs[i] for i in range(count)]
    cans = save_image_grid([torch.stack([it["A"] for it in items]), torch.stack([it["A_true_B"] for it in items])],
                           out_dir / "cans_preview.png", nrow=count)
    digits = Digits(split="test", length=100, seed=seed)
    digit_images = torch.stack([digits.image(i) for i in range(100)])
    grid = save_image_grid(digit_images, out_dir / "digits_preview.png", nrow=10, pad_value=-1.0)
    return cans, grid


def main(argv: list[str] | None = None) -> None:
    from .seeding import check_seed

    parser = argparse.ArgumentParser(prog="python -m effgan.data.preview", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."), help="folder for the PNG files (created if missing)")
    parser.add_argument("--size", type=int, default=128, choices=(64, 128, 256), help="cans image size")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated images (default: 0)")
    args = parser.parse_args(argv)
    try:
        check_seed(args.seed, "--seed")
    except ValueError as error:
        parser.error(str(error))
    blocker = file_in_the_way(args.out)
    if blocker is not None:  # the folder could not be created over (or under) a file
        parser.error(f"--out {str(args.out)!r} must be a folder, but {blocker!r} is a file")
    for path in write_previews(args.out, size=args.size, seed=args.seed):
        print(path)


if __name__ == "__main__":
    main()
