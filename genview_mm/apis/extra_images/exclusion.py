"""What of ImageNet-1K an extra image must not be: the file names and file contents of its train
folder and of its val folder (the baselines are evaluated on val, and an ImageNet-21K dump holds
its images under other names).

Names are kept as a sorted array of 64-bit hashes of the base names' stems, in any case and
with any extension (10 MB for 1.28M files,
against ~150 MB for a Python set of the names); a false match (probability ~n/2^64 per
candidate) only drops a candidate. Contents are compared by SHA-1 of the bytes, and only where a
match is possible: two files with the same SHA-1 have the same size, so a candidate is hashed
only when its size is the size of some ImageNet file, and an ImageNet file only when its size is
the size of some candidate that may be kept (:meth:`ImageNetIndex.digests_of_sizes`).
"""
import hashlib
import os.path as osp
from array import array
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar

import numpy as np

from .candidates import iter_image_entries

CHUNK = 1 << 20
T = TypeVar('T')
R = TypeVar('R')


def name_hash(name: str) -> int:
    """The 64-bit hash an ImageNet file name is kept as: of its stem, lower-cased, so a copy
    re-encoded or renamed by a dump (``n01440764_10026.jpg`` or ``.png`` for ``.JPEG``, whose
    bytes differ too) is still matched by its name."""
    key = osp.splitext(name)[0].lower()
    return int.from_bytes(hashlib.blake2b(key.encode('utf-8'), digest_size=8).digest(), 'big')


def file_sha1(path: str) -> bytes:
    """SHA-1 of a file's bytes (read in 1 MiB chunks)."""
    sha = hashlib.sha1()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(CHUNK), b''):
            sha.update(chunk)
    return sha.digest()


def bounded_map(fn: Callable[[T], R], items: Iterable[T], workers: int,
                window: int = 1024) -> Iterator[R]:
    """``map(fn, items)`` in order, on ``workers`` threads, holding at most ``window`` items
    (``ThreadPoolExecutor.map`` alone would queue the whole stream)."""
    items = iter(items)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        while True:
            batch: List[T] = list(islice(items, window))
            if not batch:
                return
            yield from pool.map(fn, batch)


def walk_images(root: str, with_size: bool) -> Iterator[Tuple[str, str, int]]:
    """(path, base name, size or -1) of the image files under ``root``
    (:func:`~.candidates.iter_image_entries`), and the names of links there to a missing file
    (size -1: a copy being restored, an unmounted share; a candidate of that name is still
    ImageNet's)."""
    for entry, _ in iter_image_entries(root, broken_links=True):
        size = entry.stat().st_size if with_size and entry.is_file() else -1
        yield entry.path, entry.name, size


class ImageNetIndex:
    """The names and file sizes of ImageNet-1K's folders, to exclude their images from an extra
    set.

    Args:
        name_hashes (np.ndarray): sorted unique uint64 :func:`name_hash` of the file names.
        sizes (np.ndarray | None): sorted unique int64 file sizes; None: names only.
        roots (Sequence[str]): the folders, for content hashes. Defaults to none.
    """

    def __init__(self, name_hashes: np.ndarray, sizes: Optional[np.ndarray] = None,
                 roots: Sequence[str] = ()) -> None:
        self.name_hashes, self.sizes, self.roots = name_hashes, sizes, list(roots)

    @classmethod
    def from_entries(cls, entries: Iterable[Tuple[str, int]],
                     roots: Sequence[str] = ()) -> 'ImageNetIndex':
        """From (file name, size) pairs (size -1: unknown; then no content check)."""
        names, sizes = array('Q'), array('q')
        for name, size in entries:
            names.append(name_hash(name))
            if size >= 0:
                sizes.append(size)
        return cls(np.unique(np.frombuffer(names, np.uint64)),
                   np.unique(np.frombuffer(sizes, np.int64)) if len(sizes) else None, roots)

    @classmethod
    def from_folders(cls, roots: Sequence[str], with_sizes: bool = True,
                     progress: Optional[Callable[[str], None]] = None) -> 'ImageNetIndex':
        """Walk ImageNet's folders (train/ and val/) once (one ``stat`` per file when
        ``with_sizes``); each must hold images. Links there to a missing file count their
        names; with ``with_sizes`` they are refused (ValueError): their bytes cannot be
        compared, so a copy of such an image under another name (val's, in ImageNet-21K)
        would be drawn while the record says the contents were checked."""
        for root in roots:
            if not osp.isdir(root):  # a file: an archive, or a list given for a folder
                there = osp.exists(root)
                raise (NotADirectoryError if there else FileNotFoundError)(
                    f'ImageNet folder {root} {"is a file, not a folder" if there else "not found"}'
                    ': give --imagenet TRAIN VAL (the train/ and val/ folders of ImageNet-1K, '
                    'unpacked)')

        unread: dict = {}  # root: (count, first path) of its links to a missing file

        def entries() -> Iterator[Tuple[str, int]]:
            for root in roots:
                found = 0
                for path, name, size in walk_images(root, with_sizes):
                    found += 1
                    if with_sizes and size < 0:
                        count, first = unread.get(root, (0, path))
                        unread[root] = (count + 1, min(first, path))  # any walk order
                    yield name, size
                if not found:
                    raise ValueError(f'no images found under {root}: give --imagenet the '
                                     'train/ and val/ folders of ImageNet-1K')
        index = cls.from_entries(entries(), roots if with_sizes else ())
        if unread:
            root, (count, first) = next(iter(unread.items()))
            raise ValueError(
                f'{sum(c for c, _ in unread.values())} ImageNet files are links to missing files '
                f'({count} under {root}, e.g. {first}): their bytes cannot be compared with the '
                'extra images; mount or restore them, or pass --names-only to exclude ImageNet '
                'by file name only')
        if progress:
            progress(f'ImageNet: {len(index.name_hashes):,} file names'
                     + (f', {len(index.sizes):,} distinct sizes' if with_sizes else '')
                     + f' under {", ".join(roots)}')
        return index

    @property
    def checks_content(self) -> bool:
        return self.sizes is not None and bool(self.roots)

    def has_name(self, name: str) -> bool:
        """Whether an ImageNet file has this base name (its stem, in any case)."""
        h = np.uint64(name_hash(name))
        i = int(np.searchsorted(self.name_hashes, h))
        return i < len(self.name_hashes) and self.name_hashes[i] == h

    def has_size(self, size: int) -> bool:
        """Whether an ImageNet file has this size in bytes."""
        i = int(np.searchsorted(self.sizes, size))
        return i < len(self.sizes) and int(self.sizes[i]) == size

    def digests_of_sizes(self, sizes: np.ndarray, workers: int = 8) -> np.ndarray:
        """Sorted SHA-1 digests (``S20``) of the ImageNet files whose size is in ``sizes``
        (a second walk of the folder; the files are hashed by ``workers`` threads)."""
        wanted = np.unique(np.asarray(sizes, np.int64))

        def matching() -> Iterator[str]:
            for path, _, size in (e for root in self.roots for e in walk_images(root, True)):
                i = int(np.searchsorted(wanted, size))
                if i < len(wanted) and int(wanted[i]) == size:
                    yield path

        digests = bytearray()
        for digest in bounded_map(file_sha1, matching(), workers):
            digests += digest
        return np.unique(np.frombuffer(bytes(digests), dtype='S20'))
