"""The generation loop over this worker's shards (:mod:`.shards`). Per shard not yet recorded:
take its lock, plan what is left, and stream the images through a prefetch thread (decode, CLIP
pixels), the main thread (one encoder pass per batch; images wait in one bucket per noise level
until a full batch of that level goes to the pipeline in one call) and a writer pool; a view's
row is journaled once its file is in place, the shard's record written at its end. Every image
has its own seed: outputs do not depend on batch, shard, worker count or threads."""
import logging
import os
import os.path as osp
import shutil
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence

from tqdm import tqdm

from ...datasets.image_sources import ImageItem, load_image
from ...generation.analysis import concat_analyses, select_analysis
from ...generation.seeding import image_seed
from ...structures import manifest
from ...structures.manifest import ManifestRow
from ...utils.threads import OrderedPool
from ...utils.threads import prefetch as read_ahead
from . import SetupError, shards
from .writer import check_unique_outputs, save_view

logger = logging.getLogger(__name__)


def failed_rows(item: ImageItem, reason: str, gen) -> List[ManifestRow]:
    """One failed row per variation of ``item``."""
    return [ManifestRow(item.path, item.key, v, seed=image_seed(item.key, gen.base_seed, v),
                        generator=gen.name, status='failed', reason=reason)
            for v in range(gen.num_variations)]


def read_batches(gen, todo: Sequence[ImageItem], batch_size: int, analyse: bool):
    """Per batch, ``(pairs, pixels, failed)``: the decoded ``(item, image)`` pairs, their CLIP
    pixels (``gen.preprocess``, with ``analyse``) and the ``(item, reason)`` of the images that
    failed to load. Host work only (the prefetch thread's)."""
    for start in range(0, len(todo), batch_size):
        loaded = [(item, *load_image(item.path)) for item in todo[start:start + batch_size]]
        pairs = [(item, img) for item, img, why in loaded if why is None]
        pixels = None
        if analyse and pairs and hasattr(gen, 'preprocess'):
            try:
                pixels = gen.preprocess([img for _, img in pairs])
            except Exception as exc:  # noqa: BLE001
                logger.warning('preprocessing failed (%s); retrying it at generation', exc)
        yield pairs, pixels, [(item, why) for item, _, why in loaded if why is not None]


def _generate(gen, loaded: Sequence) -> list:
    """(item, view) pairs, or failed rows; a failing batch is retried image by image."""
    infos = [info for _, _, info in loaded]
    analysis = concat_analyses(infos) if all(i is not None for i in infos) else None
    split = False
    try:
        views = gen.generate([img for _, img, _ in loaded], [it.key for it, _, _ in loaded],
                             analysis=analysis)
    except Exception as exc:  # noqa: BLE001
        if len(loaded) == 1:
            why = manifest.failure_reason(manifest.TRANSIENT, 'generation failed', exc)
            return failed_rows(loaded[0][0], why, gen)
        logger.warning('batch failed (%s); retrying image by image', str(exc))
        split = True  # retried out here: the error (kept by a log record too) holds the
    if split:  # failed call's tensors through its traceback
        return [r for one in loaded for r in _generate(gen, [one])]
    items = {item.key: item for item, _, _ in loaded}
    return [(items[view.key], view) for view in views]


def _run_shard(gen, out_dir: str, shard: int, todo: Sequence[ImageItem], opts: Dict,
               bar) -> List[ManifestRow]:
    """Generate ``todo`` (what is left of one shard), journaling each row once its view is in
    place; the rows. The main thread's part between the prefetch thread and the writers."""
    tmp_dir = shards.shard_path(out_dir, shard, 'tmp')
    shutil.rmtree(tmp_dir, ignore_errors=True)  # what a killed run left
    journal = manifest.ManifestJournal(shards.shard_path(out_dir, shard, 'journal'))
    pool = OrderedPool(opts['writers'], name='view-writer')
    rows: List[ManifestRow] = []

    def record(new: Sequence[ManifestRow], images: int = 0) -> None:
        for row in new:
            journal.write(row)
            rows.append(row)
        bar.update(images)

    def flush(loaded: Sequence) -> None:  # one bucket: one generate call
        for res in _generate(gen, loaded):
            record([res] if isinstance(res, ManifestRow) else pool.submit(
                save_view, *res, gen, out_dir, opts['ext'], opts['quality'], tmp_dir))
        journal.flush()  # once per pipeline call
        bar.update(len(loaded))

    buckets, size = {}, opts['batch_size']  # level -> [(item, image, analysis or None)]
    try:
        batches = read_batches(gen, todo, size, opts['level_buckets'])
        for pairs, pixels, failed in (read_ahead(batches, name='view-prefetch')
                                      if opts['prefetch'] else batches):
            record([r for it, why in failed for r in failed_rows(it, why, gen)], len(failed))
            info = None
            if opts['level_buckets'] and pairs:
                try:  # one encoder pass per batch, here: the models run in one thread only
                    info = gen.analyze([img for _, img in pairs], pixels)
                except Exception as exc:  # noqa: BLE001
                    logger.warning('analysis failed (%s); retrying it at generation', exc)
            for i, (item, img) in enumerate(pairs):
                one = info and select_analysis(info, [i])
                buckets.setdefault(-1 if one is None else one['noise_level'][0], []).append(
                    (item, img, one))
            for bucket in buckets.values():  # calls of --batch-size images, the rest waits
                while len(bucket) >= size:
                    flush(bucket[:size])
                    del bucket[:size]
        for level in sorted(lv for lv, bucket in buckets.items() if bucket):
            flush(buckets.pop(level))
        record(pool.done(True))
    finally:
        pool.close()
        journal.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return rows


def generate_views(items: Sequence[ImageItem], generator, out_dir: str, rank: int = 0,
                   world_size: int = 1, batch_size: int = 8, ext: str = '.jpg',
                   quality: int = 95, retry_failed: bool = False, verify: bool = False,
                   show_progress: bool = True, level_buckets: bool = True,
                   lock_wait: float = 0.0, shard_size: int = 1000, prefetch: bool = True,
                   writers: int = 4, start: Optional[Callable[[], None]] = None) -> Dict:
    """Generate views for this worker's shards of ``items`` (every worker passes the same
    list) into ``out_dir``. ``generator``: an :class:`AdaptiveNoiseGenerator` or anything with
    its ``analyze``/``generate``; ``level_buckets``: fill one batch per noise level first;
    ``prefetch=False, writers=0``: the serial reference (the same outputs); ``start``: called
    once, before the first shard with work is locked (a worker with nothing left loads no
    model); the other options are the tool's flags. Returns image counts ``share, skipped, new,
    redone, retried, tried``, row counts ``ok, failed``, ``reasons`` (one per failed image),
    ``shards`` (this worker's), ``ran`` (worked on) and ``complete`` (every shard recorded)."""
    if batch_size < 1 or shard_size < 1:
        raise ValueError(f'batch_size and shard_size must be >= 1, got {batch_size}, '
                         f'{shard_size}')
    items, nvar = sorted(items, key=lambda it: it.key), generator.num_variations
    check_unique_outputs((it.key for it in items), nvar, ext)
    num_shards = shards.shard_count(len(items), shard_size)
    chunks = {s: items[s * shard_size:(s + 1) * shard_size]
              for s in shards.my_shards(num_shards, rank, world_size)}
    recorded = shards.recorded_rows(shards.row_files(out_dir))
    stats = Counter(dict.fromkeys(('skipped', 'new', 'redone', 'retried', 'tried', 'ok',
                                   'failed', 'ran'), 0),
                    share=sum(map(len, chunks.values())), shards=len(chunks))
    reasons = {}  # one per failed image
    opts = dict(batch_size=batch_size, ext=ext, quality=quality, level_buckets=level_buckets,
                prefetch=prefetch, writers=writers)
    bar = tqdm(total=stats['share'], unit='img', dynamic_ncols=True,
               desc=f'worker {rank}/{world_size}', disable=not show_progress)
    for s, chunk in chunks.items():
        record, journal = shards.shard_path(out_dir, s), shards.shard_path(out_dir, s, 'journal')
        if osp.isfile(record) and not osp.exists(journal) and not shards.plan_images(
                chunk, recorded, nvar, out_dir, retry_failed, verify)[0]:
            stats['skipped'] += len(chunk)
            bar.update(len(chunk))
            continue
        if start:  # the first shard with work: load the model now, before writing anything
            start()
            start = None
        try:  # an OSError: the lock, journal or record (a full disk, a read-only folder)
            with shards.shard_lock(out_dir, s, lock_wait):
                fresh = list(shards.recorded_rows([record, journal]).values())
                old = manifest.newest_rows([r for it in chunk for v in range(nvar)
                                            for r in [recorded.get((it.key, v))] if r] + fresh)
                todo, counts = shards.plan_images(chunk, old, nvar, out_dir, retry_failed, verify)
                stats.update(counts, tried=len(todo))
                bar.update(counts['skipped'])
                new = _run_shard(generator, out_dir, s, todo, opts, bar)
                stats.update(ok=sum(r.ok for r in new), failed=sum(not r.ok for r in new))
                reasons.update((r.key, r.reason) for r in new if not r.ok)
                # the chunk's rows and every row the shard held: one of an image that moved to
                # a finished neighbour (the source grew or shrank) is in no other record
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
