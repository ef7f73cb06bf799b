"""Fixed shards, their records and locks, and the merge (datatrove's executor model).

Shard ``s`` holds sorted images ``s*shard_size ..`` whatever the worker count; worker ``rank``
of ``world_size`` takes the shards ``s % world_size == rank``. Under ``OUT/shards/``:
``shard-SSSSS.jsonl`` (the record, written atomically: the shard is done),
``shard-SSSSS.journal`` (rows of the shard in progress, written out after each pipeline call)
and ``shard-SSSSS.lock`` (the flock of its one live writer, dropped by the kernel however the
holder exits). :func:`merge_manifests` turns the records into ``OUT/manifest.jsonl``.
"""
import glob
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from ...structures.manifest import (
    MERGED_NAME,
    ManifestRow,
    RowMatcher,
    newest_rows,
    read_rows,
    should_retry,
    write_manifest,
)
from ...utils.file_lock import FileLock
from ...utils.image_files import image_file_ok

logger = logging.getLogger(__name__)
SHARDS_DIR = 'shards'
# fields that say which view a row describes: two ok rows of one image differing here conflict
_IDENTITY = ('source', 'output', 'seed', 'noise_level', 'generator')


def shard_count(num_items: int, shard_size: int) -> int:
    return -(-num_items // shard_size)


def my_shards(num_shards: int, rank: int, world_size: int) -> List[int]:
    """The shards worker ``rank`` of ``world_size`` takes."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f'need 0 <= rank < world_size, got rank {rank} of {world_size}')
    return list(range(rank, num_shards, world_size))


def shard_path(out_dir: str, shard: int, kind: str = 'jsonl') -> str:
    """``OUT/shards/shard-<shard>.<kind>`` (kind: 'jsonl' record, 'journal', 'lock')."""
    return osp.join(out_dir, SHARDS_DIR, f'shard-{shard:05d}.{kind}')


def row_files(out_dir: str) -> List[str]:
    """Every record and journal under ``out_dir``, oldest first (last write, then name): a
    later row of an image is a newer one."""
    files = glob.glob(osp.join(out_dir, SHARDS_DIR, 'shard-*.jsonl')) + \
        glob.glob(osp.join(out_dir, SHARDS_DIR, 'shard-*.journal'))
    return sorted(files, key=lambda p: (osp.getmtime(p), p.endswith('.journal'), p))


def recorded_rows(paths: Sequence[str]) -> Dict[tuple, ManifestRow]:
    """The newest row of every (key, variation) in these files (missing ones skipped)."""
    return newest_rows(r for p in paths if osp.isfile(p) for r in read_rows(p))


def plan_images(items: Sequence, recorded: Dict[tuple, ManifestRow], num_variations: int,
                out_dir: str, retry_failed: bool = False,
                verify: bool = False) -> Tuple[list, Dict[str, int]]:
    """The images still to generate: those with a variation without a row (counted ``new``),
    with an ok row whose output is lost (``redone``) or a failure worth retrying
    (``retried``); the others are ``skipped``."""
    counts = dict(skipped=0, new=0, redone=0, retried=0)
    todo = []
    for item in items:
        states = set()
        for row in (recorded.get((item.key, v)) for v in range(num_variations)):
            if row is None:
                states.add('new')
            elif row.ok and not (row.output and image_file_ok(osp.join(out_dir, row.output),
                                                          verify)):
                states.add('redone')
            elif not row.ok and should_retry(row.reason, retry_failed):
                states.add('retried')
        name = next((n for n in ('new', 'redone', 'retried') if n in states), 'skipped')
        counts[name] += 1
        if states:
            todo.append(item)
    return todo, counts


def is_complete(out_dir: str, num_shards: int) -> bool:
    """Whether every shard has its record and none is in progress (no journal)."""
    return all(osp.isfile(shard_path(out_dir, s)) and
               not osp.exists(shard_path(out_dir, s, 'journal')) for s in range(num_shards))


def shard_lock(out_dir: str, shard: int, wait: float = 0.0) -> FileLock:
    """The lock of a shard's one live writer (``ShardLocked`` for a second one)."""
    return FileLock(shard_path(out_dir, shard, 'lock'), wait, what=f'shard {shard} of {out_dir}',
                    advice='Two writers of one shard would redo the same images: wait for it '
                    'to finish or stop it (an overlapping Slurm requeue: pass --lock-wait '
                    'SECONDS).')


def merge_manifests(out_dir: str, items: Optional[Sequence] = None,
                    num_variations: Optional[int] = None, check_files: bool = False,
                    out: Optional[str] = None) -> Dict:
    """Write one row per (key, variation) of the records and journals under ``out_dir`` to
    ``out`` (default ``OUT/manifest.jsonl``), sorted by key; an ok row beats a failed one, a
    newer row an older one. Idempotent.

    Returns:
        dict: ``path, files, rows, ok, failed, duplicates`` (repeats dropped), ``conflicts``
        (keys with two different ok rows), ``missing`` (of ``items``, with ``num_variations``
        or the most seen), ``missing_files`` (``check_files``: ok rows without a good output).
    """
    files = row_files(out_dir)
    if not files:
        raise FileNotFoundError(f'no shard records under {osp.join(out_dir, SHARDS_DIR)!r}: '
                                'run tools/generate_views.py with this --out-dir first')
    raw = [row for path in files for row in read_rows(path)]
    best = newest_rows(raw)
    conflicts = sorted({f'{r.key}#{r.variation}' for r in raw if r.ok and best[r.id].ok and
                        any(getattr(r, f) != getattr(best[r.id], f) for f in _IDENTITY)})
    rows = [best[k] for k in sorted(best)]
    out = out or osp.join(out_dir, MERGED_NAME)
    write_manifest(out, rows)
    report = dict(path=out, files=len(files), rows=len(rows), ok=sum(r.ok for r in rows),
                  failed=sum(not r.ok for r in rows), duplicates=len(raw) - len(rows),
                  conflicts=conflicts, missing=[], missing_files=[])
    if items is not None:
        nvar = num_variations or (1 + max((int(r.variation) for r in rows), default=0))
        matcher = RowMatcher()
        for row in rows:
            matcher.add(row)
        report['missing'] = [f'{it.key}#{v}' for it in sorted(items, key=lambda i: i.key)
                             for v in range(nvar)
                             if matcher.match(it.path) is None or (it.key, v) not in best]
    if check_files:
        root = osp.dirname(osp.abspath(out))
        report['missing_files'] = [r.output for r in rows
                                   if r.ok and not image_file_ok(osp.join(root, r.output))]
    return report
