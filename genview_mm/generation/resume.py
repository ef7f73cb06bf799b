"""What a rerun still has to do: the resume rule of ``tools/generate_views.py``.

An image (all its variations) is skipped only if every variation's newest row (see
:func:`.merge.merge_rows`) is either ``ok`` with its output file still there and non-empty
(``verify``: and decodable), or ``failed`` for a reason retrying cannot fix (an undecodable
file; ``retry_failed`` retries those too). Everything else is done again: images without a
row, outputs that went missing or were truncated, and transient failures (a missing source
file after a wrong ``--data-root``, out of memory, a failed batch, ...).
"""
import os.path as osp
from typing import Dict, List, Sequence, Tuple

from .failures import should_retry
from .manifest import part_paths, row_id, rows_in
from .merge import merge_rows
from .outputs import output_ok
from .sources import ImageItem


def recorded_rows(out_dir: str) -> Dict[Tuple[str, int], Dict]:
    """The newest row of every (key, variation) in the manifest parts under ``out_dir``."""
    return {row_id(r): r for r in merge_rows(rows_in(part_paths(out_dir)))}


def row_state(row: Dict, out_dir: str, retry_failed: bool = False,
              verify: bool = False) -> str:
    """``'done'``, ``'lost'`` (ok but its file is missing or bad) or ``'retry'`` (failed)."""
    if row['status'] == 'ok':
        path = osp.join(out_dir, row['output'] or '')
        return 'done' if row['output'] and output_ok(path, verify) else 'lost'
    return 'retry' if should_retry(row.get('reason'), retry_failed) else 'done'


def plan_share(mine: Sequence[ImageItem], recorded: Dict[Tuple[str, int], Dict],
               num_variations: int, out_dir: str, retry_failed: bool = False,
               verify: bool = False) -> Tuple[List[ImageItem], Dict[str, int]]:
    """The images of this share still to generate, and counts for the run summary.

    Returns:
        tuple: (todo, counts) with counts ``share``, ``skipped``, ``new`` (no row yet),
        ``redone`` (an ok row whose output is missing or bad) and ``retried`` (a failed row
        tried again), all in images.
    """
    counts = dict(share=len(mine), skipped=0, new=0, redone=0, retried=0)
    todo = []
    for item in mine:
        states = set()
        for v in range(num_variations):
            row = recorded.get((item.key, v))
            states.add('new' if row is None else
                       row_state(row, out_dir, retry_failed, verify))
        if states == {'done'}:
            counts['skipped'] += 1
            continue
        todo.append(item)
        for state, name in (('new', 'new'), ('lost', 'redone'), ('retry', 'retried')):
            if state in states:
                counts[name] += 1
                break
    return todo, counts
