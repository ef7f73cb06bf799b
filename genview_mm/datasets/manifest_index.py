"""Look-up from a dataset sample's image path to its generated views in a manifest."""
import os.path as osp
from collections import Counter
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import mmengine.fileio as fileio

from genview_mm.generation.manifest import MERGED_NAME, iter_rows, read_manifest

# (absolute path of the generated image, noise level or UNKNOWN_LEVEL) per variation
Views = List[Tuple[str, int]]
UNKNOWN_LEVEL = -1  # imported views (tools/import_views.py) may come without their noise level


def _norm(path: str) -> str:
    return osp.normpath(path).replace('\\', '/')


def outside_views_folder(output: str) -> Optional[str]:
    """``'absolute'`` or ``'climbs'`` when a row's ``output`` is absolute or climbs out of the
    manifest's folder (``..``, as tools/import_views.py writes for views imported in place),
    else None."""
    path = output.replace('\\', '/')
    if osp.isabs(path) or '://' in path:
        return 'absolute'
    return 'climbs' if osp.normpath(path).split('/')[0] == '..' else None


def _ok_rows(manifest: str, backend_args: Optional[dict] = None,
             stats: Optional[Counter] = None) -> Iterator[Dict]:
    """The 'ok' rows of a manifest with absolute ``output``, one at a time: what
    ``read_manifest`` returns, without a list of 1.28M row dicts (2.5 GB of RSS kept by every
    training process for ImageNet, against 0.66 GB for the index itself).

    The file is read through ``mmengine.fileio`` (``backend_args`` as in ``LoadImageFromFile``),
    so a manifest on another storage backend is fetched to a local file first; ``output`` paths
    are joined to the manifest's folder with ``fileio.join_path``. ``stats`` counts the rows
    not ok (``'failed'``, of which ``'undecodable'``), the ``'ok'`` rows, and their
    ``output`` places: ``'inside'`` the manifest's folder, ``'absolute'`` or ``'climbs'`` out.
    """
    stats = Counter() if stats is None else stats
    remote = '://' in manifest or (backend_args or {}).get('backend', 'local') != 'local'
    path = manifest
    if not remote:
        path = osp.join(manifest, MERGED_NAME) if osp.isdir(manifest) else manifest
        if not osp.isfile(path):
            read_manifest(path)  # raises FileNotFoundError, saying how to make the manifest
        path = osp.abspath(path)
    root = path.rsplit('/', 1)[0] if remote else osp.dirname(path)
    with fileio.get_local_path(path, backend_args=backend_args) as local:
        for row in iter_rows(local):
            if row.get('status') != 'ok':
                stats['failed'] += 1
                stats['undecodable'] += str(row.get('reason') or '').startswith('undecodable')
            else:
                stats['ok'] += 1
                if row.get('output'):
                    stats[outside_views_folder(row['output']) or 'inside'] += 1
                    out = fileio.join_path(root, row['output'], backend_args=backend_args)
                    row['output'] = out if remote else osp.normpath(out)
                yield row


class ManifestIndex:
    """Index of a generation manifest by source image.

    A sample's ``img_path`` is matched against, in order: the rows' absolute ``source`` path;
    its path relative to ``source_root`` (when given) against the rows' ``key``; and the longest
    trailing part of the path that equals a ``key`` (so ``/data/imagenet/train/n01/x.JPEG``
    finds key ``train/n01/x.JPEG`` or ``n01/x.JPEG`` wherever the data root is mounted).
    A row without a noise level (views imported without the official level lists) gets
    ``UNKNOWN_LEVEL`` (-1).

    Args:
        manifest (str): manifest file, or the generation output folder holding ``manifest.jsonl``.
        source_root (str, optional): the folder the generation tool's keys are relative to.
            Defaults to None (suffix matching).
        min_clip_sim (float, optional): drop generated views whose CLIP similarity to their
            source is below this. Defaults to None (keep all).
        backend_args (dict, optional): ``mmengine.fileio`` backend of the manifest.
            Defaults to None (local files).
    """

    def __init__(self, manifest: str, source_root: Optional[str] = None,
                 min_clip_sim: Optional[float] = None,
                 backend_args: Optional[dict] = None) -> None:
        self.manifest = manifest
        self.source_root = _norm(osp.abspath(source_root)) if source_root else None
        self.by_key: Dict[str, Views] = {}
        self.by_source: Dict[str, str] = {}
        self.num_rows = self.num_filtered = 0
        #: rows 'failed' (of them 'undecodable') and 'ok'; outputs 'inside', 'absolute', 'climbs'
        self.stats: Counter = Counter()
        for row in _ok_rows(manifest, backend_args, self.stats):
            sim = row.get('clip_sim')
            if min_clip_sim is not None and sim is not None and sim < min_clip_sim:
                self.num_filtered += 1
                continue
            key = _norm(row['key'])
            level = row.get('noise_level')
            level = UNKNOWN_LEVEL if level is None else int(level)
            self.by_key.setdefault(key, []).append((row['output'], level))
            self.by_source[_norm(row['source'])] = key
            self.num_rows += 1
        if not self.by_key:
            raise ValueError(f'The manifest {manifest!r} lists no usable generated image '
                             f'({self.num_filtered} filtered by min_clip_sim). Check that '
                             'tools/generate_views.py finished and tools/merge_manifests.py ran.')
        self.max_depth = max(k.count('/') for k in self.by_key) + 1

    def lookup(self, img_path: str) -> Views:
        """Generated views of one source image (empty list if it has none)."""
        path = _norm(osp.abspath(img_path))
        key = self.by_source.get(path)
        if key is not None:
            return self.by_key[key]
        if self.source_root and path.startswith(self.source_root + '/'):
            return self.by_key.get(path[len(self.source_root) + 1:], [])
        parts = path.split('/')
        for depth in range(min(self.max_depth, len(parts)), 0, -1):
            views = self.by_key.get('/'.join(parts[-depth:]))
            if views is not None:
                return views
        return []

    def coverage(self, img_paths: Iterable[str]) -> Tuple[int, int]:
        """(number of paths with at least one generated view, number of paths)."""
        hits = total = 0
        for p in img_paths:
            total += 1
            hits += bool(self.lookup(p))
        return hits, total
