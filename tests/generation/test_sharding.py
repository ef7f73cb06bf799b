"""Sharding the images over ranks: disjoint, complete and balanced shares; per-image seeds
that are pure and distinct."""
import pytest

from genview_mm.generation import image_seed, shard, shard_indices


def test_partition_disjoint_complete_balanced():
    for n in list(range(0, 40)) + [97, 1000, 1281]:
        for world in list(range(1, 12)) + [16, 64, 128, 1500]:
            shares = [shard_indices(n, r, world) for r in range(world)]
            flat = [i for s in shares for i in s]
            assert sorted(flat) == list(range(n)), (n, world)
            assert len(flat) == len(set(flat))
            sizes = [len(s) for s in shares]
            assert max(sizes) - min(sizes) <= 1
            if world > n:
                assert sum(1 for s in sizes if s == 0) == world - n


def test_shard_items_and_errors():
    assert shard(list('abcde'), 1, 2) == ['b', 'd']
    with pytest.raises(ValueError, match='rank must be in'):
        shard_indices(5, 2, 2)
    with pytest.raises(ValueError, match='world_size must be >= 1'):
        shard_indices(5, 0, 0)


def test_seed_is_pure_and_distinct():
    assert image_seed('n01/a.jpg', 0) == image_seed('n01/a.jpg', 0)
    seeds = {image_seed(f'img{i}', b, v) for i in range(50) for b in (0, 1) for v in (0, 1)}
    assert len(seeds) == 200
    assert all(0 <= s < 2 ** 63 for s in seeds)
