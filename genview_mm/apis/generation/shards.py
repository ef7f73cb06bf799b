"""Fixed shards and their records (datatrove's executor model).

The sorted source list is cut into shards of ``shard_size`` images; shard ``s`` holds images
``s*shard_size .. (s+1)*shard_size - 1`` whatever the number of workers, and worker ``rank``
of ``world_size`` takes the shards with ``s % world_size == rank``. Under ``OUT/shards/``::

    shard-00003.jsonl     the record: one row per (image, variation) of a finished shard,
                          written atomically; its presence marks the shard done
    shard-00003.journal   rows of the shard in progress, appended as views land (written
                          out after each pipeline call): a killed worker loses at most the
                          images of its last batch
    shard-00003.lock      flock of the shard's one live writer (dropped by the kernel when
                          the holder exits, however it exits)

What a rerun still does for an image (:func:`plan_images`): nothing if every variation's
newest row is ``ok`` with its output present (``verify``: and decodable) or ``failed`` for a
reason retrying cannot fix; otherwise it is generated again (no row, a lost output, a transient
failure).
"""
import datetime
import errno
import fcntl
import glob
import json
import logging
import os
import os.path as osp
import socket
import time
from typing import Dict, List, Sequence, Tuple

from ...structures.manifest import ManifestRow, newest_rows, read_rows
from .errors import ShardLocked, should_retry
from .writer import output_ok

logger = logging.getLogger(__name__)
SHARDS_DIR = 'shards'
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


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
    """Every record and journal under ``out_dir``, oldest first (by last write, then name):
    in their rows in this order a later row of an image is a newer one."""
    files = glob.glob(osp.join(out_dir, SHARDS_DIR, 'shard-*.jsonl')) + \
        glob.glob(osp.join(out_dir, SHARDS_DIR, 'shard-*.journal'))
    return sorted(files, key=lambda p: (osp.getmtime(p), p.endswith('.journal'), p))


def recorded_rows(paths: Sequence[str]) -> Dict[tuple, ManifestRow]:
    """The newest row of every (key, variation) in these files (missing ones skipped)."""
    return newest_rows(r for p in paths if osp.isfile(p) for r in read_rows(p))


def row_state(row: ManifestRow, out_dir: str, retry_failed: bool, verify: bool) -> str:
    """``'done'``, ``'lost'`` (ok but its file is missing or bad) or ``'retry'``."""
    if row.ok:
        good = row.output and output_ok(osp.join(out_dir, row.output), verify)
        return 'done' if good else 'lost'
    return 'retry' if should_retry(row.reason, retry_failed) else 'done'


def plan_images(items: Sequence, recorded: Dict[tuple, ManifestRow], num_variations: int,
                out_dir: str, retry_failed: bool = False,
                verify: bool = False) -> Tuple[list, Dict[str, int]]:
    """The images still to generate, and counts (in images) ``skipped``, ``new`` (no row),
    ``redone`` (an output lost) and ``retried`` (a failure tried again)."""
    counts = dict(skipped=0, new=0, redone=0, retried=0)
    todo = []
    for item in items:
        states = {('new' if row is None else row_state(row, out_dir, retry_failed, verify))
                  for row in (recorded.get((item.key, v)) for v in range(num_variations))}
        if states == {'done'}:
            counts['skipped'] += 1
            continue
        todo.append(item)
        name = next(n for s, n in (('new', 'new'), ('lost', 'redone'), ('retry', 'retried'))
                    if s in states)
        counts[name] += 1
    return todo, counts


def is_complete(out_dir: str, num_shards: int) -> bool:
    """Whether every shard has its record and none is in progress (no journal)."""
    return all(osp.isfile(shard_path(out_dir, s)) and
               not osp.exists(shard_path(out_dir, s, 'journal')) for s in range(num_shards))


class Journal:
    """Appends rows to a shard's journal: written out by :meth:`flush` (the runner calls it
    once per pipeline call: a killed process loses at most the rows since, whose images are
    then redone) and fsynced when closed; a half line left by a kill is cut off first."""

    def __init__(self, path: str) -> None:
        if osp.isfile(path):
            with open(path, 'rb+') as f:
                data = f.read()
                if data and not data.endswith(b'\n'):
                    f.truncate(data.rfind(b'\n') + 1)
        self._f = open(path, 'a', encoding='utf-8')

    def write(self, row: ManifestRow) -> None:
        self._f.write(row.to_line())

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()


class ShardLock:
    """Exclusive ``flock`` on ``shard-<s>.lock`` for the life of the ``with`` block.

    Args:
        path (str): the lock file.
        wait (float): seconds to wait for a live holder to exit before refusing. Defaults to 0.
    """

    def __init__(self, path: str, wait: float = 0.0) -> None:
        self.path, self.wait, self._fd = path, wait, None

    def holder(self) -> str:
        try:
            with open(self.path, encoding='utf-8') as f:
                info = json.load(f)
            return f"pid {info['pid']} on host {info['host']} since {info['since']}"
        except (OSError, ValueError, KeyError):
            return 'an unknown process'

    def __enter__(self) -> 'ShardLock':
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise ShardLocked(
                        f'{self.path[:-5]} is being written by another live process '
                        f'({self.holder()}). Two writers of one shard would redo the same '
                        'images: wait for it to finish or stop it (an overlapping Slurm '
                        'requeue: pass --lock-wait SECONDS).') from None
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    os.close(fd)
                    raise
                logger.warning('%s: this filesystem has no file locks (%s); make sure only one '
                               'process writes this shard', self.path, exc)
                break
        since = datetime.datetime.now().isoformat(timespec='seconds')
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(dict(pid=os.getpid(), host=socket.gethostname(),
                                     since=since)).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
