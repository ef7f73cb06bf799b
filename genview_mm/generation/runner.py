"""Offline view generation over a dataset: sharded, resumable, atomic (``tools/generate_views.py``).

Each rank takes its share (:mod:`.sharding`) of the sorted source images, skips those already
recorded in any manifest part under ``out_dir`` (so a restart, even with another world size,
redoes nothing that finished), and for each batch writes every image to a temporary file that is
then ``os.replace``-d into place before its manifest row is appended and flushed. A killed run
therefore never lists a truncated image; an image written but not yet listed is simply redone.
Loaded images wait in one bucket per noise level until a full batch of that level can go to the
pipeline in one call (``level_buckets``); at most (levels x batch_size) images wait in memory.
"""
import logging
import os
import os.path as osp
from glob import glob
from typing import Dict, List, Sequence, Set, Tuple

from .manifest import PARTS_DIR, ManifestWriter, part_path, row_id, rows_in
from .seeding import image_seed
from .sharding import shard
from .sources import ImageItem

logger = logging.getLogger(__name__)
_FORMATS = {'.jpg': 'JPEG', '.jpeg': 'JPEG', '.png': 'PNG', '.webp': 'WEBP'}


def output_relpath(key: str, variation: int, num_variations: int, ext: str) -> str:
    """Generated image path relative to ``out_dir``: ``images/<key stem>[_v<k>]<ext>``."""
    stem = osp.splitext(key)[0]
    suffix = f'_v{variation}' if num_variations > 1 else ''
    return f'images/{stem}{suffix}{ext}'


def save_atomic(image, path: str, quality: int = 95) -> None:
    """Write ``image`` to a temporary sibling file, then rename it onto ``path``."""
    ext = osp.splitext(path)[1].lower()
    if ext not in _FORMATS:
        raise ValueError(f'output extension must be one of {sorted(_FORMATS)}, got {ext!r}')
    folder, base = osp.split(path)
    os.makedirs(folder, exist_ok=True)
    tmp = osp.join(folder, f'.{base}.partial{ext}')
    kwargs = {'quality': quality} if _FORMATS[ext] in ('JPEG', 'WEBP') else {}
    image.convert('RGB').save(tmp, format=_FORMATS[ext], **kwargs)
    os.replace(tmp, path)


def finished_ids(out_dir: str, retry_failed: bool = False) -> Set[Tuple[str, int]]:
    """(key, variation) pairs recorded in any manifest part under ``out_dir``."""
    parts = sorted(glob(osp.join(out_dir, PARTS_DIR, 'part-*.jsonl')))
    return {row_id(r) for r in rows_in(parts) if r['status'] == 'ok' or not retry_failed}


def _failed_rows(item: ImageItem, reason: str, gen) -> List[Dict]:
    return [dict(source=item.path, key=item.key, variation=v, output=None, noise_level=None,
                 fg_ratio=None, seed=image_seed(item.key, gen.base_seed, v), generator=gen.name,
                 clip_sim=None, status='failed', reason=reason)
            for v in range(gen.num_variations)]


def _load(items: Sequence[ImageItem]):
    from PIL import Image
    ok, failed = [], []
    for item in items:
        try:
            with Image.open(item.path) as img:
                ok.append((item, img.convert('RGB')))
        except Exception as exc:  # noqa: BLE001  (record any decode error and go on)
            failed.append((item, f'unreadable image: {type(exc).__name__}: {exc}'))
    return ok, failed


def generate_views(items: Sequence[ImageItem], generator, out_dir: str, rank: int = 0,
                   world_size: int = 1, batch_size: int = 8, ext: str = '.jpg',
                   quality: int = 95, retry_failed: bool = False, show_progress: bool = True,
                   level_buckets: bool = True) -> Dict[str, int]:
    """Generate views for this rank's share of ``items`` into ``out_dir``.

    Args:
        items: all source images (every rank passes the same list).
        generator: an :class:`AdaptiveNoiseGenerator` (or anything with its interface).
        out_dir: output root (images/, manifests/).
        rank / world_size: this process's place (torchrun's RANK / WORLD_SIZE).
        batch_size: source images per generator call. Defaults to 8.
        ext: output image extension ('.jpg', '.png', '.webp'). Defaults to '.jpg'.
        quality: JPEG/WebP quality. Defaults to 95.
        retry_failed: redo images recorded as failed. Defaults to False.
        show_progress: tqdm bar with rate and ETA. Defaults to True.
        level_buckets: hold loaded images in one bucket per noise level and generate a bucket
            once it holds ``batch_size`` images (the rest at the end), so every pipeline call
            runs a full batch instead of one call per level per batch. Outputs are the same
            either way (per-image seeds). Defaults to True.

    Returns:
        dict with counts: share, skipped, ok, failed (rows written by this call).
    """
    mine = shard(sorted(items, key=lambda it: it.key), rank, world_size)
    done = finished_ids(out_dir, retry_failed)
    nvar = generator.num_variations
    todo = [it for it in mine if any((it.key, v) not in done for v in range(nvar))]
    stats = dict(share=len(mine), skipped=len(mine) - len(todo), ok=0, failed=0)
    bar = None
    if show_progress:
        from tqdm import tqdm
        bar = tqdm(total=len(mine), initial=stats['skipped'], unit='img', dynamic_ncols=True,
                   desc=f'rank {rank}/{world_size}', position=rank if world_size <= 8 else 0)
    buckets: Dict[int, List] = {}  # noise level -> loaded (item, image) pairs waiting

    def flush(writer, pairs) -> None:
        for res in _generate(generator, pairs):
            row = res if isinstance(res, dict) else _save(res, generator, out_dir, ext, quality)
            writer.write(row)  # only after the image is in place
            stats['ok' if row['status'] == 'ok' else 'failed'] += 1
        if bar is not None:
            bar.update(len(pairs))

    with ManifestWriter(part_path(out_dir, rank, world_size)) as writer:
        for start in range(0, len(todo), batch_size):
            loaded, failed = _load(todo[start:start + batch_size])
            for row in (r for item, why in failed for r in _failed_rows(item, why, generator)):
                writer.write(row)
                stats['failed'] += 1
            if bar is not None:
                bar.update(len(failed))
            if not level_buckets:
                flush(writer, loaded)
                continue
            for pair, level in zip(loaded, _levels(generator, loaded)):
                buckets.setdefault(level, []).append(pair)
            for level in list(buckets):
                if len(buckets[level]) >= batch_size:
                    flush(writer, buckets.pop(level))
        for level in sorted(buckets):
            flush(writer, buckets.pop(level))
    if bar is not None:
        bar.close()
    return stats


def _levels(gen, loaded) -> List[int]:
    """Noise level of each loaded image (-1 if the analysis fails: generated alone later)."""
    if not loaded:
        return []
    try:
        return list(gen.analyze([img for _, img in loaded])['noise_level'])
    except Exception as exc:  # noqa: BLE001
        logger.warning('analysis failed (%s); these images are generated one by one', exc)
        return [-1] * len(loaded)


def _generate(gen, loaded) -> List:
    """(item, view) pairs for the loaded images, or failed rows; a failing batch is retried
    image by image so one bad image cannot sink the others."""
    if not loaded:
        return []
    try:
        views = gen.generate([img for _, img in loaded], [item.key for item, _ in loaded])
    except Exception as exc:  # noqa: BLE001
        if len(loaded) == 1:
            return _failed_rows(loaded[0][0], f'generation failed: {type(exc).__name__}: {exc}',
                                gen)
        logger.warning('batch failed (%s); retrying image by image', exc)
        return [r for pair in loaded for r in _generate(gen, [pair])]
    items = {item.key: item for item, _ in loaded}
    return [(items[view.key], view) for view in views]


def _save(pair, gen, out_dir: str, ext: str, quality: int) -> Dict:
    """Write one generated view atomically and return its manifest row."""
    item, view = pair
    rel = output_relpath(item.key, view.variation, gen.num_variations, ext)
    save_atomic(view.image, osp.join(out_dir, rel), quality)
    return dict(source=item.path, key=item.key, variation=view.variation, output=rel,
                noise_level=view.noise_level, fg_ratio=view.fg_ratio, seed=view.seed,
                generator=gen.name, clip_sim=view.clip_sim, status='ok', reason='')
