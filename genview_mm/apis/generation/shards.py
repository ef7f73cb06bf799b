"""Fixed shards, their records and locks, the views' names and the merge (datatrove's executor
model). Shard ``s`` holds the sorted images ``s*shard_size ..`` whatever the worker count; worker
``rank`` of ``world_size`` takes the shards ``s % world_size == rank``. Under ``OUT/shards/``:
``shard-SSSSS.jsonl`` (the record, written atomically: the shard is done), ``.journal`` (rows
of the shard in progress), ``.lock`` (the flock of its one live writer, dropped by the kernel
however it exits), ``.tmp/`` (views being encoded, cleared by the shard's next run).
"""
import glob
import hashlib
import os.path as osp
import posixpath
from dataclasses import replace
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ...structures import manifest
from ...utils.file_lock import FileLock
from ...utils.image_files import image_file_ok
from . import SetupError, UsageError

SHARDS_DIR, IMAGES_DIR = 'shards', 'images'
# the fields that say which view a row describes: two ok rows of one image differing here conflict
# (not ``generator``, the model path as typed: the settings record holds the weights' fingerprint)
_IDENTITY = ('source', 'output', 'seed', 'noise_level')


def shard_count(num_items: int, shard_size: int) -> int:
    return -(-num_items // shard_size)


def my_shards(num_shards: int, rank: int, world_size: int) -> List[int]:
    """The shards worker ``rank`` of ``world_size`` takes."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f'need 0 <= rank < world_size, got rank {rank} of {world_size}')
    return list(range(rank, num_shards, world_size))


def shard_path(out_dir: str, shard: int, kind: str = 'jsonl') -> str:
    """``OUT/shards/shard-<shard>.<kind>`` (kind: 'jsonl' record, 'journal', 'lock', 'tmp')."""
    return osp.join(out_dir, SHARDS_DIR, f'shard-{shard:05d}.{kind}')


def row_files(out_dir: str) -> List[str]:
    """The records and journals under ``out_dir``, oldest first (a later row is newer). The
    journals are listed first: a shard finishing meanwhile (record written, then journal
    removed) is then listed by one of them (:func:`read_row_files` reads a vanished journal's
    record)."""
    files = [f for kind in ('journal', 'jsonl')
             for f in glob.glob(osp.join(out_dir, SHARDS_DIR, f'shard-*.{kind}'))]
    return sorted(files, key=lambda p: (_mtime(p), p.endswith('.journal'), p))


def _mtime(path: str) -> float:
    try:
        return osp.getmtime(path)
    except FileNotFoundError:  # a journal whose shard just finished: its record is newest
        return float('inf')


def read_row_files(paths: Sequence[str]) -> Iterator[manifest.ManifestRow]:
    """The rows of these files; a listed journal gone by now is read as its shard's record
    (written before the journal is removed), a missing record is skipped."""
    for path in paths:
        journal = path.endswith('.journal')
        for one in [path] + ([path[:-len('journal')] + 'jsonl'] if journal else []):
            try:  # one shard's rows (a journal's last line may be cut short by a kill)
                rows = list(manifest.read_rows(one, journal=one == path and journal))
            except FileNotFoundError:  # gone since it was listed
                continue
            yield from rows
            break


def recorded_rows(paths: Sequence[str]) -> Dict[tuple, manifest.ManifestRow]:
    """The newest row of every (key, variation) in these files (missing ones skipped); a
    damaged line other than a last one, or a file that cannot be read, is a SetupError naming
    the file and the way out."""
    try:
        return manifest.newest_rows(read_row_files(paths))
    except OSError as exc:  # another user's record, a disk error (else a traceback, or in a
        raise SetupError(f'cannot read {exc.filename} ({exc.strerror}): fix its permissions '
                         'or its disk, or delete it (its shard is redone)') from None  # lock
    except ValueError as exc:  # (a cut record: its own fix, not 'copy it again')
        said = getattr(exc, 'what', exc)
        raise SetupError(f'{said}: delete that file (its shard is redone) and rerun') from None


def plan_images(items: Sequence, recorded: Dict[tuple, manifest.ManifestRow],
                num_variations: int, out_dir: str, retry_failed: bool = False,
                file_ok: Callable[[str], bool] = image_file_ok) -> Tuple[list, Dict[str, int]]:
    """The images still to generate: a variation without a row (counted ``new``), else an ok
    row whose output is lost (``redone``, by ``file_ok``), else a failure worth retrying
    (``retried``); the others are ``skipped``."""
    counts, todo = dict(skipped=0, new=0, redone=0, retried=0), []
    for item in items:
        rows = [recorded.get((item.key, v)) for v in range(num_variations)]
        if None in rows:
            state = 'new'
        elif any(r.ok and not (r.output and file_ok(osp.join(out_dir, r.output)))
                 for r in rows):
            state = 'redone'
        elif any(not r.ok and manifest.should_retry(r.reason, retry_failed) for r in rows):
            state = 'retried'
        else:
            state = 'skipped'
        counts[state] += 1
        todo += [item] if state != 'skipped' else []
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


def output_relpath(key: str, variation: int, num_variations: int, ext: str) -> str:
    """``images/<key folder>/<key stem>-<8 hex of sha1(key)>[_v<k>]<ext>``: distinct for keys
    that differ only in extension or case; a stem cut to fit 255 bytes (whole characters)."""
    folder, name = osp.split(key)
    tag = hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]
    end = f'-{tag}{"_v%d" % variation if num_variations > 1 else ""}{ext}'
    stem = osp.splitext(name)[0].encode('utf-8')[:255 - len(end.encode('utf-8'))]
    return '/'.join(p for p in (IMAGES_DIR, folder,
                                stem.decode('utf-8', 'ignore') + end) if p)


def check_unique_outputs(keys: Iterable[str], num_variations: int, ext: str) -> None:
    """UsageError if two keys would write one file on a case-insensitive disk."""
    seen: Dict[str, str] = {}
    for key in keys:
        folded = output_relpath(key, 0, num_variations, ext).casefold()
        if seen.setdefault(folded, key) != key:
            raise UsageError(f'sources {seen[folded]!r} and {key!r} would share the output '
                             f'file {folded!r}: rename one of them')


def merge_manifests(out_dir: str, items: Optional[Sequence] = None,
                    num_variations: Optional[int] = None, check_files: bool = False,
                    out: Optional[str] = None) -> Dict:
    """Merge the records and journals under ``out_dir`` into ``out`` (default
    ``OUT/manifest.jsonl``; elsewhere, the outputs relative to its folder): the newest row of
    each (key, variation), sorted by key; idempotent. Returns ``path, files, rows, ok, failed,
    duplicates`` (repeats dropped), ``conflicts`` (keys with two different ok rows),
    ``missing`` (of ``items``, with ``num_variations`` or the most seen), ``missing_files``
    (``check_files``: ok rows without a good output)."""
    files = row_files(out_dir)
    if not files:
        raise FileNotFoundError(f'no shard records under {osp.join(out_dir, SHARDS_DIR)!r}: '
                                'run tools/generate_views.py with this --out-dir first')
    try:
        raw = list(read_row_files(files))
    except ValueError as exc:
        said = getattr(exc, 'what', exc)  # (a cut record: this fix, not 'copy it again')
        raise ValueError(f'{said}: delete that file (tools/generate_views.py redoes its shard) '
                         'and merge again') from None
    best = manifest.newest_rows(raw)
    conflicts = sorted({f'{r.key}#{r.variation}' for r in raw if r.ok and best[r.id].ok and
                        any(getattr(r, f) != getattr(best[r.id], f) for f in _IDENTITY)})
    out = out or osp.join(out_dir, manifest.MERGED_NAME)
    root = osp.realpath(osp.dirname(osp.abspath(out)))  # real folders, as the reader's
    up = osp.relpath(osp.realpath(out_dir), root).replace(osp.sep, '/')  # outputs follow out
    rows = [replace(r, output=posixpath.normpath(f'{up}/{r.output}')) if r.output else r
            for r in (best[k] for k in sorted(best))]
    manifest.write_manifest(out, rows)
    nvar = num_variations if num_variations is not None else \
        1 + max((int(r.variation) for r in rows), default=0)
    return dict(path=out, files=len(files), rows=len(rows), ok=sum(r.ok for r in rows),
                failed=sum(not r.ok for r in rows), duplicates=len(raw) - len(rows),
                conflicts=conflicts,
                missing=[f'{it.key}#{v}' for it in sorted(items or [], key=lambda i: i.key)
                         for v in range(nvar) if (it.key, v) not in best],
                missing_files=[r.output for r in rows if check_files and r.ok and
                               not image_file_ok(osp.normpath(osp.join(root, r.output)))])
