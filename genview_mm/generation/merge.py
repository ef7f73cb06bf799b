"""Merge per-rank manifest parts into one manifest (``tools/merge_manifests.py``)."""
import json
import os
import os.path as osp
import socket
from typing import Dict, List, Optional, Sequence

from .manifest import FIELDS, MERGED_NAME, PARTS_DIR, part_paths, row_id, rows_in
from .outputs import output_ok
from .sources import ImageItem


def merge_rows(rows: Sequence[Dict]) -> List[Dict]:
    """One row per (key, variation): an 'ok' row beats a 'failed' one, a later row beats an
    earlier one of the same status (a rerun that redid a lost output); sorted by (key,
    variation). Pass the rows oldest first (:func:`.manifest.part_paths` order)."""
    best: Dict[tuple, Dict] = {}
    for row in rows:
        rid = row_id(row)
        old = best.get(rid)
        if old is None or row['status'] == 'ok' or old['status'] != 'ok':
            best[rid] = row
    return [best[k] for k in sorted(best)]


def merge_manifests(out_dir: str, items: Optional[Sequence[ImageItem]] = None,
                    num_variations: Optional[int] = None, check_files: bool = False,
                    out: Optional[str] = None) -> Dict:
    """Write ``out_dir/manifest.jsonl`` from ``out_dir/manifests/part-*.jsonl``.

    Args:
        out_dir: generation output folder.
        items: the expected source images; missing (key, variation) pairs are reported.
        num_variations: expected variations per image; defaults to the largest seen.
        check_files: report 'ok' rows whose output file is missing or empty.
        out: merged manifest path. Defaults to ``out_dir/manifest.jsonl``.

    Returns:
        report with counts (rows, ok, failed, duplicates) and lists (missing,
        missing_files).
    """
    parts = part_paths(out_dir)
    if not parts:
        raise FileNotFoundError(f'no manifest parts under {osp.join(out_dir, PARTS_DIR)!r}: '
                                'run tools/generate_views.py with this --out-dir first')
    raw = rows_in(parts)
    rows = merge_rows(raw)
    out = out or osp.join(out_dir, MERGED_NAME)
    tmp = f'{out}.{socket.gethostname()}-{os.getpid()}.partial'  # merges may run side by side
    try:
        with open(tmp, 'w', encoding='utf-8') as f:
            for row in rows:
                f.write(json.dumps({k: row[k] for k in FIELDS}) + '\n')
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    report = dict(path=out, parts=len(parts), rows=len(rows),
                  ok=sum(r['status'] == 'ok' for r in rows),
                  failed=sum(r['status'] != 'ok' for r in rows),
                  duplicates=len(raw) - len(rows), missing=[], missing_files=[])
    if items is not None:
        nvar = num_variations or (1 + max((int(r['variation']) for r in rows), default=0))
        have = {row_id(r) for r in rows}
        report['missing'] = [f'{it.key}#{v}' for it in sorted(items, key=lambda i: i.key)
                             for v in range(nvar) if (it.key, v) not in have]
    if check_files:
        root = osp.dirname(osp.abspath(out))
        report['missing_files'] = [r['output'] for r in rows if r['status'] == 'ok'
                                   and not output_ok(osp.join(root, r['output']))]
    return report
