"""The training sampler's order: a function of (seed, epoch, rank), independent across seeds."""
from effgan.train.data_loading import ResumableSampler
from effgan.train.distributed import DistInfo


def _order(seed: int, epoch: int, rank: int = 0, world: int = 1, n: int = 64) -> list[int]:
    info = DistInfo(rank=rank, world_size=world, local_rank=rank)
    sampler = ResumableSampler(list(range(n)), info, seed=seed)
    sampler.set_position(epoch)
    return list(sampler)


def test_runs_with_neighbouring_seeds_do_not_share_epoch_orders():
    # A seed + epoch shuffle gave seed 1's first epoch the order of seed 0's second: two runs
    # meant to be independent trained on the same sequences of batches, one epoch apart.
    for seed in range(3):
        for later in range(1, 4):
            assert _order(seed + later, 0) != _order(seed, later)


def test_the_order_is_a_permutation_that_repeats_for_the_same_seed_and_epoch():
    order = _order(7, 3)
    assert sorted(order) == list(range(64))
    assert order == _order(7, 3)
    assert order != _order(7, 4)
    assert order != list(range(64))


def test_ranks_split_one_permutation_without_overlap():
    shards = [_order(5, 2, rank=r, world=3, n=65) for r in range(3)]
    seen = [i for shard in shards for i in shard]
    assert len(seen) == len(set(seen)) == 3 * (65 // 3)
    assert all(len(s) == 65 // 3 for s in shards)


def test_skipping_resumes_inside_the_same_order():
    info = DistInfo()
    sampler = ResumableSampler(list(range(20)), info, seed=3)
    sampler.set_position(2, skip_samples=6)
    assert list(sampler) == _order(3, 2, n=20)[6:]
    assert len(sampler) == 14
