"""The generation manifest: one JSON object per line (JSONL), one line per generated image.

Layout written by ``tools/generate_views.py --out-dir OUT``::

    OUT/generation_settings.json                 settings the views were made with
    OUT/images/<key folder>/<stem>-<hash>.<ext>  generated images (see ``outputs``)
    OUT/manifests/part-<rank>-of-<world>.jsonl   per-rank parts (appended while running)
    OUT/manifests/part-...jsonl.lock             locked by the part's live writer
    OUT/manifest.jsonl                           merged (tools/merge_manifests.py)

Row schema (all keys always present):

================  =======  ===============================================================
key               type     meaning
================  =======  ===============================================================
``source``        str      absolute path of the source image
``key``           str      source path relative to the source root ('/'-separated); the
                           image's identity (seed, output layout, dedup)
``variation``     int      variation index, 0..num_variations-1
``output``        str      generated image path relative to the manifest's folder
                           (``read_manifest`` makes it absolute); None if failed
``noise_level``   int      unCLIP ``noise_level`` used (0..999); None if failed
``fg_ratio``      float    foreground ratio p in [0, 1]; None if failed
``seed``          int      per-image seed (see ``seeding.image_seed``)
``generator``     str      generator id (pipeline path/hub id)
``clip_sim``      float    cosine similarity of the CLIP image embeddings of source and
                           generated image (filter low values later); None if failed
``status``        str      'ok' or 'failed'
``reason``        str      why it failed ('' when ok): ``'transient: ...'`` (a rerun
                           retries it) or ``'undecodable: ...'`` (see ``failures``)
================  =======  ===============================================================

A line cut short by a killed process (the last line, without a newline) is ignored by the
readers and removed before appending again.
"""
import json
import os
import os.path as osp
from glob import glob
from typing import Dict, Iterable, Iterator, List, Optional

FIELDS = ('source', 'key', 'variation', 'output', 'noise_level', 'fg_ratio', 'seed',
          'generator', 'clip_sim', 'status', 'reason')
MERGED_NAME = 'manifest.jsonl'
PARTS_DIR = 'manifests'


def part_path(out_dir: str, rank: int, world_size: int) -> str:
    """Path of the per-rank manifest part."""
    return osp.join(out_dir, PARTS_DIR, f'part-{rank:05d}-of-{world_size:05d}.jsonl')


def part_paths(out_dir: str) -> List[str]:
    """The manifest parts under ``out_dir``, oldest first (by last write, then name), so that
    in their rows in order a later row of an image is a newer one."""
    parts = glob(osp.join(out_dir, PARTS_DIR, 'part-*.jsonl'))
    return sorted(parts, key=lambda p: (osp.getmtime(p), p))


def iter_rows(path: str) -> Iterator[Dict]:
    """Rows of one manifest file; a truncated last line is skipped.

    Raises:
        ValueError: a line other than the last is not valid JSON (the file is corrupt).
    """
    with open(path, 'r', encoding='utf-8') as f:
        lines = f.read().split('\n')
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(lines) - 1:  # no trailing newline: cut short by a kill
                return
            raise ValueError(f'{path}:{i + 1}: corrupt manifest line ({exc})') from exc


def read_manifest(path: str, status: Optional[str] = 'ok', absolute: bool = True) -> List[Dict]:
    """Rows of a manifest (a file, or a folder holding ``manifest.jsonl``).

    Args:
        path: manifest file or generation output folder.
        status: keep only rows with this status ('ok' by default); None keeps all.
        absolute: turn ``output`` into an absolute path. Defaults to True.
    """
    if osp.isdir(path):
        path = osp.join(path, MERGED_NAME)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'Manifest not found: {path!r}. Generate views with tools/generate_views.py and '
            'merge the per-rank parts with tools/merge_manifests.py OUT_DIR.')
    root = osp.dirname(osp.abspath(path))
    rows = []
    for row in iter_rows(path):
        if status is not None and row.get('status') != status:
            continue
        if absolute and row.get('output'):
            row['output'] = osp.normpath(osp.join(root, row['output']))
        rows.append(row)
    return rows


def row_id(row: Dict) -> tuple:
    """Identity of a row: (key, variation)."""
    return row['key'], int(row['variation'])


class ManifestWriter:
    """Appends rows to a manifest part, flushing (and fsyncing) after every row."""

    def __init__(self, path: str, fsync: bool = True) -> None:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
        _drop_partial_last_line(path)
        self.path = path
        self.fsync = fsync
        self._f = open(path, 'a', encoding='utf-8')

    def write(self, row: Dict) -> None:
        missing = [k for k in FIELDS if k not in row]
        if missing:
            raise KeyError(f'manifest row lacks {missing}')
        self._f.write(json.dumps({k: row[k] for k in FIELDS}) + '\n')
        self._f.flush()
        if self.fsync:
            os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> 'ManifestWriter':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _drop_partial_last_line(path: str) -> None:
    """Cut a file back to its last newline (a killed writer may leave half a line)."""
    if not osp.isfile(path) or osp.getsize(path) == 0:
        return
    with open(path, 'rb+') as f:
        data = f.read()
        if not data.endswith(b'\n'):
            f.truncate(data.rfind(b'\n') + 1)


def rows_in(paths: Iterable[str]) -> List[Dict]:
    """All rows of several manifest files, in file order."""
    return [row for p in paths if osp.isfile(p) for row in iter_rows(p)]
