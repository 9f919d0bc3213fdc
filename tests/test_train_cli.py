"""The command lines: python -m effgan.train (in a subprocess), effgan.translate and effgan.sample."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from effgan import sample, translate
from effgan.train import train
from train_support import one_thread, tiny_config  # noqa: F401 (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FLAGS = ["--ngf", "4", "--ndf", "4", "--train-length", "4", "--d-layers", "2", "--pool-size", "2",
              "--impl", "ref", "--cpu-threads", "1", "--no-tensorboard", "--log-every", "1"]


def test_python_m_effgan_train_end_to_end(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text(yaml.safe_dump({"lambda_cycle": 5.0, "max_steps": 7, "seed": 4}))
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, "-m", "effgan.train", "cyclegan", "--config", str(config_file), "--max-steps", "3",
               "--out-dir", str(tmp_path / "runs"), *TINY_FLAGS]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = os.listdir(tmp_path / "runs")
    assert len(runs) == 1 and runs[0].startswith("cyclegan-")
    run = tmp_path / "runs" / runs[0]
    assert str(run) in done.stdout  # the run directory is named on screen
    final = run / "samples" / "final.png"
    assert f"final samples: {final}" in done.stdout and final.is_file()
    assert "it/s" in done.stderr or "s/it" in done.stderr  # the progress bar
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["max_steps"] == 3 and saved["seed"] == 4  # flag beats file, file beats default
    assert saved["cyclegan"]["lambda_cycle"] == 5.0 and saved["ngf"] == 4

    # --resume continues the same run from its checkpoint; later flags still override
    more = subprocess.run([sys.executable, "-m", "effgan.train", "--resume", str(run), "--max-steps", "4",
                           "--no-progress"], capture_output=True, text=True, env=env, timeout=300)
    assert more.returncode == 0, more.stderr[-3000:]
    assert "starting at step 3" in more.stdout
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["step"] == 4


def test_train_cli_rejects_bad_options(tmp_path, capsys):
    from effgan.train.__main__ import main

    assert main(["--model", "cyclegan", "--batch-size", "0", "--out-dir", str(tmp_path)]) == 2
    with pytest.raises(SystemExit):
        main(["--amp", "fp8"])
    with pytest.raises(SystemExit):
        main(["--init", "uniform"])
    assert "--init: invalid choice: 'uniform'" in capsys.readouterr().err
    # named by the option, not by the argument of the function that would have failed
    for argv, message in ((["--init-gain", "nan"], "init_gain must be a positive finite number, got nan"),
                          (["--dataset", str(tmp_path / "missing")], "is neither 'cans', 'digits' nor an existing")):
        assert main([*argv, "--out-dir", str(tmp_path), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err


@pytest.mark.usefixtures("one_thread")
def test_train_cli_reports_bad_paths_devices_and_resumes_cleanly(tmp_path, capsys, monkeypatch):
    """Each of these is a message naming the problem and an exit status, never a traceback."""
    from effgan.train.__main__ import main
    from effgan.train import checkpoint as ckpt

    run = train(tiny_config("dcgan", tmp_path, run_name="base", max_steps=2))
    capsys.readouterr()

    def fails(argv, status, *needles):
        assert main(argv) == status, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err and all(n in err for n in needles), err

    a_file = tmp_path / "a_file"
    a_file.write_text("")
    fails(["dcgan", "--out-dir", str(a_file), "--max-steps", "1", "--no-progress"], 2, "effgan.train: error:",
          f"out_dir {str(a_file)!r}", "is a file")
    fails(["dcgan", "--device", "foo", "--out-dir", str(tmp_path)], 2, "device='foo' is not a device")
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # these tests run Triton in its interpreter; users do not
    fails(["dcgan", "--device", "cpu", "--impl", "triton", "--out-dir", str(tmp_path)], 2,
          "impl='triton' cannot run on cpu")
    monkeypatch.undo()
    broken = tmp_path / "broken.yaml"
    broken.write_text("batch_size: [1,\n")
    fails(["dcgan", "--config", str(broken)], 2, "cannot be parsed")
    one_class = tmp_path / "one_class"
    one_class.mkdir()
    for i in range(4):
        Image.new("RGB", (32, 32), (60 * i, 20, 20)).save(one_class / f"{i}.png")
    fails(["cgan", "--dataset", str(one_class), "--out-dir", str(tmp_path), "--max-steps", "1", "--batch-size", "2",
           "--no-progress"], 2,
          "model 'cgan' needs a labelled dataset of at least 2 classes", "got 1")
    fails(["--resume", run.run_dir, "--lr", "0.05", "--max-steps", "4"], 2, "lr 0.0002 -> 0.05",
          "cannot change on resume")
    fails(["--resume", run.run_dir, "--ngf", "8", "--max-steps", "4"], 2, "does not fit the run", "--ngf")
    latest = os.path.join(run.run_dir, "checkpoints", ckpt.LATEST)
    with open(latest, "r+b") as f:  # a save cut short (by a full disk, say) on a filesystem without atomic rename
        f.truncate(os.path.getsize(latest) // 2)
    fails(["--resume", run.run_dir, "--max-steps", "4"], 2, "cannot be read as a checkpoint", "best.pt may still be good")
    torch.save({"format": 1}, latest)
    fails(["--resume", latest, "--max-steps", "4"], 2, "is not a complete effgan checkpoint")
    assert sample.main(["--checkpoint", latest]) == 2
    assert "is not a complete effgan checkpoint" in capsys.readouterr().err
    best = os.path.join(run.run_dir, "checkpoints", ckpt.BEST)
    assert sample.main(["--checkpoint", best, "--nrow", "-3"]) == 2
    assert "--nrow must be >= 1" in capsys.readouterr().err
    assert sample.main(["--checkpoint", best, "--device", "cpu", "--output", str(a_file / "grid.png")]) == 2
    err = capsys.readouterr().err
    assert "effgan.sample: error: --output" in err and "is a file" in err, err


def _png_claiming(path, width: int, height: int) -> None:
    """A small PNG whose header (IHDR, with its CRC) says width x height."""
    import io
    import struct
    import zlib

    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    ihdr = 8  # after the signature: length (4), b"IHDR" (4), width, height, ...
    data[ihdr + 8 : ihdr + 16] = struct.pack(">II", width, height)
    data[ihdr + 21 : ihdr + 25] = struct.pack(">I", zlib.crc32(bytes(data[ihdr + 4 : ihdr + 21])))
    path.write_bytes(bytes(data))


def test_translate_cli(tmp_path, capsys):
    run = train(tiny_config("cyclegan", tmp_path, run_name="cg", max_steps=1))
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    Image.new("RGB", (50, 30), (200, 10, 10)).save(inputs / "red.png")
    Image.new("L", (64, 64), 128).save(inputs / "gray.jpg")
    Image.new("RGB", (40, 40), (10, 200, 10)).save(inputs / "green.ppm")  # formats training reads too
    Image.new("L", (40, 40), 60).save(inputs / "dark.pgm")
    (inputs / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert translate.main(["--checkpoint", run.run_dir, "--input", str(inputs), "--output", str(out),
                           "--device", "cpu"]) == 0
    assert sorted(os.listdir(out)) == ["dark.png", "gray.png", "green.png", "red.png"]
    with Image.open(out / "red.png") as image:
        assert image.size == (64, 64) and image.mode == "RGB"  # the training size and channels
    assert translate.main(["--checkpoint", run.run_dir, "--input", str(inputs / "red.png"), "--output", str(out),
                           "--direction", "BtoA", "--keep-size", "--device", "cpu"]) == 0
    with Image.open(out / "red.png") as image:
        assert image.size == (48, 28)  # own size, rounded down to a multiple of 4
    # the translation is the generator's output: recompute it from the checkpoint
    from effgan.train.inference import load_generator

    g_b = load_generator(run.run_dir, "G_B").module
    x = translate.load_image(inputs / "red.png", 3, None)
    expected = ((g_b(x).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[0].permute(1, 2, 0)
    with Image.open(out / "red.png") as image:
        assert torch.equal(torch.from_numpy(__import__("numpy").asarray(image).copy()), expected)
    assert translate.main(["--checkpoint", str(tmp_path / "missing"), "--input", str(inputs),
                           "--output", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    bomb = tmp_path / "bomb"  # a header claiming more pixels than PIL agrees to decode
    bomb.mkdir()
    _png_claiming(bomb / "huge.png", 20000, 20000)
    capsys.readouterr()
    assert translate.main(["--checkpoint", run.run_dir, "--input", str(bomb), "--output", str(tmp_path / "o2"),
                           "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "huge.png" in err and "cannot be read" in err and "Traceback" not in err, err


def test_translate_runs_a_run_trained_with_a_backend_missing_here(tmp_path, monkeypatch):
    """A run trained with impl="triton" on a GPU translates on a CPU (with the kernels that run there)."""
    run = train(tiny_config("cyclegan", tmp_path, run_name="cg", max_steps=1))
    path = os.path.join(run.run_dir, "checkpoints", "latest.pt")
    state = torch.load(path, weights_only=True)
    state["config"]["impl"] = "triton"
    torch.save(state, path)
    monkeypatch.setenv("TRITON_INTERPRET", "0")  # Triton cannot run on the CPU here
    Image.new("RGB", (40, 40), (200, 10, 10)).save(tmp_path / "red.png")
    assert translate.main(["--checkpoint", run.run_dir, "--input", str(tmp_path / "red.png"),
                           "--output", str(tmp_path / "out"), "--device", "cpu"]) == 0
    assert os.path.isfile(tmp_path / "out" / "red.png")


def test_translate_decodes_inputs_as_training_does(tmp_path):
    """16-bit images scaled (not clipped to white), transparency over white, EXIF orientation."""
    import numpy as np

    from effgan.data.image_io import decode_image

    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24] = (255, 0, 0, 255)  # a red square on transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "cut.png")
    sideways = Image.new("RGB", (40, 20), (0, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated by 90 degrees
    sideways.save(tmp_path / "rot.jpg", exif=exif)
    for name, channels in (("deep.png", 1), ("cut.png", 3), ("rot.jpg", 3)):
        x = translate.load_image(tmp_path / name, channels, None)
        decoded, _ = decode_image(tmp_path / name, channels)
        expected = torch.from_numpy(decoded.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
        assert x.shape == expected.shape, name
        torch.testing.assert_close(x, expected, rtol=0, atol=0)
    deep = translate.load_image(tmp_path / "deep.png", 1, None)
    assert float((deep >= 1.0).double().mean()) < 0.01  # clipped at 255, almost all of it was white
    assert translate.load_image(tmp_path / "cut.png", 3, None)[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]
    assert translate.load_image(tmp_path / "rot.jpg", 3, None).shape[2:] == (40, 20)


@pytest.mark.usefixtures("one_thread")
def test_sample_cli(tmp_path, capsys):
    dc = train(tiny_config("dcgan", tmp_path, run_name="dc", max_steps=1))
    grid = tmp_path / "grid.png"
    assert sample.main(["--checkpoint", dc.run_dir, "-n", "6", "--output", str(grid), "--device", "cpu"]) == 0
    with Image.open(grid) as image:
        assert image.size == (3 * 34 + 2, 2 * 34 + 2)  # 6 images, 3 per row
    first = grid.read_bytes()
    assert sample.main(["--checkpoint", dc.run_dir, "-n", "6", "--output", str(grid), "--device", "cpu"]) == 0
    assert grid.read_bytes() == first  # same seed, same images
    jpg = tmp_path / "grid.jpg"  # the grid is PNG data: another extension is refused, not mislabelled
    assert sample.main(["--checkpoint", dc.run_dir, "--output", str(jpg), "--device", "cpu"]) == 2
    assert "--output must be a .png path" in capsys.readouterr().err and not jpg.exists()
    assert sample.main(["--checkpoint", dc.run_dir, "--seed", str(2**64)]) == 2
    assert "--seed must be in [0, 2**32)" in capsys.readouterr().err
    assert sample.main(["--checkpoint", dc.run_dir, "-n", "2", "--label", "3"]) == 2  # not a cgan run
    assert "--label needs a cgan run" in capsys.readouterr().err

    cg = train(tiny_config("cgan", tmp_path, run_name="cg", max_steps=1))
    single = tmp_path / "single"
    assert sample.main(["--checkpoint", cg.run_dir, "-n", "4", "--label", "7", "--individual", str(single),
                        "--device", "cpu"]) == 0
    assert sorted(os.listdir(single)) == ["00000.png", "00001.png", "00002.png", "00003.png"]
    default_grid = os.path.join(cg.run_dir, "samples", "sample-1-n4.png")
    assert os.path.isfile(default_grid)
    assert sample.main(["--checkpoint", cg.run_dir, "--label", "10"]) == 2
    assert sample.main(["--checkpoint", cg.run_dir, "--truncation", "0.7"]) == 2  # stylegan only
    cyc = train(tiny_config("cyclegan", tmp_path, run_name="cyc", max_steps=1))
    assert sample.main(["--checkpoint", cyc.run_dir]) == 2
    assert "effgan.translate" in capsys.readouterr().err


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("model", ["dcgan", "cgan", "stylegan"])
def test_sample_images_depend_on_seed_and_index_only(tmp_path, model):
    """Image i is the same whatever -n and --batch-size: a 50,000-image FID set can be written in
    batches, or extended, without its first images changing. --no-grid writes only the images."""
    run = train(tiny_config(model, tmp_path, run_name=model, max_steps=1))
    common = ["--checkpoint", run.run_dir, "--device", "cpu", "--no-grid", "--seed", "5"]
    assert sample.main(common + ["-n", "5", "--batch-size", "2", "--individual", str(tmp_path / "a")]) == 0
    assert sample.main(common + ["-n", "3", "--batch-size", "3", "--individual", str(tmp_path / "b")]) == 0
    a, b = sorted(os.listdir(tmp_path / "a")), sorted(os.listdir(tmp_path / "b"))
    assert a == [f"{i:05d}.png" for i in range(5)] and b == a[:3]
    for name in b:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    pixels = [np.asarray(Image.open(tmp_path / "a" / name)) for name in a]
    assert all(not np.array_equal(pixels[0], other) for other in pixels[1:]), "every image its own latent"
    assert not os.path.exists(os.path.join(run.run_dir, "samples", "sample-1-n5.png")), "--no-grid wrote a grid"


@pytest.mark.usefixtures("one_thread")
def test_sample_refuses_what_it_cannot_do(tmp_path, capsys):
    run = train(tiny_config("dcgan", tmp_path, run_name="dc", max_steps=1))
    base = ["--checkpoint", run.run_dir, "--device", "cpu"]
    assert sample.main(base + ["--batch-size", "0"]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
    assert sample.main(base + ["--no-grid"]) == 2
    assert "--no-grid needs --individual" in capsys.readouterr().err
    assert sample.main(base + ["--no-grid", "--individual", str(tmp_path / "i"), "--nrow", "3"]) == 2
    assert "drop --output and --nrow" in capsys.readouterr().err
    # a grid far beyond this machine's memory fails after one batch, with advice, not a traceback
    assert sample.main(base + ["-n", str(10**12)]) == 1
    err = capsys.readouterr().err
    assert "out of memory with -n 1000000000000" in err and "GiB" in err and "--no-grid" in err, err


def test_cuda_graphs_hint_only_where_it_applies():
    """The startup tip for --cuda-graphs shows for a fused model on CUDA, and nowhere it would not help
    or cannot apply (CPU, the plain build, graphs or compile already on, DiffAugment)."""
    from effgan.train import config as cfg
    from effgan.train.trainer import cuda_graphs_hint

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    base = cfg.resolve(cfg.TrainConfig(model="cyclegan"))
    assert base.fused and "--cuda-graphs" in cuda_graphs_hint(base, cuda)
    assert cuda_graphs_hint(base, cpu) == ""
    for change in (dict(fused=False), dict(cuda_graphs=True), dict(compile=True), dict(diffaugment="color")):
        config = cfg.resolve(cfg.TrainConfig(model="cyclegan"))
        for name, value in change.items():
            setattr(config, name, value)
        assert cuda_graphs_hint(config, cuda) == "", change


@pytest.mark.usefixtures("one_thread")
def test_train_cli_refuses_what_it_would_ignore_and_replays_named_runs(tmp_path, capsys, monkeypatch):
    from effgan.train.__main__ import main

    def fails(argv, *needles):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "Traceback" not in err and all(n in err for n in needles), err

    monkeypatch.setenv("TRITON_INTERPRET", "0")  # these tests run Triton in its interpreter; users do not
    monkeypatch.setenv("EFFGAN_IMPL", "triton")  # what impl="auto" defers to
    fails(["dcgan", "--device", "cpu", "--run-name", "env", "--out-dir", str(tmp_path)],
          "EFFGAN_IMPL='triton' cannot run on cpu")
    assert not (tmp_path / "env").exists()
    monkeypatch.undo()
    # widths the chosen networks would ignore
    fails(["dcgan", "--ngf", "8", "--out-dir", str(tmp_path)], "ngf=8 would be ignored", "gan.arch='shallow'")
    fails(["cyclegan", "--generator", "effnet-b0", "--ngf", "8", "--out-dir", str(tmp_path)],
          "ngf=8 would be ignored", "compound scaling")
    # options of no network the chosen model builds
    fails(["cyclegan", "--latent-dim", "999", "--out-dir", str(tmp_path)], "latent_dim=999 would be ignored")
    fails(["cyclegan", "--discriminator", "pixelgan", "--d-layers", "5", "--out-dir", str(tmp_path)],
          "cyclegan.d_layers=5 would be ignored", "cyclegan.discriminator='pixelgan'")
    fails(["dcgan", "--lambda-cycle", "5", "--out-dir", str(tmp_path)],
          "cyclegan.lambda_cycle=5.0 would be ignored", "model 'dcgan' reads none of the cyclegan options")
    fails(["cyclegan", "--r1-gamma", "3", "--mixing-prob", "0.5", "--out-dir", str(tmp_path)],
          "stylegan.r1_gamma=3.0, stylegan.mixing_prob=0.5 would be ignored", "drop them")
    fails(["stylegan", "--arch", "classic", "--out-dir", str(tmp_path)], "gan.arch='classic' would be ignored")
    # a named run's config.yaml replays as a new run (its own folder), not refused the original's
    run = train(tiny_config("dcgan", tmp_path, run_name="named", max_steps=1))
    capsys.readouterr()
    assert main(["--config", os.path.join(run.run_dir, "config.yaml"), "--max-steps", "1", "--no-progress"]) == 0
    assert "run directory: " in capsys.readouterr().out


def test_a_compile_backend_without_compile_is_refused_by_name(tmp_path, capsys):
    from effgan.train.__main__ import main

    assert main(["dcgan", "--compile-backend", "aot_eager", "--device", "cpu", "--run-name", "x",
                 "--out-dir", str(tmp_path), "--max-steps", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "compile_backend='aot_eager' would be ignored" in err, err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("impl", ["cpp", "triton"])
def test_a_kernel_backend_with_no_fused_is_refused_by_name(tmp_path, capsys, impl):
    from effgan.train.__main__ import main

    assert main(["dcgan", "--no-fused", "--impl", impl, "--device", "cpu", "--run-name", "x",
                 "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"impl={impl!r} would be ignored" in err and "fused=False" in err, err
    assert not (tmp_path / "x").exists()


@pytest.mark.usefixtures("one_thread")
def test_a_checkpoint_with_an_ignored_width_still_loads(tmp_path):
    """The width check is for new runs: a checkpoint saved with such a width (before the check) samples."""
    from effgan.train import checkpoint as ckpt

    run = train(tiny_config("dcgan", tmp_path, run_name="shallow", max_steps=1, ngf=None, ndf=None, image_size=28,
                            **{"gan.arch": "shallow"}))
    state = torch.load(run.checkpoint, weights_only=False)
    state["config"]["ngf"] = 8
    ckpt.save_atomic(state, run.checkpoint)
    assert sample.main(["--checkpoint", run.run_dir, "-n", "2", "--device", "cpu",
                        "--output", str(tmp_path / "grid.png")]) == 0


@pytest.mark.usefixtures("one_thread")
def test_translate_refuses_an_output_folder_that_is_a_file(tmp_path, capsys):
    """--output naming a file (or a path under one) failed with 'File exists' / 'Not a directory', exit 1."""
    run = train(tiny_config("cyclegan", tmp_path, run_name="cg", max_steps=1))
    Image.new("RGB", (64, 64), (200, 10, 10)).save(tmp_path / "red.png")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for output in (a_file, a_file / "sub"):
        assert translate.main(["--checkpoint", run.run_dir, "--input", str(tmp_path / "red.png"),
                               "--output", str(output), "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert f"--output {str(output)!r}" in err and "is a file" in err, err
    assert a_file.read_text() == "not a folder"


@pytest.mark.usefixtures("one_thread")
def test_sample_refuses_output_paths_it_cannot_write_before_generating(tmp_path, capsys, monkeypatch):
    """An --output that is a folder or lies under a file, or an --individual that is a file, failed with an
    OSError (exit 1) naming no option, the grid's only after every image had been generated."""
    run = train(tiny_config("dcgan", tmp_path, run_name="dc", max_steps=1))
    a_file, a_folder = tmp_path / "notes.txt", tmp_path / "grid.png"
    a_file.write_text("not a folder")
    a_folder.mkdir()
    monkeypatch.setattr(sample, "generate", lambda *a, **k: pytest.fail("generated before checking the paths"))
    base = ["--checkpoint", run.run_dir, "-n", "3", "--device", "cpu"]
    for option, path in (("--output", a_folder), ("--output", a_file / "grid.png"), ("--individual", a_file),
                         ("--individual", a_file / "sub")):
        assert sample.main(base + [option, str(path)]) == 2
        err = capsys.readouterr().err
        assert f"{option} {str(path)!r}" in err and ("is a file" in err or "is a folder" in err), err
    assert a_file.read_text() == "not a folder" and os.listdir(a_folder) == []


@pytest.mark.usefixtures("one_thread")
def test_sample_finds_an_unwritable_default_grid_path_before_generating(tmp_path, capsys, monkeypatch):
    """Without --output the grid goes to <run>/samples/; when that cannot be written (here a file named
    samples stands there) the error came only after every image had been generated."""
    run = train(tiny_config("dcgan", tmp_path, run_name="dc", max_steps=1))
    samples = os.path.join(run.run_dir, "samples")
    shutil.rmtree(samples, ignore_errors=True)
    with open(samples, "w") as f:
        f.write("in the way")
    monkeypatch.setattr(sample, "generate", lambda *a, **k: pytest.fail("generated before checking the grid path"))
    assert sample.main(["--checkpoint", run.run_dir, "-n", "3", "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "effgan.sample: error:" in err and "samples" in err, err
    assert open(samples).read() == "in the way"
