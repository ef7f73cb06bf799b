"""The official noise-level lists ``fg_ratios_<level>.txt``, indexed compactly.

The official pipeline (arXiv:2403.12003, Sec. 3.2) split its images by noise level into one
list per level, each line ``<image path> <value>``. The level is in the file name; the value is
that level again (what the official splitting tool writes) or, in a list made before the split,
the foreground ratio. Image paths may be relative to the ImageNet train folder, absolute, or
carry any other prefix: they are matched to source images by trailing path.

A list line costs about 35 bytes here (NumPy arrays per folder, no Python object per line).
"""
import math
import os.path as osp
import posixpath
import re
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ...structures.manifest import MAX_NOISE_LEVEL

CONFLICT = -2  # the same image listed with different values


class LevelEntry(NamedTuple):
    level: Optional[int]  # None if the lists disagree about this image
    fg_ratio: Optional[float]
    conflict: bool


def level_from_filename(path: str) -> int:
    """Noise level named by a list file: the number after ``fg_ratios_`` (``fg_ratios_200.txt``,
    ``fg_ratios_200 (1).txt``), else the one number in its name.

    Raises:
        ValueError: no number in the name, several without ``fg_ratios_``, or a level outside
            0..999.
    """
    name = osp.splitext(osp.basename(path))[0]
    numbers = re.findall(r'\d+', name)
    named = re.search(r'fg_ratios_(\d+)', name)
    if named is None and len(numbers) != 1:
        raise ValueError(f'Cannot tell the noise level from the list name {path!r} '
                         f'({"no number" if not numbers else "numbers " + ", ".join(numbers)}): '
                         'the lists are named fg_ratios_<level>.txt (one per level, e.g. '
                         'fg_ratios_100.txt); rename it after the level its images were '
                         'generated with. The unsplit fg_ratios.txt of the official '
                         'calculate_fgratio.py holds every level: split it first with the '
                         "official tools/clip_pca/generate_ada_noise_level.py, and pass the "
                         'lists it writes.')
    level = int(named.group(1) if named else numbers[0])
    if level > MAX_NOISE_LEVEL:
        raise ValueError(f'{path!r} names noise level {level}, outside 0..{MAX_NOISE_LEVEL}.')
    return level


def ratio_from_value(value: str, level: int) -> Optional[float]:
    """The foreground ratio a list's second column gives (None when it repeats the level,
    written as a whole number: ``0`` in ``fg_ratios_0.txt``, whereas ``0.0`` is a ratio).

    Raises:
        ValueError: a value that is neither the level nor a ratio in [0, 1].
    """
    v = float(value)
    if v == level and (value.strip().lstrip('+').isdigit() or not 0.0 <= v <= 1.0):
        return None  # the level itself (a whole number; 0.0 in fg_ratios_0.txt is a ratio)
    if math.isfinite(v) and 0.0 <= v <= 1.0:
        return v
    raise ValueError(f'second column {value!r} is neither the noise level {level} (from the '
                     'file name) nor a foreground ratio in [0, 1]')


def split_list_path(path: str) -> Tuple[str, str]:
    """(folder, stem) of a listed image path, '/'-separated: ``'./a\\\\b/x.JPEG'`` ->
    ``('a/b', 'x')``."""
    path = posixpath.normpath(path.replace('\\', '/'))
    folder, _, name = path.rpartition('/')
    return ('' if folder == '.' else folder), osp.splitext(name)[0]


class _Table(NamedTuple):
    names: np.ndarray  # sorted utf-8 stems ('S' dtype)
    levels: np.ndarray  # int16, CONFLICT where the lists disagree
    ratios: np.ndarray  # float64, NaN if unknown
    used: np.ndarray  # bool, set when an imported view took the entry


def _encode(stem: str) -> bytes:
    return stem.encode('utf-8', 'surrogateescape')


def _table(chunks: List[Tuple[np.ndarray, np.ndarray, np.ndarray]]) -> Tuple[_Table, int, int]:
    """One folder's entries sorted by stem, duplicates merged; (table, duplicates, conflicts)."""
    names = np.concatenate([c[0] for c in chunks])
    levels = np.concatenate([c[1] for c in chunks])
    ratios = np.concatenate([c[2] for c in chunks])
    order = np.argsort(names, kind='stable')
    names, levels, ratios = names[order], levels[order], ratios[order]
    new = np.r_[True, names[1:] != names[:-1]]
    run = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    r0 = ratios[starts][run]
    same_ratio = (ratios == r0) | (np.isnan(ratios) & np.isnan(r0))
    differs = (levels != levels[starts][run]) | ~same_ratio
    conflict = np.bincount(run, weights=differs, minlength=len(starts)) > 0
    levels, ratios = levels[starts], ratios[starts]
    levels[conflict] = CONFLICT
    ratios[conflict] = np.nan
    table = _Table(names[starts], levels, ratios, np.zeros(len(starts), bool))
    return table, len(names) - len(starts), int(conflict.sum())


class NoiseLevelLists:
    """Noise levels (and ratios, where given) of images, from ``fg_ratios_<level>.txt`` lists.

    Args:
        paths (Sequence[str]): the list files.
        chunk (int): lines parsed into Python objects before they are packed into arrays.
            Defaults to 65536.

    Raises:
        FileNotFoundError: a list does not exist.
        ValueError: a list name without a level, or a malformed line (names file and line).
    """

    def __init__(self, paths: Sequence[str], chunk: int = 65536) -> None:
        self.paths = list(paths)
        self.num_entries = 0
        chunks: Dict[str, List[tuple]] = {}
        buffer: Dict[str, Tuple[list, list, list]] = {}
        pending = 0
        for path in self.paths:
            if not osp.isfile(path):
                raise FileNotFoundError(f'Noise-level list not found: {path!r}')
            level = level_from_filename(path)
            with open(path, encoding='utf-8-sig', errors='surrogateescape') as f:
                for lineno, line in enumerate(f, 1):
                    parts = line.rstrip('\r\n').rsplit(None, 1)
                    if not parts:
                        continue
                    try:
                        if len(parts) != 2:
                            raise ValueError('expected "<image path> <value>"')
                        ratio = ratio_from_value(parts[1], level)
                    except ValueError as exc:
                        raise ValueError(f'{path}:{lineno}: {exc}: {line.strip()!r}') from None
                    folder, stem = split_list_path(parts[0].strip())
                    names, levels, ratios = buffer.setdefault(folder, ([], [], []))
                    names.append(_encode(stem))
                    levels.append(level)
                    ratios.append(math.nan if ratio is None else ratio)
                    pending += 1
                    if pending >= chunk:
                        self._flush(buffer, chunks)
                        pending = 0
        self._flush(buffer, chunks)
        self.tables: Dict[str, _Table] = {}
        self.num_duplicates = self.num_conflicts = 0
        for folder in sorted(chunks):
            table, dups, conflicts = _table(chunks.pop(folder))
            self.tables[folder] = table
            self.num_entries += len(table.names) + dups
            self.num_duplicates += dups
            self.num_conflicts += conflicts
        self._by_last: Dict[str, List[str]] = {}
        for folder in self.tables:
            self._by_last.setdefault(folder.rpartition('/')[2], []).append(folder)

    @staticmethod
    def _flush(buffer: Dict[str, Tuple[list, list, list]], chunks: Dict[str, list]) -> None:
        for folder, (names, levels, ratios) in buffer.items():
            chunks.setdefault(folder, []).append(
                (np.array(names, dtype=np.bytes_), np.array(levels, np.int16),
                 np.array(ratios, np.float64)))
        buffer.clear()

    def folders_for(self, rel: str) -> List[List[str]]:
        """List folders whose images may be those of source folder ``rel``, grouped by how many
        trailing path components they share with it, most first: for ``train/n01``,
        ``[['/data/train/n01', 'train/n01'], ['/ssd/img_train/n01', 'n01'], ['']]`` (the groups
        that exist; any prefix before the shared components, whatever ``rel``'s depth)."""
        parts = rel.split('/') if rel else []
        named, seen, groups = self._by_last.get(parts[-1], []) if parts else [], set(), []
        for k in range(len(parts)):
            tail = '/'.join(parts[k:])
            groups.append([f for f in named if f not in seen and (f == tail or
                                                                  f.endswith('/' + tail))])
            seen.update(groups[-1])
        groups.append([''] if '' in self.tables or parts else list(self.tables))
        return [[f for f in g if f in self.tables] for g in groups
                if any(f in self.tables for f in g)]

    def lookup(self, rel: str, stems: Sequence[str]) -> List[Optional[LevelEntry]]:
        """Entries of the images ``rel/<stem>.*`` (None where not listed); marks them used.

        An image takes the entry of the list folder that shares the most trailing components
        with ``rel``; two such folders that disagree make it a conflict (level None).
        """
        out: List[Optional[LevelEntry]] = [None] * len(stems)
        if not stems:
            return out
        keys = np.array([_encode(s) for s in stems], dtype=np.bytes_)
        for group in self.folders_for(rel):
            found: Dict[int, LevelEntry] = {}
            for folder in group:
                for i, entry in self._find(self.tables[folder], keys, out):
                    old = found.get(i)
                    found[i] = entry if old is None or old == entry else \
                        LevelEntry(None, None, True)  # two list folders disagree
            for i, entry in found.items():
                out[i] = entry
        return out

    @staticmethod
    def _find(table: _Table, keys: np.ndarray,
              done: List[Optional[LevelEntry]]) -> Iterator[Tuple[int, LevelEntry]]:
        """(index in ``keys``, entry) of the keys listed in ``table`` and not ``done``."""
        idx = np.minimum(np.searchsorted(table.names, keys), len(table.names) - 1)
        for i in np.flatnonzero(table.names[idx] == keys):
            if done[i] is not None:
                continue
            j = idx[i]
            table.used[j] = True
            level, ratio = int(table.levels[j]), float(table.ratios[j])
            yield int(i), LevelEntry(None if level == CONFLICT else level,
                                     None if math.isnan(ratio) else ratio, level == CONFLICT)

    def unused(self, limit: int = 5) -> Tuple[int, List[str]]:
        """(number of list entries no imported view took, up to ``limit`` of them)."""
        count, examples = 0, []
        for folder, table in self.tables.items():
            idx = np.flatnonzero(~table.used)
            count += len(idx)
            for j in idx[:max(0, limit - len(examples))]:
                stem = table.names[j].decode('utf-8', 'surrogateescape')
                examples.append(f'{folder}/{stem}' if folder else stem)
        return count, examples
