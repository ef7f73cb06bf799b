"""A seeded bottom-k reservoir: a uniform sample of k items from a stream of unknown length.

Every item gets a 64-bit key from a keyed hash of ``(seed, item)``; the reservoir keeps the k
items with the smallest keys. That is reservoir sampling with random priorities (Efraimidis and
Spirakis' A-Res with equal weights): each k-subset of distinct items is equally likely, memory
is O(k), time O(n log k). Unlike Algorithm R or L, whose result depends on the order the items
arrive in, the sample depends only on the seed and the *set* of items, so a folder walked in
another order (another file system, a copy, a list in another order) gives the same sample; and
the items come out ranked, so one excluded afterwards is replaced by the next in rank without a
second pass over the source.

Each kept item costs one Python string (its inverted key in 16 hex digits, then the item) in a
heap list: about 65 + len(item) bytes + 8 for the list slot, ~135 bytes for a 60-character path.
"""
import hashlib
import heapq
from typing import List

_KEY_MAX = (1 << 64) - 1
_HEX = 16


def check_seed(seed: int, name: str = 'the seed') -> None:
    """Raise ValueError naming ``name`` unless ``str(seed)`` can key BLAKE2b (64 bytes at most)."""
    if len(str(seed)) > 64:
        raise ValueError(f'{name} may have at most 64 characters, got {len(str(seed))}')


def item_key(item: str, seed: int) -> int:
    """The item's 64-bit priority: a keyed BLAKE2b of the item, keyed by the seed."""
    digest = hashlib.blake2b(item.encode('utf-8'), digest_size=8,
                             key=str(seed).encode('ascii')).digest()
    return int.from_bytes(digest, 'big')


class KeyedReservoir:
    """The ``capacity`` items of smallest :func:`item_key` seen so far.

    Args:
        capacity (int): how many items to keep (>= 1).
        seed (int): the sampling seed. Defaults to 0.
    """

    def __init__(self, capacity: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f'capacity must be at least 1, got {capacity}')
        check_seed(seed)
        self.capacity, self.seed = capacity, seed
        self.offered = 0
        self.duplicates = 0
        # min-heap of f'{KEY_MAX - key:016x}{item}': its root is the kept item of largest key
        self._heap: List[str] = []

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def overflowed(self) -> bool:
        """Whether items were offered that the reservoir could not keep."""
        return self.offered > len(self._heap)

    def offer(self, item: str) -> None:
        """Keep ``item`` if its key is among the ``capacity`` smallest seen."""
        self.offered += 1
        entry = f'{_KEY_MAX - item_key(item, self.seed):0{_HEX}x}{item}'
        if len(self._heap) < self.capacity:
            heapq.heappush(self._heap, entry)
        elif entry > self._heap[0]:  # a larger inverted key is a smaller key
            heapq.heapreplace(self._heap, entry)

    def to_json(self) -> dict:
        """What :meth:`from_json` restores: the kept items with their keys, the count offered."""
        return dict(capacity=self.capacity, seed=self.seed, offered=self.offered,
                    heap=self._heap)

    @classmethod
    def from_json(cls, state: dict) -> 'KeyedReservoir':
        reservoir = cls(state['capacity'], state['seed'])
        reservoir.offered, reservoir._heap = state['offered'], list(state['heap'])
        heapq.heapify(reservoir._heap)  # already a heap when saved: linear, and safe
        return reservoir

    def ranked(self) -> List[str]:
        """The kept items, smallest key first, each once (an item offered twice was kept twice;
        :attr:`duplicates` counts the copies dropped); empties the reservoir. The list is the
        heap's own, sorted and stripped of its keys in place: no second copy of the items."""
        items, self._heap = self._heap, []
        items.sort(reverse=True)
        kept = 0
        for entry in items:
            if kept and entry[_HEX:] == items[kept - 1]:
                continue  # the same item again (equal entries sort next to each other)
            items[kept] = entry[_HEX:]
            kept += 1
        self.duplicates = len(items) - kept
        del items[kept:]
        return items
