"""python -m effgan.experiments.generators rejects bad input at startup, naming the argument."""
import pytest
import torch

from effgan.experiments import generators as experiment
from effgan.experiments.budgets import PRESETS
from effgan.experiments.generators import main, run_experiment

SHARED_EXTRACTOR = experiment.shared_extractor


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    """Every case here must be refused before the feature net or any generator is trained."""
    def refuse(*args, **kwargs):
        raise AssertionError("work started before the input was checked")

    monkeypatch.setattr(experiment, "shared_extractor", refuse)
    monkeypatch.setattr(experiment, "train_and_measure", refuse)
    monkeypatch.setattr(experiment, "train_in_fresh_process", refuse)


def run_cli(capsys, *args):
    code = main(["--budget", "smoke", "--no-isolate", "--no-fused", *args])
    return code, capsys.readouterr().err


def assert_one_line_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("effgan.experiments.generators: error: "), err
    assert "Traceback" not in err


def test_unknown_device_is_refused(tmp_path, capsys):
    code, err = run_cli(capsys, "--device", "foo", "--generators", "resnet6", "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "device='foo' is not a device" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_refused(tmp_path, capsys):
    code, err = run_cli(capsys, "--device", "cuda", "--generators", "resnet6", "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "device='cuda' but CUDA is not available" in err


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    image = tmp_path / "image.png"
    image.write_bytes(b"not a folder")
    code, err = run_cli(capsys, "--generators", "resnet6", "--out", str(image))
    assert code == 2
    assert_one_line_error(err)
    assert f"--out {str(image)!r} is a file, not a folder" in err
    assert image.read_bytes() == b"not a folder"


def test_out_under_a_file_is_refused(tmp_path, capsys):
    image = tmp_path / "image.png"
    image.write_bytes(b"")
    code, err = run_cli(capsys, "--generators", "resnet6", "--out", str(image / "sub" / "dir"))
    assert code == 2
    assert_one_line_error(err)
    assert "--out" in err and f"lies under {str(image)!r}" in err


def test_unknown_generator_is_refused_before_the_known_ones_train(tmp_path, capsys):
    code, err = run_cli(capsys, "--generators", "resnet6,foo,bar", "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "--generators: unknown generators 'foo', 'bar'" in err
    for known in ("resnet6", "resnet9", "unet256", "effnet-b0", "effnet-resnet-b3"):  # the known names are listed
        assert known in err.split("known:")[1]
    assert not (tmp_path / "o").exists()


def test_repeated_generator_is_refused(tmp_path, capsys):
    code, err = run_cli(capsys, "--generators", "resnet6,resnet9,resnet6", "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "--generators names 'resnet6' more than once" in err


def test_generator_that_cannot_run_at_the_budget_is_refused_before_training(tmp_path, capsys):
    # unet128 halves the image seven times: the smoke budget's 64x64 is too small for it
    code, err = run_cli(capsys, "--generators", "resnet6,unet128", "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "generator 'unet128' cannot run at the smoke budget (64x64)" in err


@pytest.mark.parametrize("seed", ["-1", str(2**63)])
def test_seed_out_of_range_is_refused(tmp_path, capsys, seed):
    code, err = run_cli(capsys, "--seed", seed, "--generators", "resnet6", "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    # the range that holds here (training derives seeds from it), not check_seed's wider int64 one
    assert "--seed must be in [0, 2**32)" in err


def test_missing_fid_weights_are_refused_before_the_training_data_is_built(tmp_path, capsys, monkeypatch):
    import effgan.data

    monkeypatch.setattr(experiment, "shared_extractor", SHARED_EXTRACTOR)  # the real one, this time
    monkeypatch.setattr(effgan.data, "build_dataset", lambda *a, **k: pytest.fail("built the training data"))
    code, err = run_cli(capsys, "--fid-weights", str(tmp_path / "missing.pth"), "--generators", "resnet6",
                        "--out", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(err)
    assert "missing.pth" in err  # the loader's own wording names the path


def test_library_call_names_its_own_arguments(tmp_path):
    with pytest.raises(ValueError, match="generators: unknown generator 'foo'"):
        run_experiment(PRESETS["smoke"], generators=("resnet6", "foo"), out_dir=str(tmp_path), device="cpu")
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(ValueError, match="out_dir .* is a file"):
        run_experiment(PRESETS["smoke"], generators=("resnet6",), out_dir=str(tmp_path / "file"), device="cpu")
    with pytest.raises(ValueError, match="seed must be in \\[0, 2\\*\\*32\\)"):
        run_experiment(PRESETS["smoke"], generators=("resnet6",), out_dir=str(tmp_path), device="cpu", seed=2**40)
