"""Bad input to effgan.translate, effgan.evaluate and the FID weights loader: a one-line error, never a traceback."""
from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch
from PIL import Image

from effgan import translate
from effgan.evaluate import EvaluationOptions
from effgan.evaluate.__main__ import main as evaluate_main
from effgan.metrics.inception import load_fid_inception
from effgan.models import registry
from effgan.train import checkpoint as ckpt
from effgan.train import config as cfg
from effgan.train import train
from effgan.train.family import DataInfo
from effgan.train.model_builders import registry_builder
from train_support import one_thread, stylegan_available, tiny_config  # noqa: F401 (fixture)

EVAL_FLAGS = ["--max-items", "8", "--feature-train-items", "16", "--feature-steps", "2", "--kid-subsets", "3"]


def _fails(capsys, status, returned, *needles):
    err = capsys.readouterr().err
    assert returned == status, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert all(needle in err for needle in needles), err


@pytest.fixture(scope="module")
def cyclegan_run(tmp_path_factory):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(tiny_config("cyclegan", tmp_path_factory.mktemp("cg"), run_name="cg", max_steps=1)).run_dir
    finally:
        torch.set_num_threads(previous)


def _write_checkpoint(run_dir, config, models, sample_models=None):
    payload = {"format": ckpt.FORMAT_VERSION, "family": config.model, "config": cfg.to_dict(config), "step": 3,
               "models": {k: m.state_dict() for k, m in models.items()},
               "sample_models": {k: m.state_dict() for k, m in (sample_models or {}).items()}}
    ckpt.save_atomic(payload, run_dir / ckpt.CHECKPOINT_DIR / ckpt.LATEST)


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    from effgan.train.model_builders import gan_model_names

    run_dir = tmp_path_factory.mktemp("dcgan_run")
    config = cfg.TrainConfig(model="dcgan", dataset="digits", image_size=28, ngf=4, latent_dim=8, seed=0)
    resolved = dataclasses.replace(cfg.resolve(config), fused=False)
    g_name, _, g_kwargs, _ = gan_model_names(resolved, DataInfo(channels=1, image_size=28), None)
    torch.manual_seed(0)
    _write_checkpoint(run_dir, config, {"G": registry_builder(g_name, **g_kwargs)})
    return run_dir


# --- translate -----------------------------------------------------------------------------------

def test_keep_size_refuses_an_image_too_small_for_the_generator_before_writing(cyclegan_run, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(inputs / "big.png")
    Image.new("RGB", (3, 3), (10, 200, 10)).save(inputs / "tiny.png")
    out = tmp_path / "out"
    argv = ["--checkpoint", cyclegan_run, "--input", str(inputs), "--output", str(out), "--keep-size",
            "--device", "cpu"]
    # a ResNet generator's reflection padding at its 4x-downsampled bottleneck needs 2 pixels there
    _fails(capsys, 1, translate.main(argv), "tiny.png", "3x3", "at least 8x8", "--keep-size")
    assert not out.exists()  # big.png was not translated either: a run does all of its images or none
    Image.new("RGB", (8, 9), (10, 200, 10)).save(inputs / "tiny.png")
    assert translate.main(argv) == 0
    with Image.open(out / "tiny.png") as image:
        assert image.size == (8, 8)
    assert translate.main(argv[:-3] + ["--device", "cpu"]) == 0  # at the training size any image will do


def test_accepted_sides_come_from_the_generator():
    def sides(name):
        module = registry.build(name, in_channels=1, out_channels=1, ngf=4, fused=False, impl="ref").eval()
        return translate.accepted_sides(module, 1, "cpu")

    assert sides("resnet6") == (8, 4)
    assert sides("unet128") == (128, 128)  # seven halvings: sides must be multiples of 128


def test_inputs_sharing_an_output_name_are_refused_before_writing(cyclegan_run, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(inputs / "a.png")
    Image.new("RGB", (16, 16), (10, 10, 200)).save(inputs / "a.jpg")
    Image.new("RGB", (16, 16), (10, 200, 10)).save(inputs / "b.png")
    out = tmp_path / "out"
    argv = ["--checkpoint", cyclegan_run, "--input", str(inputs), "--output", str(out), "--device", "cpu"]
    _fails(capsys, 2, translate.main(argv), "'a.jpg' and 'a.png'", "same output file")
    assert not out.exists()
    # on case-insensitive file systems (macOS, Windows) A.png and a.png are the same file
    (inputs / "a.png").rename(inputs / "A.png")
    _fails(capsys, 2, translate.main(argv), "'A.png' and 'a.jpg'")
    (inputs / "A.png").unlink()
    assert translate.main(argv) == 0
    assert sorted(os.listdir(out)) == ["a.png", "b.png"]


def test_output_that_would_replace_an_input_is_refused(cyclegan_run, tmp_path, capsys):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (16, 16), (200, 10, 10)).save(photo)
    before = photo.read_bytes()
    _fails(capsys, 2, translate.main(["--checkpoint", cyclegan_run, "--input", str(photo), "--output", str(tmp_path),
                                      "--device", "cpu"]), "would overwrite the input", "photo.png")
    assert photo.read_bytes() == before


def test_unreadable_inputs_are_all_named_before_anything_is_written(cyclegan_run, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(inputs / "a_good.png")
    (inputs / "b_text.png").write_text("not an image")
    Image.new("RGB", (64, 64), (10, 10, 200)).save(inputs / "c_whole.png")
    whole = (inputs / "c_whole.png").read_bytes()
    (inputs / "c_cut.png").write_bytes(whole[: len(whole) // 2])  # a valid header, truncated data
    out = tmp_path / "out"
    argv = ["--checkpoint", cyclegan_run, "--input", str(inputs), "--output", str(out), "--device", "cpu"]
    _fails(capsys, 1, translate.main(argv), "2 of 4 image(s) cannot be read", "b_text.png", "c_cut.png",
           "nothing was translated")
    assert not out.exists()  # a_good.png, sorted first, was not translated either
    (inputs / "b_text.png").unlink()
    (inputs / "c_cut.png").unlink()
    assert translate.main(argv) == 0
    assert sorted(os.listdir(out)) == ["a_good.png", "c_whole.png"]


def test_translate_help_says_how_outputs_are_named(capsys):
    with pytest.raises(SystemExit):
        translate.main(["--help"])
    assert "refused before anything is written" in " ".join(capsys.readouterr().out.split())


# --- FID weights ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["png", "empty", "text", "tensor", "shapes"])
def test_unreadable_fid_weights_raise_value_error_naming_the_file(tmp_path, kind):
    path = tmp_path / f"weights-{kind}.pt"
    if kind == "png":
        Image.new("RGB", (8, 8)).save(path, format="PNG")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("hello\n")
    elif kind == "tensor":
        torch.save(torch.zeros(3), path)
    else:
        torch.save({"fc.weight": torch.zeros(3), "fc.bias": torch.zeros(3)}, path)
    expected = {"tensor": "must hold a state_dict, got Tensor", "shapes": "size mismatch for fc.weight"}
    with pytest.raises(ValueError, match="fid weights file") as raised:
        load_fid_inception(path)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message
    assert expected.get(kind, "cannot be read as a state_dict") in message
    assert "weights_only" not in message  # torch's advice to unpickle arbitrary code is no help here


def test_evaluate_reports_unreadable_fid_weights(dcgan_run, tmp_path, capsys):
    png = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(png)
    _fails(capsys, 2, evaluate_main(["--checkpoint", str(dcgan_run), "--fid-weights", str(png), *EVAL_FLAGS]),
           "effgan.evaluate: error:", f"fid weights file '{png}' cannot be read as a state_dict")


@pytest.mark.usefixtures("one_thread")
def test_training_reports_unreadable_fid_weights(tmp_path, capsys):
    from effgan.train.__main__ import main

    png = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(png)
    argv = ["dcgan", "--out-dir", str(tmp_path / "runs"), "--max-steps", "1",
            "--train-length", "16", "--batch-size", "4", "--latent-dim", "8", "--impl", "ref", "--no-tensorboard",
            "--no-progress", "--eval-every", "1", "--eval-items", "8", "--eval-train-items", "8",
            "--fid-weights", str(png)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"fid weights file '{png}' cannot be read as a state_dict" in err, err


# --- evaluate --device ----------------------------------------------------------------------------

def test_evaluate_rejects_a_bad_device(dcgan_run, capsys, monkeypatch):
    _fails(capsys, 2, evaluate_main(["--checkpoint", str(dcgan_run), "--device", "foo"]),
           "effgan.evaluate: error:", "device='foo' is not a device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    _fails(capsys, 2, evaluate_main(["--checkpoint", str(dcgan_run), "--device", "cuda"]),
           "device='cuda' but CUDA is not available")
    with pytest.raises(ValueError, match="not a device"):
        EvaluationOptions(device="foo")


def test_evaluate_device_auto(dcgan_run, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "eval.json"
    assert evaluate_main(["--checkpoint", str(dcgan_run), "--device", "auto", *EVAL_FLAGS, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["options"]["device"] == "auto"


# --- evaluate stylegan ----------------------------------------------------------------------------

@pytest.mark.skipif(not stylegan_available(), reason="needs effgan.nn.AdaIN")
@pytest.mark.usefixtures("one_thread")
def test_evaluate_stylegan_scores_its_ema_generator(tmp_path, capsys):
    from effgan.evaluate.checkpoint_models import load_run
    from effgan.train.stylegan import build_stylegan_pair

    config = cfg.TrainConfig(model="stylegan", dataset="digits", image_size=32, ngf=4, latent_dim=8, seed=0)
    config.stylegan = dataclasses.replace(config.stylegan, mapping_layers=2)
    resolved = dataclasses.replace(cfg.resolve(config), fused=False)
    data = DataInfo(channels=1, image_size=32)
    torch.manual_seed(0)
    generator, discriminator = build_stylegan_pair(resolved, data, registry_builder)
    ema, _ = build_stylegan_pair(resolved, data, registry_builder)
    with torch.no_grad():  # a trained generator's noise inputs count; at init their weights are zero
        for name, parameter in ema.named_parameters():
            if name.endswith("noise_weight"):
                parameter.fill_(1.0)
    _write_checkpoint(tmp_path, config, {"G": generator, "D": discriminator}, {"G_ema": ema})

    run = load_run(tmp_path, data_info=data)
    assert all(torch.equal(a, b) for a, b in zip(run.generators["G"].state_dict().values(),
                                                 ema.state_dict().values()))
    out = tmp_path / "eval.json"
    assert evaluate_main(["--checkpoint", str(tmp_path), *EVAL_FLAGS, "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["model"] == "stylegan" and result["step"] == 3
    fid = f"fid/{result['extractor']}"
    assert isinstance(result["metrics"][fid], float) and fid in capsys.readouterr().out
    # its per-layer noise is seeded: the same evaluation gives the same numbers
    torch.randn(5)
    assert evaluate_main(["--checkpoint", str(tmp_path), *EVAL_FLAGS, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["metrics"] == result["metrics"]
