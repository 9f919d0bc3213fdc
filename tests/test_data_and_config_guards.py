"""Data and config inputs that used to go wrong quietly: 16-bit images, a folder that shadows an
embedded dataset's name, options that mean no training at all, seeds too large for the derived
streams, and a resumed run's config.yaml."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import yaml
from PIL import Image

from effgan.data import ImageFiles, build_dataset, is_embedded
from effgan.train import train
from effgan.train.config import TrainConfig, resolve
from train_support import one_thread, tiny_config  # noqa: F401 (fixture)


@pytest.mark.parametrize("value", [0, 300, 30000, 65535])
@pytest.mark.parametrize("channels", [1, 3])
def test_sixteen_bit_images_are_scaled_not_clipped(tmp_path, value, channels):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((6, 5), value, np.uint16)).save(path)
    assert Image.open(path).mode.startswith("I;16")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = ImageFiles([path], channels=channels).image(0)
    assert image.shape == (channels, 6, 5)
    expected = round(value / 257) / 127.5 - 1
    assert abs(float(image.mean()) - expected) < 1e-6


def test_a_folder_named_like_an_embedded_dataset_does_not_shadow_it(tmp_path, monkeypatch):
    (tmp_path / "cans").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cans" / "x.png")
    monkeypatch.chdir(tmp_path)
    assert is_embedded("cans") and not is_embedded("./cans")
    generated = build_dataset("cans", "train", kind="unpaired", length=4, image_size=64, augment=False)
    assert len(generated) == 4
    folder = build_dataset("./cans", "train", kind="labelled", image_size=8, augment=False)
    assert len(folder) == 1


@pytest.mark.parametrize("overrides, message", [
    (dict(model="dcgan", epochs=0), r"epochs \+ epochs_decay must be >= 1"),
    (dict(max_steps=0), "max_steps must be >= 1, got 0"),
    (dict(model="dcgan", latent_dim=0), "latent_dim must be >= 1 for dcgan, got 0"),
    (dict(train_length=0), "train_length must be >= 1, got 0"),
    (dict(seed=2 ** 40), r"seed must be an int in \[0, 2\*\*32\)"),
    (dict(seed=-1), r"seed must be an int in \[0, 2\*\*32\)"),
    (dict(beta1=1.5), r"beta1 must be in \[0, 1\), got 1.5"),
    (dict(beta2=-0.1), r"beta2 must be in \[0, 1\), got -0.1"),
])
def test_options_that_cannot_train_are_refused_by_name(overrides, message):
    with pytest.raises(ValueError, match=message):
        resolve(TrainConfig(**overrides))


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("value", [200, 60000])
def test_sixteen_bit_pgm_is_scaled_by_its_range_not_its_content(tmp_path, value):
    """PIL opens a 16-bit PGM as mode "I": a dark one (every value <= 255) is still 16-bit data."""
    path = tmp_path / "deep.pgm"
    path.write_bytes(b"P5\n4 3\n65535\n" + np.full((3, 4), value, ">u2").tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image = ImageFiles([path], channels=1).image(0)
    assert abs(float(image.mean()) - (round(value / 257) / 127.5 - 1)) < 1e-6


@pytest.mark.parametrize("mode, transparent, kept", [("L", 0, 90), ("RGB", (0, 0, 0), (90, 30, 200))])
def test_a_single_transparent_colour_is_composited_over_white(tmp_path, mode, transparent, kept):
    """PNG's tRNS on a grayscale or RGB image, as a palette image's transparency is."""
    from effgan.data.image_io import decode_image

    image = Image.new(mode, (4, 2), transparent)
    image.putpixel((3, 1), kept)
    image.save(tmp_path / "cut.png", transparency=transparent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        array, note = decode_image(tmp_path / "cut.png", 3)
    assert array[0, 0].tolist() == [255, 255, 255] and "composited over white" in note
    assert array[1, 3].tolist() == ([kept] * 3 if mode == "L" else list(kept))


def test_a_resumed_runs_config_yaml_replays_instead_of_resuming(tmp_path):
    first = train(tiny_config("dcgan", tmp_path, run_name="r", max_steps=1, epochs=2))
    train(tiny_config("dcgan", tmp_path, max_steps=2, epochs=2, resume=first.run_dir))
    with open(tmp_path / "r" / "config.yaml", encoding="utf-8") as f:
        saved = yaml.safe_load(f)
    assert saved["resume"] is None and saved["max_steps"] == 2


def test_an_image_size_the_generated_set_lacks_names_the_option(tmp_path):
    with pytest.raises(ValueError, match=r"image_size must be one of \(64, 128, 256\) for 'cans', got 32"):
        train(tiny_config("cyclegan", tmp_path, run_name="s", image_size=32))
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").rglob("*.pt"))


def test_hidden_files_and_folders_are_not_data_and_loose_images_are_reported(tmp_path):
    from effgan.data import DataWarning, image_folder, list_image_files

    for folder in ("cats", "dogs", ".ipynb_checkpoints"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / folder / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "cats" / ".hidden.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "loose.png")
    assert [p.relative_to(tmp_path).as_posix() for p in list_image_files(tmp_path / "cats")] == ["cats/a.png"]
    with pytest.warns(DataWarning, match="1 image.*beside the class folders.*'loose.png'"):
        source = image_folder(tmp_path)
    assert tuple(source.classes) == ("cats", "dogs") and len(source) == 2


def test_exif_orientation_is_applied(tmp_path):
    from effgan.data import ImageFiles

    array = np.zeros((4, 8, 3), np.uint8)  # 4 rows, 8 columns: stored landscape
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    image.save(tmp_path / "sideways.jpg", exif=exif)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = ImageFiles([tmp_path / "sideways.jpg"], channels=3).image(0)
    assert loaded.shape == (3, 8, 4)  # shown portrait, as a viewer shows it


def test_yaml_scientific_floats_read_as_numbers(tmp_path):
    from effgan.train.config import from_dict, load_file

    path = tmp_path / "c.yaml"
    path.write_text('lr: 1e-3\nrun_name: "1e-3"\n')
    data = load_file(path)
    assert data == {"lr": 0.001, "run_name": "1e-3"}
    assert from_dict(data).lr == 0.001


@pytest.mark.usefixtures("one_thread")
def test_a_run_name_with_resume_is_refused(tmp_path):
    first = train(tiny_config("dcgan", tmp_path, run_name="r", max_steps=1, epochs=2))
    with pytest.raises(ValueError, match="run_name 'other' with --resume"):
        train(tiny_config("dcgan", tmp_path, run_name="other", max_steps=2, epochs=2, resume=first.run_dir))
    assert not (tmp_path / "other").exists()
    train(tiny_config("dcgan", tmp_path, run_name="r", max_steps=2, epochs=2, resume=first.run_dir))


@pytest.mark.usefixtures("one_thread")
def test_the_cli_resumes_a_moved_run_and_a_config_files_resume(tmp_path, capsys):
    """The name a run started with is not an option of its resume (a renamed or copied folder
    resumes); `resume:` in a --config file resumes as --resume does; an --out-dir other than the
    run's parent would be ignored, so it is refused."""
    import shutil

    from effgan.train import checkpoint as ckpt
    from effgan.train.__main__ import main

    flags = ["dcgan", "--out-dir", str(tmp_path), "--ngf", "4", "--ndf", "4", "--image-size", "32", "--latent-dim",
             "8", "--arch", "classic", "--train-length", "16", "--batch-size", "4", "--epochs", "2",
             "--epochs-decay", "0", "--impl", "ref", "--cpu-threads", "1", "--no-progress", "--no-tensorboard",
             "--checkpoint-every", "0", "--num-samples", "2"]
    assert main([*flags, "--run-name", "first", "--max-steps", "2"]) == 0
    shutil.move(tmp_path / "first", tmp_path / "moved")
    capsys.readouterr()
    assert main(["--resume", str(tmp_path / "moved"), "--max-steps", "3", "--no-progress"]) == 0
    assert ckpt.read_step(tmp_path / "moved" / "checkpoints" / ckpt.LATEST) == 3

    options = tmp_path / "resume.yaml"
    options.write_text(f"resume: {tmp_path / 'moved'}\nmax_steps: 4\nprogress: false\n")
    assert main(["--config", str(options)]) == 0, capsys.readouterr().err
    assert ckpt.read_step(tmp_path / "moved" / "checkpoints" / ckpt.LATEST) == 4

    capsys.readouterr()
    assert main(["--resume", str(tmp_path / "moved"), "--max-steps", "5", "--out-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "out_dir" in err and "the run continues in its own folder" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
    assert main(["--resume", str(tmp_path / "moved"), "--max-steps", "5", "--no-progress",
                 "--out-dir", str(tmp_path)]) == 0  # the run's own parent: nothing ignored
    assert main(["--resume", str(tmp_path / "moved"), "--model", "cyclegan", "--max-steps", "6"]) == 2
    err = capsys.readouterr().err
    assert "model 'cyclegan' with --resume: the checkpoint is a dcgan run" in err and "Traceback" not in err
