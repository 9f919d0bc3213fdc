"""Parameter and FLOP table of the registered models: ``python -m effgan.models.summary``.

Prints the markdown table docs/MODELS.md carries. Models are built on the meta device (shapes
only), in their plain build, so counting a 256x256 forward costs no arithmetic; FLOPs follow
``flops.count_flops`` (2 x multiply-accumulates of conv and linear layers).
"""
from __future__ import annotations

import argparse

import torch

from .efficientnet_scaling import preset, scaling_table
from .flops import count_flops
from .registry import build, list_models

# name -> input shape of one forward (batch 1)
DEFAULT_ROWS = {
    "resnet9": (1, 3, 256, 256),
    "resnet6": (1, 3, 256, 256),
    "unet256": (1, 3, 256, 256),
    "unet128": (1, 3, 128, 128),
    **{f"effnet-resnet-b{phi}": (1, 3, 256, 256) for phi in range(4)},
    **{f"effnet-b{phi}": (1, 3, 256, 256) for phi in range(4)},
    "patchgan": (1, 3, 256, 256),
    "pixelgan": (1, 3, 256, 256),
    "stylegan-256": (1, 512),
    "dcgan-classic-g": (1, 100),
    "dcgan-classic-d": (1, 3, 64, 64),
}


def forward_input(name: str, model: torch.nn.Module) -> tuple[tuple[int, ...], dict]:
    """(input shape, forward keywords) of one forward of ``model`` built as ``name``: the docs table's
    shape for its rows, else z for a generator of latents, the image size a discriminator fixes, or a
    256x256 image; conditional models get one label, stylegan no noise."""
    from .dcgan import DCGANDiscriminator
    from .dcgan_mnist import IMAGE_SIZE as MNIST_SIZE
    from .dcgan_mnist import MnistDCGANDiscriminator
    from .stylegan import StyleGANGenerator

    if name in DEFAULT_ROWS:
        shape = DEFAULT_ROWS[name]
    elif isinstance(model, StyleGANGenerator):
        shape = (1, model.z_dim)
    elif hasattr(model, "nz"):  # the DCGAN generators
        shape = (1, model.nz)
    elif isinstance(model, MnistDCGANDiscriminator):
        shape = (1, model.in_channels, MNIST_SIZE, MNIST_SIZE)
    elif isinstance(model, DCGANDiscriminator):
        shape = (1, model.in_channels, model.image_size, model.image_size)
    else:
        shape = (1, getattr(model, "in_channels", 3), 256, 256)
    kwargs: dict = {}
    if isinstance(model, StyleGANGenerator):
        kwargs["noise_mode"] = "none"
    if getattr(model, "num_classes", None) is not None:
        kwargs["labels"] = torch.zeros(shape[0], dtype=torch.int64, device="meta")
    return shape, kwargs


def summarize(rows=DEFAULT_ROWS) -> list[tuple[str, str, int, int]]:
    """(name, input, parameters, FLOPs) per row; ``rows`` maps names to input shapes, or is a list of
    registered names whose inputs ``forward_input`` picks."""
    table = []
    for name in rows:
        with torch.device("meta"):
            model = build(name, fused=False)
        params = sum(p.numel() for p in model.parameters())
        shape, forward_kwargs = forward_input(name, model)
        if isinstance(rows, dict):
            shape = rows[name]
        flops = count_flops(model, shape, forward_kwargs=forward_kwargs)
        shown = f"z: {shape[1]}" if len(shape) == 2 else "x".join(map(str, shape[1:]))
        table.append((name, shown, params, flops))
    return table


def print_scaling_table() -> None:
    print("| phi | depth x | width x | resolution | repeats | channels (stem; stages) |")
    print("|---|---:|---:|---:|---|---|")
    for row in scaling_table():
        p = preset(row.phi)
        repeats = ",".join(str(s.repeats) for s in p.stages)
        channels = ",".join(str(s.channels) for s in p.stages)
        print(f"| {row.phi} | {row.depth_mult:.3f} | {row.width_mult:.3f} | {row.resolution} "
              f"| {repeats} | {p.stem_channels}; {channels} |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m effgan.models.summary", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="registered names (default: the docs table)")
    parser.add_argument("--scaling", action="store_true",
                        help="print the EfficientNet scaling table instead")
    args = parser.parse_args(argv)
    if args.scaling and args.names:
        parser.error("--scaling prints the scaling table only: drop the model names")
    if args.scaling:
        print_scaling_table()
        return
    unknown = [n for n in args.names if n not in list_models()]
    if unknown:
        parser.error(f"unknown model name(s) {', '.join(map(repr, unknown))}; registered: {', '.join(list_models())}")
    rows = args.names or DEFAULT_ROWS
    print("| model | input | parameters | GFLOPs |")
    print("|---|---|---:|---:|")
    for name, shape, params, flops in summarize(rows):
        print(f"| {name} | {shape} | {params:,} | {flops / 1e9:.2f} |")


if __name__ == "__main__":
    main()
