"""Command line of ``python -m effgan.train``, generated from the config dataclasses.

Precedence, lowest first: dataclass defaults, the checkpoint's config when resuming, the
``--config`` file, then flags. Only flags the user actually typed override anything (argparse
runs with ``SUPPRESS`` defaults), so a flag left out never resets a value from the file.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Sequence

from effgan.train import config as cfg
from effgan.train.resume_rules import check_resume_unchanged
from effgan.train.run_folder import check_resume_out_dir

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}

_SECTION_TITLES = {
    "cyclegan": "cyclegan options",
    "gan": "dcgan / cgan options",
    "stylegan": "stylegan options",
}

_DESCRIPTION = """\
Train a GAN with effgan. With no arguments: a small CycleGAN (resnet6, ngf 16) on the embedded
'cans' set at 64x64, a few minutes on a laptop CPU. Checkpoints, sample grids (PNG), a JSONL log
and TensorBoard events go to runs/<model>-<timestamp>/ (printed at start and end).

The model family can also be given as a subcommand: `python -m effgan.train dcgan --epochs 2`.
Options come from dataclass defaults < the checkpoint's config (--resume) < --config FILE < flags.
Under `torchrun --nproc_per_node=N -m effgan.train ...` training is data-parallel (DDP).
"""


def _base_type(annotation: Any) -> type:
    text = str(annotation).replace("None", "").replace("|", " ").split()[0]
    return _TYPES[text]


def _add_field(group: argparse._ArgumentGroup, f: dataclasses.Field, default: Any) -> None:
    flags = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]
    kind = _base_type(f.type)
    help_text = f.metadata.get("help", "")
    if kind is bool:
        group.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction,
                           help=f"{help_text} (default: {default})")
        return
    choices = f.metadata.get("choices")
    metavar = "{" + ",".join(choices) + "}" if choices else f.name.upper()
    shown = "" if default is None else f" (default: {default!r})"  # None: the help names the family defaults
    group.add_argument(*flags, dest=f.name, type=kind, choices=choices, metavar=metavar, help=help_text + shown)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m effgan.train", description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=argparse.SUPPRESS)
    parser.add_argument("--config", dest="config_file", metavar="FILE",
                        help="YAML, TOML or JSON file of options (flags override it).")
    defaults = cfg.TrainConfig()
    common = parser.add_argument_group("common options")
    for f in dataclasses.fields(cfg.TrainConfig):
        if f.name in cfg.SECTIONS:
            continue
        _add_field(common, f, getattr(defaults, f.name))
    for section, cls in cfg.SECTIONS.items():
        group = parser.add_argument_group(_SECTION_TITLES[section])
        section_defaults = cls()
        for f in dataclasses.fields(cls):
            _add_field(group, f, getattr(section_defaults, f.name))
    return parser


def parse_config(argv: Sequence[str] | None = None) -> cfg.TrainConfig:
    """Turn command-line arguments into a (not yet family-resolved) TrainConfig."""
    import sys

    from effgan.train import checkpoint

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in cfg.FAMILIES:  # subcommand form
        args = ["--model", args[0]] + args[1:]
    namespace = vars(build_parser().parse_args(args))
    config_file = namespace.pop("config_file", None)
    file_data = cfg.load_file(config_file) if config_file is not None else {}

    config = cfg.TrainConfig()
    resume = namespace.get("resume", file_data.get("resume"))  # a flag or the file may name it
    saved = cfg.from_dict(checkpoint.read_config(resume)) if resume is not None else None  # one load
    if saved is not None:
        # The run continues in its own folder, wherever that is now: the name it was started with
        # is no option of this command (a renamed or copied run folder resumes).
        config = dataclasses.replace(saved, run_name=None)  # from_dict below copies it
    config = cfg.from_dict(file_data, base=config)
    config = cfg.from_dict(namespace, base=config)
    if saved is not None:
        if config.model != saved.model:  # before the checks below judge one family's values by another's
            raise ValueError(f"model {config.model!r} with --resume: the checkpoint is a {saved.model} run; "
                             f"drop --model, or start a new run without --resume")
        # also checked by the trainer (for train() callers); here before any data or model is built
        check_resume_unchanged(saved, config)
        given_out_dir = namespace.get("out_dir", file_data.get("out_dir", file_data.get("out-dir")))
        if given_out_dir is not None:
            check_resume_out_dir(given_out_dir, checkpoint.run_dir_of(checkpoint.find(resume)))
    return config


