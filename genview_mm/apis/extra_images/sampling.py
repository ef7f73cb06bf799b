"""Draw the extra real images of a data-expansion baseline (``tools/sample_extra_images.py``).

One streamed pass over the source offers every image whose file name is not an ImageNet-1K train
name to a seeded :class:`KeyedReservoir` of ``num`` + 1% places; the content check then runs on
the reservoir alone, in rank order, and stops once ``num`` images are accepted: a ``stat`` per
reservoir image (which also drops a file drawn a second time under another path: two links to
it), a SHA-1 of those whose size is the size of an ImageNet file, and a SHA-1 of the ImageNet
files whose size is the size of a reservoir image (see :mod:`.exclusion`). If more than
1% turn out to be ImageNet copies, the pass is repeated with a larger reservoir (same seed, so
the same ranking), unless nearly all drawn paths are missing (a list relative to another
folder: more passes would only end with the whole source in memory). Memory: the reservoir
(~135 bytes per image for 60-character paths, and 24 for its file's size, device and inode
while it is examined), 20 MB for ImageNet's names and sizes, 20 bytes per hashed ImageNet file.
"""
import errno
import hashlib
import json
import os
import os.path as osp
import stat
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import numpy as np

from ...structures.manifest import TRANSIENT, failure_cause
from ...utils.atomic_write import atomic_write
from ...utils.interrupt import StopRequest, deferred_stop
from .candidates import Scan
from .exclusion import ImageNetIndex, bounded_map, file_sha1
from .reservoir import KeyedReservoir

Progress = Optional[Callable[[str], None]]


@dataclass
class SampleReport:
    """What a draw saw and kept (all counts of the last pass over the source)."""
    paths: List[str] = field(default_factory=list)  # kept, relative to the data root, sorted
    candidates: int = 0  # image files in the source
    excluded_by_name: int = 0
    excluded_by_content: int = 0  # among the reservoir images examined
    unreadable: int = 0  # reservoir images missing, unreadable, empty or not files (dropped;
    #                      with ``verify``, also those that do not decode)
    duplicates: int = 0  # reservoir entries of a path listed more than once, or of a file
    #                      examined under another path (two links to it) (dropped)
    hashed: int = 0  # reservoir images whose bytes were hashed
    passes: int = 0


class NotEnoughImages(ValueError):
    """Fewer eligible images than asked (``report.paths`` holds all of them); ``fewer``: some,
    which ``allow_fewer`` takes."""

    def __init__(self, message: str, report: SampleReport, fewer: bool = False) -> None:
        super().__init__(message)
        self.report, self.fewer = report, fewer


def default_data_root(source: str) -> str:
    """The folder paths are relative to unless told: the source folder, or the list's folder."""
    return source if osp.isdir(source) else osp.dirname(osp.abspath(source))


#: read errors of a file that is not there or may not be read: it is dropped. Any other one
#: (EIO, ESTALE, ETIMEDOUT: a flaky mount) stops the draw with :class:`ReadFailed`, since
#: dropping the file would change which images the same seed draws.
DROPPED_ERRNOS = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES,
                            errno.EPERM, errno.ELOOP, errno.ENAMETOOLONG})


class ReadFailed(OSError):
    """A reservoir image could not be read for a reason that may go away (exit 2)."""


def _checked(path: str, exc: OSError) -> None:
    """Return if ``exc`` says the file is not there or may not be read (it is dropped); else
    raise :class:`ReadFailed` naming it."""
    if exc.errno in DROPPED_ERRNOS:
        return
    raise ReadFailed(f'cannot read {path} ({exc.strerror or exc}): dropping it would change '
                     'which images this seed draws. If the mount is flaky, rerun; if the file '
                     'is damaged, delete it and rerun') from exc


def _stat(path: str) -> Tuple[int, int, int]:
    """The file's size, -1 if it is missing, unreadable, empty or not a file (a folder named
    ``x.jpg``): training would fail on it mid-epoch (:class:`ReadFailed` on another error); and
    its device and inode, which the paths of one file share (two links to it)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        _checked(path, exc)
        return -1, 0, 0
    size = info.st_size if stat.S_ISREG(info.st_mode) and info.st_size > 0 else -1
    return size, info.st_dev, info.st_ino


def _seen_before(devs: np.ndarray, inos: np.ndarray) -> np.ndarray:
    """Whether each (device, inode) pair is also at an earlier index (one file, two paths)."""
    order = np.lexsort((inos, devs))  # stable: each file's earliest index first
    repeat = np.ones(max(len(order) - 1, 0), bool)
    for key in (devs, inos):  # a column at a time: this is a draw's memory peak
        ranked = key[order]
        repeat &= ranked[1:] == ranked[:-1]
        del ranked
    again = np.zeros(len(order), bool)
    again[order[1:][repeat]] = True
    return again


def _decodes(path: str) -> bool:
    """Whether the file decodes as training decodes it (:class:`ReadFailed` on a read error
    that is not one of :data:`DROPPED_ERRNOS`, or when out of memory: no verdict on the file)."""
    from ...datasets.image_sources import decode_image
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as exc:
        _checked(path, exc)
        return False
    array, reason = decode_image(data, path)
    if reason and failure_cause(reason) == f'{TRANSIENT}: out of memory':
        raise ReadFailed(f'out of memory decoding {path}: lower --workers and rerun')
    return array is not None


def _nearly_all_missing(report: SampleReport, kept: int) -> bool:
    """Whether at least 90% of the drawn paths examined were missing or unreadable: a list
    relative to another folder, which more passes (each over the whole source, with a larger
    reservoir) would only hold in memory at last, not fix."""
    return report.unreadable >= 9 * kept and report.unreadable > 0


def filter_reservoir(items: List[str], num: int, data_root: str,
                     imagenet: Optional[ImageNetIndex], report: SampleReport, workers: int = 8,
                     progress: Progress = None, verify: bool = False) -> List[str]:
    """The first ``num`` of ``items`` (rank order) that exist and, where ``imagenet`` checks
    content, are not byte copies of an ImageNet file (a ``stat`` each; missing, unreadable or
    empty files and folders are dropped in both modes: a list naming them would fail training
    mid-epoch). A file drawn under a second path (two links to it, a hard link) is dropped as a
    duplicate: it is listed once, under its path of smaller key, whatever the walk's order.
    ``verify``: a kept file must also decode as training decodes it (a read and a decode each:
    an HTML page saved as ``.jpg``, a truncated JPEG are dropped too)."""
    paths = (osp.join(data_root, item) for item in items)
    sizes = np.empty(len(items), np.int64)
    devs, inos = np.empty(len(items), np.uint64), np.empty(len(items), np.uint64)
    for i, (size, dev, ino) in enumerate(bounded_map(_stat, paths, workers)):
        sizes[i], devs[i], inos[i] = size, dev, ino
    again = _seen_before(devs, inos) & (sizes >= 0) & (inos > 0)  # inode 0: none known
    del devs, inos
    content = imagenet is not None and imagenet.checks_content
    maybe = np.isin(sizes, imagenet.sizes) & ~again if content else np.zeros(len(items), bool)
    if content and progress:
        progress(f'{int(maybe.sum()):,} of {len(items):,} reservoir images have the size of an '
                 'ImageNet file: hashing the ImageNet files of those sizes')
    digests = imagenet.digests_of_sizes(sizes[maybe], workers) if content else None

    def verdict(i: int) -> str:
        if sizes[i] < 0:
            return 'unreadable'
        if again[i]:
            return 'duplicate'
        result = 'kept'
        if maybe[i]:
            try:
                digest = np.frombuffer(file_sha1(osp.join(data_root, items[i])), 'S20')[0]
            except OSError as exc:
                _checked(osp.join(data_root, items[i]), exc)
                return 'unreadable'
            j = int(np.searchsorted(digests, digest))
            result = 'copy' if j < len(digests) and digests[j] == digest else 'hashed'
        if verify and result != 'copy' and not _decodes(osp.join(data_root, items[i])):
            return 'unreadable'
        return result

    kept: List[str] = []
    for i, result in enumerate(bounded_map(verdict, range(len(items)), workers)):
        report.hashed += result in ('hashed', 'copy')
        report.excluded_by_content += result == 'copy'
        report.unreadable += result == 'unreadable'
        report.duplicates += result == 'duplicate'
        if result in ('kept', 'hashed'):
            kept.append(items[i])
            if len(kept) == num:
                break
    return kept


def scan_identity(source: str, num: int, imagenet: Optional[ImageNetIndex], data_root: str,
                  seed: int) -> dict:
    """What a saved scan must have been made with to be carried on (a list file also by its
    size and time: a list that changed is scanned again)."""
    names = None if imagenet is None else hashlib.blake2b(
        imagenet.name_hashes.tobytes(), digest_size=16).hexdigest()
    info = os.stat(source) if osp.isfile(source) else None
    return dict(source=osp.abspath(source), data_root=osp.abspath(data_root), seed=seed, num=num,
                imagenet_names=names, list=info and [info.st_size, info.st_mtime_ns])


def load_scan(path: Optional[str], identity: dict, progress: Progress = None) -> Optional[dict]:
    """The scan saved at ``path`` if it was made with ``identity``; else None (said through
    ``progress``: a damaged one or one of other settings is scanned again, and replaced)."""
    if not path or not osp.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            state = json.load(f)
        same = state['genview_scan'] == 1 and state['identity'] == identity
    except (ValueError, KeyError, TypeError):
        state, same = None, False
    if progress and not same:
        progress(f'{path} is {"the scan of other settings" if state else "damaged"}: scanning '
                 'from the start (it is replaced)')
    return state if same else None


def save_scan(path: str, identity: dict, report: SampleReport, reservoir: KeyedReservoir,
              position, finished: bool) -> None:
    """Save where the scan stands (atomically: a kill while saving keeps the last one)."""
    state = dict(genview_scan=1, identity=identity, passes=report.passes, finished=finished,
                 position=position, candidates=report.candidates,
                 excluded_by_name=report.excluded_by_name, reservoir=reservoir.to_json())
    with atomic_write(path) as f:
        json.dump(state, f)


def _stop_saved(stop: StopRequest, saved_in: Optional[str], progress: Progress) -> None:
    """End the run as a Ctrl-C or SIGTERM received during the scan asked, now that the scan
    is saved; nothing without one."""
    if stop.requested:
        if progress:
            progress(f'stopped: the scan is saved in {saved_in}; the same command goes on from '
                     'it')
        stop.stop()


def sample_extra_images(source: str, num: int, imagenet: Optional[ImageNetIndex],
                        data_root: Optional[str] = None, seed: int = 0,
                        allow_fewer: bool = False, workers: int = 8, progress: Progress = None,
                        progress_every: int = 100_000, verify: bool = False,
                        resume: Optional[str] = None, save_every: float = 300.0) -> SampleReport:
    """A seeded uniform sample of ``num`` images of ``source`` that are not ImageNet's.

    Args:
        source (str): a folder (walked recursively) or a list file of images.
        num (int): how many images to draw (>= 1).
        imagenet (ImageNetIndex | None): what to exclude; content is compared when it has the
            file sizes and folder. None: nothing is excluded.
        data_root (str, optional): the folder the paths are relative to. Defaults to the source
            folder, or the list file's folder.
        seed (int): the sampling seed. Defaults to 0.
        allow_fewer (bool): keep all eligible images when there are fewer than ``num``.
        workers (int): threads for ``stat`` and hashing. Defaults to 8.
        progress (callable, optional): receives one line per step and per ``progress_every``
            candidates.
        verify (bool): decode every kept image as training does, dropping those that fail
            (:func:`filter_reservoir`). Defaults to False.
        resume (str, optional): a file the scan is saved to every ``save_every`` seconds (at a
            folder's end, or every 10,000 list entries), at the next such place after a SIGINT
            or SIGTERM (then the run ends as that signal asks:
            :func:`~genview_mm.utils.interrupt.deferred_stop`) and once done, and goes on from
            when made with the same arguments: a stopped scan resumes, a finished one is not
            redone (the same sample as one uninterrupted scan). The caller removes it once the
            list is written. Defaults to None (nothing saved).

    Returns:
        SampleReport: the kept paths (relative to ``data_root``, sorted) and the counts.

    Raises:
        NotEnoughImages: no eligible image at all, or fewer than ``num`` and not
            ``allow_fewer``.
    """
    if num < 1:
        raise ValueError(f'num must be at least 1, got {num}')
    data_root = default_data_root(source) if data_root is None else data_root
    margin = max(100, num // 100)  # places for images found to be copies or missing after the draw
    identity = scan_identity(source, num, imagenet, data_root, seed) if resume else None
    state = load_scan(resume, identity, progress)
    capacity = state['reservoir']['capacity'] if state else num + margin
    report = SampleReport()
    while True:
        if state:  # a scan saved by a stopped run
            report = SampleReport(passes=state['passes'], candidates=state['candidates'],
                                  excluded_by_name=state['excluded_by_name'])
            reservoir = KeyedReservoir.from_json(state['reservoir'])
            scan, finished = Scan(source, data_root, state['position']), state['finished']
            if progress:
                progress(f'going on from {resume}: pass {report.passes}, '
                         f'{report.candidates:,} candidates read'
                         f'{", the scan is done" if finished else ""}')
            state = None
        else:
            report = SampleReport(passes=report.passes + 1)
            reservoir = KeyedReservoir(capacity, seed)
            scan, finished = Scan(source, data_root), False
        saved = time.monotonic()
        with deferred_stop() if resume else nullcontext(StopRequest()) as stop:
            for rel in [] if finished else scan:
                if rel is None:  # a place to stop and resume from (a Ctrl-C or SIGTERM: now)
                    if resume and (stop.requested or time.monotonic() - saved >= save_every):
                        save_scan(resume, identity, report, reservoir, scan.position, False)
                        saved = time.monotonic()
                        _stop_saved(stop, resume, progress)
                    continue
                report.candidates += 1
                if imagenet is not None and imagenet.has_name(rel.rsplit('/', 1)[-1]):
                    report.excluded_by_name += 1
                else:
                    reservoir.offer(rel)
                if progress and report.candidates % progress_every == 0:
                    progress(f'{report.candidates:,} candidates read, '
                             f'{report.excluded_by_name:,} excluded by name, reservoir '
                             f'{len(reservoir):,}/{capacity:,}')
            if resume and not finished:
                save_scan(resume, identity, report, reservoir, None, True)
            _stop_saved(stop, resume, progress)
        if progress:
            progress(f'{report.candidates:,} candidates, {report.excluded_by_name:,} excluded '
                     f'by name, {reservoir.offered:,} eligible by name')
        overflowed, items = reservoir.overflowed, reservoir.ranked()
        report.duplicates = reservoir.duplicates
        kept = filter_reservoir(items, num, data_root, imagenet, report, workers, progress,
                                verify)
        del items
        missing = len(kept) < num and _nearly_all_missing(report, len(kept))
        if len(kept) >= num or not overflowed or missing:
            break
        lost = report.excluded_by_content + report.unreadable + report.duplicates
        capacity += 2 * lost + margin
        if progress:
            progress(f'{report.excluded_by_content:,} reservoir images are ImageNet copies, '
                     f'{report.unreadable:,} missing or unreadable, {report.duplicates:,} '
                     f'listed twice: another pass with a reservoir of {capacity:,}')
    kept.sort()
    report.paths = kept
    counts = (f'{report.candidates:,} image files, {report.excluded_by_name:,} excluded by name, '
              f'{report.excluded_by_content:,} by content, {report.unreadable:,} missing, empty'
              f'{", undecodable" if verify else ""} or not files, {report.duplicates:,} listed '
              'twice')
    excluded = (' and '.join(imagenet.roots) if imagenet is not None and imagenet.roots
                else 'ImageNet-1K')  # train, and val where it is excluded too
    fix = (f'give a source holding images other than those of {excluded}'
           if report.unreadable <= len(kept) else 'most drawn paths are missing, empty or not '
           'files: check that they are relative to --data-root (default: the folder of the '
           'source list), or, where those files are really gone, list only the ones there')
    if not kept:  # even with allow_fewer: an empty list would train on no extra image
        raise NotEnoughImages(f'{source} has no eligible images ({counts}): {fix}', report)
    if missing:  # even with allow_fewer: a list for another --data-root (and when the
        # reservoir overflowed, the rest of the source was not examined)
        examined = len(kept) + report.unreadable + report.excluded_by_content
        raise NotEnoughImages(f'{source}: {len(kept):,} of the {examined:,} paths examined are '
                              f'usable ({counts}): {fix}', report)
    if len(kept) < num and not allow_fewer:
        raise NotEnoughImages(
            f'{source} has {len(kept):,} eligible images ({counts}), fewer than the {num:,} '
            f'asked: pass --allow-fewer to write these {len(kept):,} (the list --num '
            f'{len(kept)} would write, without scanning again)', report, fewer=True)
    return report
