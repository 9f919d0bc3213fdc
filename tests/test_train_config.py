"""Config dataclasses, files, flags and their precedence."""
from __future__ import annotations

import pytest
import yaml

from effgan.train import config as cfg
from effgan.train.cli import build_parser, parse_config


def test_family_defaults_fill_only_unset_fields():
    resolved = cfg.resolve(cfg.TrainConfig())
    assert (resolved.model, resolved.dataset, resolved.image_size, resolved.batch_size) == ("cyclegan", "cans", 64, 1)
    assert (resolved.lr, resolved.beta1, resolved.beta2) == (2e-4, 0.5, 0.999)
    assert resolved.epochs_decay == resolved.epochs and resolved.ndf == resolved.ngf
    dcgan = cfg.resolve(cfg.TrainConfig(model="dcgan", batch_size=7))
    assert (dcgan.dataset, dcgan.image_size, dcgan.batch_size, dcgan.epochs_decay) == ("digits", 28, 7, 0)
    classic = cfg.resolve(cfg.from_dict({"model": "dcgan", "arch": "classic"}))
    assert classic.image_size == 32
    style = cfg.resolve(cfg.TrainConfig(model="stylegan"))
    assert (style.lr, style.beta1, style.beta2) == (2e-3, 0.0, 0.99)


@pytest.mark.parametrize("change, name", [
    (dict(model="vae"), "model"), (dict(amp="fp8"), "amp"), (dict(batch_size=0), "batch_size"),
    (dict(lr_policy="exp"), "lr_policy"), (dict(log_every=0), "log_every"), (dict(max_steps=-1), "max_steps"),
])
def test_bad_values_raise_value_error_naming_the_option(change, name):
    with pytest.raises(ValueError, match=name):
        cfg.resolve(cfg.TrainConfig(**change))


def test_bad_section_values_and_unknown_keys():
    with pytest.raises(ValueError, match="cyclegan.generator"):
        cfg.resolve(cfg.from_dict({"generator": "resnet7"}))
    with pytest.raises(ValueError, match="gan.label_smoothing"):
        cfg.resolve(cfg.from_dict({"label_smoothing": 1.5}))
    for bad in ({"lr": float("inf")}, {"lr": float("nan")}):
        with pytest.raises(ValueError, match="lr must be"):
            cfg.resolve(cfg.from_dict(bad))
    for name in ("lambda_cycle", "lambda_identity"):  # refused here, not by the loss at the first step
        for bad in (-1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match=f"cyclegan.{name} must be a finite number >= 0"):
                cfg.resolve(cfg.from_dict({name: bad}))
    for width in (-3.0, 5.0, float("nan")):  # real targets ~ U(0.9 - w, 0.9) must stay in [0, 1]
        with pytest.raises(ValueError, match="gan.noisy_labels"):
            cfg.resolve(cfg.from_dict({"noisy_labels": width}))
    for gamma in (-5.0, float("nan")):
        with pytest.raises(ValueError, match="stylegan.r1_gamma"):
            cfg.resolve(cfg.from_dict({"model": "stylegan", "r1_gamma": gamma}))
    for bad, match in [({"cyclegan": 5}, "section 'cyclegan' must be a mapping"),
                       ({"batch_size": "abc"}, "batch_size must be int"), ({"fused": "no"}, "fused must be bool"),
                       ({"max_steps": 2.5}, "max_steps must be int"), ({"lambda_cycle": "5"}, "lambda_cycle must be float")]:
        with pytest.raises(ValueError, match=match):
            cfg.from_dict(bad)
    assert cfg.from_dict({"lr": 1}).lr == 1.0 and isinstance(cfg.from_dict({"lr": 1}).lr, float)
    with pytest.raises(ValueError, match="d_layers=5 leaves no PatchGAN output at image_size 64 \\(at most 4"):
        cfg.resolve(cfg.from_dict({"model": "cyclegan", "image_size": 64, "d_layers": 5}))
    cfg.resolve(cfg.from_dict({"model": "cyclegan", "image_size": 64, "d_layers": 4}))  # 64 / 16 - 2 = 2
    with pytest.raises(ValueError, match="stylegan.truncation"):
        cfg.resolve(cfg.from_dict({"model": "stylegan", "truncation": float("nan")}))
    with pytest.raises(ValueError, match="lamda_cycle"):
        cfg.from_dict({"lamda_cycle": 3})
    with pytest.raises(ValueError, match="cyclegan.bogus"):
        cfg.from_dict({"cyclegan": {"bogus": 1}})
    with pytest.raises(TypeError, match="config"):
        cfg.resolve({"model": "dcgan"})


def test_yaml_file_then_flags_override(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"model": "cyclegan", "batch_size": 2, "lr": 1e-3,
                                    "cyclegan": {"lambda_cycle": 5.0, "pool_size": 7}, "gan-mode": "vanilla"}))
    config = parse_config(["--config", str(path), "--lr", "3e-4", "--pool-size", "9", "--no-fused"])
    assert config.batch_size == 2  # from the file
    assert config.lr == 3e-4  # flag beats file
    assert config.cyclegan.lambda_cycle == 5.0 and config.cyclegan.gan_mode == "vanilla"
    assert config.cyclegan.pool_size == 9 and config.fused is False
    # a flag the user did not type never resets a value from the file
    assert config.cyclegan.lambda_identity == cfg.CycleGANOptions().lambda_identity


def test_toml_file_and_subcommand(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('epochs = 2\n[gan]\narch = "deep"\ng_steps = 2\n')
    config = parse_config(["cgan", "--config", str(path), "--epochs", "4"])
    assert config.model == "cgan" and config.epochs == 4
    assert config.gan.arch == "deep" and config.gan.g_steps == 2


def test_saved_config_round_trips(tmp_path):
    config = cfg.resolve(parse_config(["dcgan", "--noisy-labels", "0.1", "--seed", "3"]))
    cfg.save_yaml(config, tmp_path / "config.yaml")
    again = cfg.from_dict(cfg.load_file(tmp_path / "config.yaml"))
    assert again == config


def test_config_file_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        cfg.load_file(tmp_path / "missing.yaml")
    bad = tmp_path / "run.ini"
    bad.write_text("x=1")
    with pytest.raises(ValueError, match=".yaml"):
        cfg.load_file(bad)


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    import dataclasses

    for f in dataclasses.fields(cfg.TrainConfig):
        if f.name not in cfg.SECTIONS:
            assert "--" + f.name.replace("_", "-") in text
    for section in cfg.SECTIONS.values():
        for f in dataclasses.fields(section):
            assert "--" + f.name.replace("_", "-") in text
    assert "--no-fused" in text and "torchrun" in text


def test_compile_backend_checked_when_compiling():
    with pytest.raises(ValueError, match="compile_backend 'nosuch' is not a torch.compile backend here; known: .*inductor"):
        cfg.resolve(cfg.from_dict({"compile": True, "compile_backend": "nosuch"}))
    with pytest.raises(ValueError, match="compile_backend must be a torch.compile backend name"):
        cfg.resolve(cfg.from_dict({"compile_backend": ""}))
    assert cfg.resolve(cfg.from_dict({"compile": True, "compile_backend": "eager"})).compile_backend == "eager"
    cfg.resolve(cfg.from_dict({"compile_backend": "nosuch"}))  # not compiling: the backend is never used
