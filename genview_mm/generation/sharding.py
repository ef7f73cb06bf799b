"""Which items a rank processes: a pure, complete and disjoint partition.

Item ``i`` goes to rank ``i % world_size``, so for any world size (including more ranks than
items, where some ranks get nothing) every item belongs to exactly one rank and shares differ
in size by at most one.
"""
from typing import List, Sequence, TypeVar

T = TypeVar('T')


def shard_indices(num_items: int, rank: int, world_size: int) -> List[int]:
    """Indices of ``range(num_items)`` owned by ``rank`` out of ``world_size``."""
    if world_size < 1:
        raise ValueError(f'world_size must be >= 1, got {world_size}')
    if not 0 <= rank < world_size:
        raise ValueError(f'rank must be in [0, {world_size}), got {rank}')
    if num_items < 0:
        raise ValueError(f'num_items must be >= 0, got {num_items}')
    return list(range(rank, num_items, world_size))


def shard(items: Sequence[T], rank: int, world_size: int) -> List[T]:
    """The items owned by ``rank`` (see :func:`shard_indices`)."""
    return [items[i] for i in shard_indices(len(items), rank, world_size)]

