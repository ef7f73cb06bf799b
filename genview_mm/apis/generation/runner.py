"""The generation loop over this worker's shards (:mod:`.shards`). Per shard not yet recorded:
take its lock, plan what is left, and stream the images through a prefetch thread (decode, CLIP
pixels), the main thread (per batch one encoder pass and one generate call, its images at their
own noise levels) and a writer pool; a view's row is journaled once its file is in place, the
shard's record written at its end. Every image has its own seed: outputs do not depend on batch,
shard, worker count or threads."""
import functools
import logging
import os
import os.path as osp
import shutil
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence

from tqdm import tqdm

from ...datasets.image_sources import ImageItem, load_image
from ...generation.analysis import select_analysis
from ...generation.device_images import to_pil
from ...generation.seeding import image_seed
from ...structures import manifest
from ...structures.manifest import ManifestRow
from ...utils.atomic_write import DiskFull
from ...utils.image_files import remembered_check, save_image
from ...utils.threads import OrderedPool
from ...utils.threads import prefetch as read_ahead
from . import SetupError, shards

logger = logging.getLogger(__name__)
WRITE_FAILURES_IN_A_ROW = 16  # at least two batches' views: then the run stops (SetupError)


def failed_rows(item: ImageItem, reason: str, gen) -> List[ManifestRow]:
    """One failed row per variation of ``item``."""
    return [ManifestRow(item.path, item.key, v, seed=image_seed(item.key, gen.base_seed, v),
                        generator=gen.name, status='failed', reason=reason)
            for v in range(gen.num_variations)]


def read_batches(gen, todo: Sequence[ImageItem], batch_size: int):
    """Per batch, ``(pairs, pixels, failed)``: the decoded ``(item, image)`` pairs, their CLIP
    pixels (``gen.preprocess``) and the ``(item, reason)`` of the images that failed to load.
    Host work only (the prefetch thread's)."""
    for start in range(0, len(todo), batch_size):
        loaded = [(item, *load_image(item.path)) for item in todo[start:start + batch_size]]
        pairs = [(item, img) for item, img, why in loaded if why is None]
        pixels = None
        if pairs and hasattr(gen, 'preprocess'):
            try:
                pixels = gen.preprocess([img for _, img in pairs])
            except Exception as exc:  # noqa: BLE001
                logger.warning('preprocessing failed (%s); retrying it at generation', exc)
        yield pairs, pixels, [(item, why) for item, _, why in loaded if why is not None]


def _generate(gen, pairs: Sequence, info: Optional[Dict]) -> list:
    """(item, view) pairs, or failed rows, of one generate call on the decoded ``(item,
    image)`` ``pairs`` (``info``: their analysis, or None); a failing batch is retried image by
    image."""
    split = False
    try:
        views = gen.generate([img for _, img in pairs], [it.key for it, _ in pairs],
                             analysis=info)
    except Exception as exc:  # noqa: BLE001
        if len(pairs) == 1:
            why = manifest.failure_reason(manifest.TRANSIENT, 'generation failed', exc)
            return failed_rows(pairs[0][0], why, gen)
        logger.warning('batch failed (%s); retrying image by image', str(exc))
        split = True  # retried out here: the error (kept by a log record too) holds the
    if split:  # failed call's tensors through its traceback
        return [r for i, one in enumerate(pairs)
                for r in _generate(gen, [one], info and select_analysis(info, [i]))]
    items = {item.key: item for item, _ in pairs}
    return [(items[view.key], view) for view in views]


def save_view(item, view, gen, out_dir: str, ext: str, quality: int,
              tmp_dir: str) -> ManifestRow:
    """Write one of ``gen``'s views of ``item``; its row (failed for a write error)."""
    rel = shards.output_relpath(item.key, view.variation, gen.num_variations, ext)
    path = osp.join(out_dir, rel)
    try:
        save_image(to_pil(view.image), path, quality, tmp_dir)
    except DiskFull as exc:  # every later write would fail too; named by the view's folder
        raise SetupError(str(DiskFull(exc.errno, exc.strerror, osp.dirname(path)))) from None
    except OSError as exc:
        why = manifest.failure_reason(manifest.TRANSIENT, 'write failed', exc)
        return ManifestRow(item.path, item.key, view.variation, seed=view.seed,
                           generator=gen.name, status='failed', reason=why)
    return ManifestRow(item.path, item.key, view.variation, rel, view.noise_level,
                       view.fg_ratio, view.seed, gen.name, view.clip_sim)


def _run_shard(gen, out_dir: str, shard: int, todo: Sequence[ImageItem], opts: Dict,
               bar, before: Dict[tuple, ManifestRow]) -> List[ManifestRow]:
    """Generate ``todo`` (what is left of one shard), journaling each row once its view is in
    place, its ``attempt`` one more than that of its row in ``before``; the rows. The main
    thread's part between the prefetch thread and the writers."""
    tmp_dir = shards.shard_path(out_dir, shard, 'tmp')
    shutil.rmtree(tmp_dir, ignore_errors=True)  # what a killed run left
    journal = manifest.ManifestJournal(shards.shard_path(out_dir, shard, 'journal'))
    pool = OrderedPool(opts['writers'], name='view-writer')
    rows: List[ManifestRow] = []
    # the views that failed to write since one was written, in this shard or the ones before
    # it (a shard of fewer views than the limit would start the count again each time)
    unwritten: List[ManifestRow] = opts.setdefault('unwritten', [])
    limit = max(WRITE_FAILURES_IN_A_ROW, 2 * opts['batch_size'] * gen.num_variations)

    def keep(row: ManifestRow) -> None:
        row.attempt = 1 + (before[row.id].attempt if row.id in before else 0)
        journal.write(row)
        rows.append(row)

    def record(new: Sequence[ManifestRow], images: int = 0) -> None:
        for row in new:
            keep(row)
            if row.ok or manifest.failure_cause(row.reason) == 'transient: write failed':
                unwritten[:] = [] if row.ok else unwritten + [row]
        bar.update(images)
        if len(unwritten) >= limit:  # a folder not writable: not the rest of the share too
            last = unwritten[-1]
            folder = osp.dirname(osp.join(out_dir, shards.output_relpath(
                last.key, last.variation, gen.num_variations, opts['ext'])))
            raise SetupError(f'{len(unwritten)} views in a row could not be written, the last '
                             f'to {folder} ({last.reason.split(": ", 2)[-1]}): fix that and '
                             'rerun (it redoes them)')

    try:
        batches = read_batches(gen, todo, opts['batch_size'])
        for pairs, pixels, failed in (read_ahead(batches, name='view-prefetch')
                                      if opts['prefetch'] else batches):
            record([r for it, why in failed for r in failed_rows(it, why, gen)], len(failed))
            if not pairs:
                continue
            info = None
            try:  # the encoder pass on the prefetched pixels: the models run in this thread
                info = gen.analyze([img for _, img in pairs], pixels)
            except Exception as exc:  # noqa: BLE001
                logger.warning('analysis failed (%s); retrying it at generation', exc)
            for res in _generate(gen, pairs, info):  # one call, each image at its own level
                record([res] if isinstance(res, ManifestRow) else pool.submit(
                    save_view, *res, gen, out_dir, opts['ext'], opts['quality'], tmp_dir))
            journal.flush()  # once per pipeline call
            bar.update(len(pairs))
        record(pool.done(True))
    finally:  # each step also when one before it fails (a full disk fails the journal too)
        try:  # views written before a stop (Ctrl-C, an error) are journaled, not redone
            for row in pool.close():
                keep(row)
            journal.close()
        finally:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    return rows


def generate_views(items: Sequence[ImageItem], generator, out_dir: str, rank: int = 0,
                   world_size: int = 1, batch_size: int = 8, ext: str = '.jpg',
                   quality: int = 95, retry_failed: bool = False, verify: bool = False,
                   show_progress: bool = True, lock_wait: float = 0.0, shard_size: int = 1000,
                   prefetch: bool = True, writers: int = 4,
                   start: Optional[Callable[[], None]] = None) -> Dict:
    """Generate views for this worker's shards of ``items`` (every worker passes the same
    list) into ``out_dir``. ``generator``: an :class:`AdaptiveNoiseGenerator` or anything with
    its ``analyze``/``generate``; ``prefetch=False, writers=0``: the serial reference (the same
    outputs); ``start``: called once, before the first shard with work is locked (a worker with
    nothing left loads no model, nor one finishing a shard whose rows are all journaled); the
    other options are the tool's flags. Returns image counts ``share, skipped, new, redone,
    retried, tried``, row counts ``ok, failed``, ``reasons`` (one per failed image), ``shards``
    (this worker's), ``ran`` (worked on) and ``complete`` (every shard recorded)."""
    if batch_size < 1 or shard_size < 1:
        raise ValueError(f'batch_size and shard_size must be >= 1, got {batch_size}, '
                         f'{shard_size}')
    items, nvar = sorted(items, key=lambda it: it.key), generator.num_variations
    shards.check_unique_outputs((it.key for it in items), nvar, ext)
    num_shards = shards.shard_count(len(items), shard_size)
    chunks = {s: items[s * shard_size:(s + 1) * shard_size]
              for s in shards.my_shards(num_shards, rank, world_size)}
    recorded = shards.recorded_rows(shards.row_files(out_dir))
    stats = Counter(dict.fromkeys(('skipped', 'new', 'redone', 'retried', 'tried', 'ok',
                                   'failed', 'ran'), 0),
                    share=sum(map(len, chunks.values())), shards=len(chunks))
    reasons = {}  # one per failed image
    begin = functools.cache(start or (lambda: None))  # runs once, on the first call
    opts = dict(batch_size=batch_size, ext=ext, quality=quality, prefetch=prefetch,
                writers=writers, unwritten=[])  # unwritten: the failed-write streak (_run_shard)
    bar = tqdm(total=stats['share'], unit='img', dynamic_ncols=True,
               desc=f'worker {rank}/{world_size}', disable=not show_progress)
    for s, chunk in chunks.items():
        record, journal = shards.shard_path(out_dir, s), shards.shard_path(out_dir, s, 'journal')
        file_ok = remembered_check(verify)  # --verify decodes a view once, not once a plan
        left = shards.plan_images(chunk, recorded, nvar, out_dir, retry_failed, file_ok)[0]
        if not left and osp.isfile(record) and not osp.exists(journal):
            stats['skipped'] += len(chunk)
            bar.update(len(chunk))
            continue
        if left:  # the first shard with work: load the model now, before writing
            begin()
        try:  # an OSError: the lock, journal or record (a full disk, a read-only folder)
            with shards.shard_lock(out_dir, s, lock_wait):
                fresh = list(shards.recorded_rows([record, journal]).values())
                old = manifest.newest_rows([r for it in chunk for v in range(nvar)
                                            for r in [recorded.get((it.key, v))] if r] + fresh)
                todo, counts = shards.plan_images(chunk, old, nvar, out_dir, retry_failed,
                                                  file_ok)
                if todo:  # work since the plan above (a shard only journaled)
                    begin()
                stats.update(counts, tried=len(todo))
                bar.update(counts['skipped'])
                new = _run_shard(generator, out_dir, s, todo, opts, bar, old)
                stats.update(ok=sum(r.ok for r in new), failed=sum(not r.ok for r in new))
                reasons.update((r.key, r.reason) for r in new if not r.ok)
                # the chunk's rows and every row the shard held (one of an image that moved to
                # a finished neighbour, the source grown or shrunk, is in no other record); a
                # redone image's rows replace its old ones (a later attempt)
                rows = manifest.newest_rows(list(old.values()) + new)
                manifest.write_manifest(record, [rows[k] for k in sorted(rows)])
                os.remove(journal)  # _run_shard opened it
        except OSError as exc:
            raise SetupError(f'cannot write to {osp.dirname(record)} ({exc.strerror}): free '
                             'space, make it writable or pass another --out-dir') from None
        stats['ran'] += 1
    bar.close()
    return dict(stats, reasons=list(reasons.values()),
                complete=shards.is_complete(out_dir, num_shards))
