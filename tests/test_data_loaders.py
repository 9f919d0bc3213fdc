import pytest
import torch

from effgan.data import CansDomain, UnpairedDataset, build_dataset, make_loader


def _collect(loader):
    batches = list(loader)
    return {key: torch.cat([b[key] for b in batches]) for key in ("A", "B", "A_index", "B_index")}


def test_unpaired_loader_with_two_workers_is_reproducible_and_follows_set_epoch():
    ds = build_dataset("cans", "train", image_size=64, length=8, seed=3, augment=True)
    loader = make_loader(ds, 4, shuffle=True, num_workers=2, seed=7)
    assert loader.persistent_workers and loader.prefetch_factor == 2
    ds.set_epoch(0)
    epoch0 = _collect(loader)
    ds.set_epoch(1)
    epoch1 = _collect(loader)  # the same, persistent workers must see the new epoch

    # Each epoch pairs every B exactly once and differently from the other epoch.
    assert sorted(epoch0["B_index"].tolist()) == list(range(8))
    fresh = build_dataset("cans", "train", image_size=64, length=8, seed=3, augment=True)
    pairing = {}
    for epoch in (0, 1):
        fresh.set_epoch(epoch)
        pairing[epoch] = [fresh.b_index(i) for i in range(8)]
    assert pairing[0] != pairing[1]
    for epoch, got in ((0, epoch0), (1, epoch1)):
        fresh.set_epoch(epoch)
        for a, b in zip(got["A_index"].tolist(), got["B_index"].tolist(), strict=True):
            assert b == pairing[epoch][a]
        first = got["A_index"][0].item()
        assert torch.equal(got["A"][0], fresh[first]["A"])  # same augmentation as in-process

    # A second loader with the same seeds repeats epoch 0 exactly.
    again = build_dataset("cans", "train", image_size=64, length=8, seed=3, augment=True)
    repeat = _collect(make_loader(again, 4, shuffle=True, num_workers=2, seed=7))
    assert torch.equal(repeat["A_index"], epoch0["A_index"]) and torch.equal(repeat["B"], epoch0["B"])


def test_unpaired_length_is_the_larger_domain():
    ds = UnpairedDataset(CansDomain("A", size=64, length=5), CansDomain("B", size=64, length=2))
    assert len(ds) == 5
    assert sorted(ds.b_index(i) for i in range(2)) == [0, 1]
    assert ds[4]["A_index"] == 4
    with pytest.raises(IndexError):
        ds[5]


def test_labelled_loader_batches_images_and_labels():
    ds = build_dataset("digits", length=20, seed=0)
    images, labels = next(iter(make_loader(ds, 20, shuffle=False)))
    assert images.shape == (20, 1, 28, 28) and labels.tolist() == [i % 10 for i in range(20)]


def test_make_loader_validates_arguments():
    ds = build_dataset("digits", length=10)
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(ds, 0)
    with pytest.raises(ValueError, match="num_workers"):
        make_loader(ds, 2, num_workers=-1)
    with pytest.raises(ValueError, match="shuffle"):
        make_loader(ds, 2, sampler=torch.utils.data.SequentialSampler(ds))
    loader = make_loader(ds, 2, shuffle=False, sampler=torch.utils.data.SequentialSampler(ds))
    assert loader.pin_memory == torch.cuda.is_available()


def test_build_dataset_validates_arguments():
    with pytest.raises(ValueError, match="split"):
        build_dataset("cans", "val")
    with pytest.raises(ValueError, match="kind"):
        build_dataset("cans", kind="paired-ish")
    with pytest.raises(ValueError, match="labelled"):
        build_dataset("cans", kind="labelled")
    with pytest.raises(TypeError, match="augment"):
        build_dataset("cans", length=2, image_size=64, augment="yes")
    with pytest.raises(TypeError, match="seed"):
        build_dataset("cans", seed=1.5)
    for value in (123, None):
        with pytest.raises(TypeError, match="name_or_path must be a dataset name or a folder path"):
            build_dataset(value)
    with pytest.raises(ValueError, match=r"image_size must be one of \(64, 128, 256\) for 'cans', got 100"):
        build_dataset("cans", image_size=100)


class _Indices(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        return i


def _epochs(num_workers: int, count: int = 3) -> list[list[int]]:
    loader = make_loader(_Indices(), 4, num_workers=num_workers, seed=5)
    return [[i for batch in loader for i in batch.tolist()] for _ in range(count)]


def test_the_shuffle_order_does_not_depend_on_the_worker_count():
    orders = _epochs(0)
    assert _epochs(2) == orders  # every epoch, not only the first
    assert len({tuple(o) for o in orders}) == 3 and all(sorted(o) == list(range(8)) for o in orders)
