"""python -m effgan.evaluate: options checked before any work, data that does not fit the checkpoint
named, the classifier score's network sized by the run's classes, and the same KID settings as the
evaluation during training."""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest
import torch

from effgan.evaluate import EvaluationOptions
from effgan.evaluate.__main__ import main as evaluate_main
from effgan.metrics import LatentGeneratorEvalHook, build_extractor
from effgan.train import train
from train_support import one_thread, tiny_config  # noqa: F401 (fixture)


def _fails(capsys, status, returned, *needles):
    err = capsys.readouterr().err
    assert returned == status, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert all(needle in err for needle in needles), err


@pytest.mark.parametrize("flag, value, message", [
    ("--max-items", "1", "max_items must be >= 2, got 1"),
    ("--kid-subset-size", "1", "kid_subset_size must be >= 2, got 1"),
    ("--seed", "-1", "seed must be an int >= 0 and < 2**32, got -1"),
    ("--seed", "18446744073709551616", "seed must be an int >= 0 and < 2**32, got 18446744073709551616"),
    ("--feature-train-items", "1", "feature_train_items must be >= 2, got 1"),
])
def test_options_are_checked_before_anything_runs(tmp_path, capsys, flag, value, message):
    # the checkpoint does not even exist: the option is refused first
    _fails(capsys, 2, evaluate_main(["--checkpoint", str(tmp_path / "none"), flag, value]), message)


def test_a_json_path_that_cannot_be_written_is_refused_up_front(tmp_path, capsys):
    _fails(capsys, 2, evaluate_main(["--checkpoint", str(tmp_path / "none"), "--json", str(tmp_path)]),
           "is a folder")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails(capsys, 2, evaluate_main(["--checkpoint", str(tmp_path / "none"), "--json", str(blocker / "out.json")]),
           "is a file")
    if os.path.isdir("/proc/self"):
        # no file can be created in /proc, yet os.access says it is writable to root: a real write decides
        _fails(capsys, 2, evaluate_main(["--checkpoint", str(tmp_path / "none"), "--json", "/proc/effgan.json"]),
               "'/proc/effgan.json' cannot be written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # the probes left nothing behind
    # a checkpoint (or a cached network) would be replaced by the JSON
    _fails(capsys, 2, evaluate_main(["--checkpoint", str(tmp_path / "none"), "--json", str(tmp_path / "latest.pt")]),
           "give a .json name")


def _idx(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _mnist_folder(root, num_classes: int, count: int = 40):
    rng = np.random.default_rng(0)
    root.mkdir()
    for split in ("train", "t10k"):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % num_classes).astype(np.uint8)
        (root / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
        (root / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels)))
    return root


@pytest.mark.usefixtures("one_thread")
def test_data_with_other_classes_is_named_not_a_traceback(tmp_path, capsys):
    run = train(tiny_config("cgan", tmp_path, run_name="c", max_steps=1))
    five = _mnist_folder(tmp_path / "five", 5)
    _fails(capsys, 2, evaluate_main(["--checkpoint", run.run_dir, "--data", str(five), "--max-items", "8",
                                     "--feature-train-items", "16", "--feature-steps", "2"]),
           f"--data {str(five)!r} does not fit the checkpoint", "num_classes 5 (the run trained with 10)")


def test_a_labelled_feature_net_has_an_output_per_class_of_the_run():
    torch.manual_seed(0)
    images = torch.rand(16, 1, 28, 28) * 2 - 1
    labels = torch.arange(16) % 4  # the training subset happens to hold classes 0-3 only
    net = build_extractor(real_images=images, real_labels=labels, num_classes=10, steps=1)
    assert net.config.num_outputs == 10
    assert build_extractor(real_images=images, real_labels=labels, steps=1).config.num_outputs == 4


def test_one_class_data_trains_the_feature_net_on_rotations():
    """A plain image folder is one class; a one-way classifier's loss is 0 whatever its weights, so
    the FID/KID network would stay at its random initialisation."""
    from effgan.metrics.feature_net import FeatureNet, train_feature_net
    from effgan.metrics.training import build_seeded

    torch.manual_seed(0)
    images = torch.rand(32, 3, 16, 16) * 2 - 1
    one_class = torch.zeros(32, dtype=torch.long)
    for num_classes in (1, None):
        net = build_extractor(real_images=images, real_labels=one_class, num_classes=num_classes, steps=5)
        assert net.config.mode == "rotation"
        initial = build_seeded(lambda: FeatureNet(net.config), net.config.seed).state_dict()
        moved = max((value - initial[key]).abs().max().item() for key, value in net.state_dict().items()
                    if value.is_floating_point() and "running" not in key)
        assert moved > 1e-3
    with pytest.raises(ValueError, match="labels of 1 class cannot train a classifier"):
        train_feature_net(images, one_class, steps=1)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got 0..3"):
        train_feature_net(images, torch.arange(32) % 4, num_classes=3, steps=1)


def test_training_and_evaluate_use_the_same_kid_settings():
    import inspect

    hook = inspect.signature(LatentGeneratorEvalHook.__init__).parameters
    options = EvaluationOptions()
    assert hook["kid_subsets"].default == options.kid_subsets
    assert hook["kid_subset_size"].default == options.kid_subset_size


def test_evaluate_sizes_default_to_the_runs_own_evaluation_settings():
    """A checkpoint gets the numbers --eval-every logged: the run's eval sizes, not fixed ones."""
    from effgan.train.config import TrainConfig, resolve

    config = resolve(TrainConfig(model="cgan", eval_items=64, eval_train_items=128, eval_train_steps=7))
    got = EvaluationOptions().for_run(config)
    assert (got.max_items, got.feature_train_items, got.feature_steps, got.classifier_steps) == (64, 128, 7, 7)
    explicit = EvaluationOptions(max_items=10, classifier_steps=3).for_run(config)
    assert (explicit.max_items, explicit.feature_train_items, explicit.classifier_steps) == (10, 128, 3)
    with pytest.raises(ValueError, match="feature_train_items must be >= 2"):
        EvaluationOptions(feature_train_items=1)


def test_evaluation_items_spread_over_a_class_ordered_folder(tmp_path):
    from PIL import Image

    from effgan.evaluate.checkpoint_eval import eval_dataset
    from effgan.metrics import collect_images
    from effgan.train.config import TrainConfig, resolve

    for label, name in enumerate(("a", "b", "c")):
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(10):
            Image.new("L", (8, 8), 20 * label + i).save(tmp_path / "data" / name / f"{i}.png")
    config = resolve(TrainConfig(model="cgan", dataset=str(tmp_path / "data"), image_size=28))
    dataset = eval_dataset(config, "train", 6)
    assert len(dataset) == 6 and tuple(dataset.classes) == ("a", "b", "c")
    _, labels = collect_images(dataset, max_items=6, with_labels=True)
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]  # the first six would all be class 0


def test_cyclegan_domains_of_unequal_size_keep_all_their_images(tmp_path):
    """An unpaired dataset has max(len A, len B) items and repeats the smaller domain; keeping every
    k-th item of it would keep only a few of that domain's images."""
    from PIL import Image

    from effgan.evaluate.checkpoint_eval import eval_dataset
    from effgan.metrics.cyclegan_eval import collect_domain_items
    from effgan.train.config import TrainConfig, resolve

    for domain, count in (("trainA", 2), ("trainB", 2), ("testA", 6), ("testB", 36)):
        (tmp_path / "data" / domain).mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (32, 32), (6 * i, 3 * i, 100)).save(tmp_path / "data" / domain / f"{i:02d}.png")
    config = resolve(TrainConfig(model="cyclegan", dataset=str(tmp_path / "data"), image_size=32))
    for items in (6, 12):
        got = collect_domain_items(eval_dataset(config, "test", items), max_items=items)
        assert got["A"].shape[0] == 6 and got["B"].shape[0] == items
        assert len({tuple(image.flatten().tolist()) for image in got["A"]}) == 6
