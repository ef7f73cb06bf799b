"""Class-balanced ImageNet subsets for semi-supervised fine-tuning (1% / 10% labels).

Subset lists are written in MMPretrain's ``ann_file`` format: one ``relative/path.JPEG label``
line per image (e.g. ``n01440764/n01440764_10026.JPEG 0``), relative to the dataset's
``data_prefix`` (``train``). Two sources:

* :func:`balanced_subset` -- draw the same number of images from every class of a full train list,
  with a seed (same seed, same list);
* :func:`simclr_subset` -- the standard SimCLR subset files (``1percent.txt`` / ``10percent.txt``:
  one file name such as ``n01440764_10026.JPEG`` per line), resolved against the train list (or,
  without one, against the sorted synset ids, which is ImageNet's label order).
"""
import os.path as osp
import random
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

from genview_mm.utils.annotation_list import read_annotation_list
from genview_mm.utils.atomic_write import atomic_write

Entry = Tuple[str, int]


def read_ann_file(path: str) -> List[Entry]:
    """Read ``path label`` lines (blank lines ignored); every line must have a label, and no
    image may be listed twice (a subset drawn from it would hold repeats)."""
    entries, seen, repeated = [], set(), []
    for name, label in read_annotation_list(path):
        if label is None:
            raise ValueError(f'{path}: expected "relative/path.JPEG label" lines, got '
                             f'{name!r} without a label')
        if name in seen:
            repeated.append(name)
        seen.add(name)
        entries.append((name, label))
    if repeated:
        raise ValueError(f'{path}: {len(repeated)} images are listed more than once (e.g. '
                         f'{repeated[0]!r}): remove the repeated lines (two lists '
                         'concatenated?); a subset drawn from it would hold repeats')
    return entries


def ann_text(entries: Sequence[Entry]) -> str:
    """The text :func:`write_ann_file` writes: one ``path label`` line per entry."""
    return ''.join(f'{p} {label}\n' for p, label in entries)


def write_ann_file(entries: Sequence[Entry], path: str) -> None:
    """Write ``path label`` lines (through a temporary file: never a half-written list)."""
    with atomic_write(path, newline='\n') as f:
        f.write(ann_text(entries))


def per_class_count(num_images: int, num_classes: int, fraction: float) -> int:
    """Images per class for a balanced subset holding ``fraction`` of ``num_images`` (>= 1)."""
    if not 0 < fraction <= 1:
        raise ValueError(f'fraction must be in (0, 1], got {fraction}')
    return max(1, round(fraction * num_images / num_classes))


def balanced_subset(entries: Sequence[Entry], fraction: Optional[float] = None,
                    num_per_class: Optional[int] = None, seed: int = 0) -> List[Entry]:
    """Draw the same number of images from every class.

    Args:
        entries: the full train list.
        fraction: share of the whole list to keep (0.01 for 1%), turned into a per-class count by
            :func:`per_class_count`. Give this or ``num_per_class``.
        num_per_class: images to keep per class.
        seed: random seed; the result depends only on (entries as a set, seed, count).

    Returns:
        List[Entry]: the subset, sorted by label then path.
    """
    if (fraction is None) == (num_per_class is None):
        raise ValueError('give exactly one of fraction and num_per_class')
    if num_per_class is not None and num_per_class < 1:
        raise ValueError(f'num_per_class must be at least 1, got {num_per_class}')
    by_class: Dict[int, List[str]] = defaultdict(list)
    for path, label in entries:
        by_class[label].append(path)
    if not by_class:
        raise ValueError('the train list is empty')
    count = num_per_class if num_per_class is not None else per_class_count(
        len(entries), len(by_class), fraction)
    short = {c: len(p) for c, p in by_class.items() if len(p) < count}
    if short:
        raise ValueError(f'{len(short)} class(es) have fewer than {count} images '
                         f'(e.g. {dict(list(short.items())[:3])}); lower the fraction/count.')
    subset = []
    for label in sorted(by_class):
        rng = random.Random(f'{seed}-{label}')  # per-class stream: independent of class order
        subset += [(p, label) for p in sorted(rng.sample(sorted(by_class[label]), count))]
    return subset


def read_simclr_names(path: str) -> List[str]:
    """Read a SimCLR subset file (one ``nXXXXXXXX_NNN.JPEG`` per line).

    Raises:
        ValueError: the file is not UTF-8 text, holds no name, a line is not one file name
            of that form (a train list given by mistake, ``path label``), or a name repeats.
    """
    try:
        with open(path, encoding='utf-8-sig') as f:
            names = [osp.basename(line.strip()) for line in f if line.strip()]
    except UnicodeDecodeError as exc:
        raise ValueError(f'{path}: not a SimCLR subset file (not UTF-8 text: {exc.reason} at '
                         f'byte {exc.start})') from None
    if not names:
        raise ValueError(f'{path}: no image names in it (a SimCLR subset file holds one name '
                         'like n01440764_10026.JPEG per line)')
    bad = [n for n in names if '_' not in n or len(n.split()) != 1]
    if bad:
        raise ValueError(f'{path}: not a SimCLR subset file (expected names like '
                         f'n01440764_10026.JPEG, one per line), got e.g. {bad[:3]}')
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise ValueError(f'{path}: {len(repeated)} names are listed more than once (e.g. '
                         f'{repeated[0]!r}): remove the repeated lines (two files '
                         'concatenated?); the subset would hold those images twice')
    return names


def simclr_subset(names: Sequence[str], train_entries: Optional[Sequence[Entry]] = None,
                  num_classes: int = 1000) -> List[Entry]:
    """Resolve SimCLR subset file names into ``(relative path, label)`` entries.

    With ``train_entries`` each name is looked up by base name (the train list decides the path
    and label). Without it the path is ``<wnid>/<name>`` and the label is the index of the wnid
    among the sorted wnids of ``names``: ImageNet's labels only when all ``num_classes``
    classes are present (as in both SimCLR files), so fewer or more are refused.
    """
    if train_entries is not None:
        lookup = {osp.basename(p): (p, label) for p, label in train_entries}
        missing = [n for n in names if n not in lookup]
        if missing:
            raise ValueError(f'{len(missing)} subset image(s) are not in the train list, e.g. '
                             f'{missing[:3]}; is it the ImageNet-1k train list?')
        return [lookup[n] for n in names]
    wnids = sorted({n.split('_', 1)[0] for n in names})
    if len(wnids) != num_classes:  # the labels would be ranks among these classes only
        raise ValueError(f'the subset names {len(wnids)} classes, not {num_classes}: without a '
                         'train list its labels would not be ImageNet\'s; pass --train-list '
                         '(the ImageNet-1k train list decides paths and labels)')
    index = {w: i for i, w in enumerate(wnids)}
    return [(f'{n.split("_", 1)[0]}/{n}', index[n.split('_', 1)[0]]) for n in names]
