"""Offline view generation over a dataset: sharded, resumable, atomic (``tools/generate_views.py``).

Each rank takes its share (:mod:`.sharding`) of the sorted source images, locks its manifest
part (:mod:`.locking`: one live writer per part), and works out what is left (:mod:`.resume`:
new images, lost outputs, transient failures), so a restart with any world size redoes nothing
that finished and keeps nothing that was lost. Every image is written to a temporary file of
this process and ``os.replace``-d into place before its manifest row is appended and flushed:
a killed run never lists a truncated image. Loaded images are analysed once (foreground ratio,
noise level, embedding) and wait in one bucket per noise level until a full batch of that level
can go to the pipeline in one call (``level_buckets``); at most (levels x batch_size) images
wait in memory.
"""
import logging
import os
import os.path as osp
import shutil
from typing import Dict, List, Sequence

from .batches import analyze_batch, failed_rows, generate_batch, load_batch, save_view
from .locking import PartLock
from .manifest import ManifestWriter, part_path
from .outputs import check_unique_outputs
from .resume import plan_share, recorded_rows
from .sharding import shard
from .sources import ImageItem

logger = logging.getLogger(__name__)


def generate_views(items: Sequence[ImageItem], generator, out_dir: str, rank: int = 0,
                   world_size: int = 1, batch_size: int = 8, ext: str = '.jpg',
                   quality: int = 95, retry_failed: bool = False, verify: bool = False,
                   show_progress: bool = True, level_buckets: bool = True,
                   lock_wait: float = 0.0) -> Dict:
    """Generate views for this rank's share of ``items`` into ``out_dir``.

    Args:
        items (Sequence[ImageItem]): all source images (every rank passes the same list).
        generator (AdaptiveNoiseGenerator): or anything with its interface.
        out_dir (str): output root (images/, manifests/).
        rank (int) / world_size (int): this process's share. Defaults to 0 / 1.
        batch_size (int): source images per generator call. Defaults to 8.
        ext (str): output image extension ('.jpg', '.png', '.webp'). Defaults to '.jpg'.
        quality (int): JPEG/WebP quality. Defaults to 95.
        retry_failed (bool): also redo images recorded as undecodable (transient failures
            are always redone). Defaults to False.
        verify (bool): decode every recorded output to find damaged ones (slow); by default
            only missing or empty outputs are redone. Defaults to False.
        show_progress (bool): tqdm bar with rate and ETA. Defaults to True.
        level_buckets (bool): hold loaded images in one bucket per noise level and generate
            a bucket once it holds ``batch_size`` images (the rest at the end), so every
            pipeline call runs a full batch. Outputs are the same either way (per-image
            seeds). Defaults to True.
        lock_wait (float): seconds to wait for another writer of this part to exit.
            Defaults to 0.

    Returns:
        dict: image counts ``share, skipped, new, redone, retried, tried``, row counts ``ok,
        failed`` (rows written by this call, one per image and variation) and ``reasons``
        (one per failed image).

    Raises:
        PartLocked: another live process writes this rank's part.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    items = sorted(items, key=lambda it: it.key)
    nvar = generator.num_variations
    check_unique_outputs((it.key for it in items), nvar, ext)
    mine = shard(items, rank, world_size)
    part = part_path(out_dir, rank, world_size)
    tmp_dir = osp.join(out_dir, '.tmp', osp.splitext(osp.basename(part))[0])
    with PartLock(part, wait=lock_wait), ManifestWriter(part) as writer:
        shutil.rmtree(tmp_dir, ignore_errors=True)  # left by a killed writer of this part
        os.makedirs(tmp_dir)
        todo, stats = plan_share(mine, recorded_rows(out_dir), nvar, out_dir, retry_failed,
                                 verify)
        stats.update(ok=0, failed=0, tried=len(todo))
        reasons: Dict[str, str] = {}  # failed image -> why
        bar = None
        if show_progress:
            from tqdm import tqdm
            bar = tqdm(total=len(mine), initial=stats['skipped'], unit='img',
                       dynamic_ncols=True, desc=f'rank {rank}/{world_size}',
                       position=rank if world_size <= 8 else 0)

        def record(rows: List[Dict], images: int) -> None:
            for row in rows:
                writer.write(row)  # only after the image is in place
                stats['ok' if row['status'] == 'ok' else 'failed'] += 1
                if row['status'] != 'ok':
                    reasons[row['key']] = row['reason']
            if bar is not None:
                bar.update(images)

        def flush(loaded) -> None:
            record([res if isinstance(res, dict) else
                    save_view(res, generator, out_dir, ext, quality, tmp_dir)
                    for res in generate_batch(generator, loaded)], len(loaded))

        buckets: Dict[int, List] = {}  # noise level -> loaded images waiting
        for start in range(0, len(todo), batch_size):
            pairs, failed = load_batch(todo[start:start + batch_size])
            record([r for item, why in failed for r in failed_rows(item, why, generator)],
                   len(failed))
            if not level_buckets:
                flush([(item, img, None) for item, img in pairs])  # analysed in generate
                continue
            for loaded in analyze_batch(generator, pairs):
                level = -1 if loaded[2] is None else loaded[2]['noise_level'][0]
                buckets.setdefault(level, []).append(loaded)
            for level in list(buckets):
                if len(buckets[level]) >= batch_size:
                    flush(buckets.pop(level))
        for level in sorted(buckets):
            flush(buckets.pop(level))
        if bar is not None:
            bar.close()
        stats['reasons'] = list(reasons.values())
        shutil.rmtree(tmp_dir, ignore_errors=True)
        _remove_empty(osp.dirname(tmp_dir))
    return stats


def _remove_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass  # not empty (another rank's temp folder) or already gone
