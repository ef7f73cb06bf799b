"""Shard records -> ``OUT/manifest.jsonl`` (idempotent: any worker that sees every shard done
runs it, and so can ``tools/merge_manifests.py`` at any time)."""
import os.path as osp
from typing import Dict, Optional, Sequence

from ...structures.manifest import MERGED_NAME, RowMatcher, newest_rows, read_rows, write_manifest
from .shards import SHARDS_DIR, row_files
from .sources import ImageItem
from .writer import output_ok

# fields that say which view a row describes: two ok rows of one image differing here conflict
_IDENTITY = ('source', 'output', 'seed', 'noise_level', 'generator')


def merge_manifests(out_dir: str, items: Optional[Sequence[ImageItem]] = None,
                    num_variations: Optional[int] = None, check_files: bool = False,
                    out: Optional[str] = None) -> Dict:
    """Write one row per (key, variation) of the records (and journals) under ``out_dir``:
    an 'ok' row beats a 'failed' one, a newer row an older one; sorted by key.

    Args:
        out_dir (str): generation output folder.
        items (Sequence[ImageItem], optional): the expected source images: images without a
            row are reported in ``missing``.
        num_variations (int, optional): expected variations per image (default: the largest
            seen).
        check_files (bool): report ok rows whose output is missing or empty.
        out (str, optional): merged manifest path. Defaults to ``out_dir/manifest.jsonl``.

    Returns:
        dict: ``path, files, rows, ok, failed, duplicates`` (rows dropped as repeats),
        ``conflicts`` (keys with two different ok rows; the newer kept), ``missing``,
        ``missing_files``.
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
                                   if r.ok and not output_ok(osp.join(root, r.output))]
    return report
