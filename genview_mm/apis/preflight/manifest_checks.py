"""Preflight check of the GenView manifest: it parses, matches a sample of the dataset's images,
and the views of those sampled rows are there (where the dataset will look for them).

A manifest's coverage is measured on at most :data:`~.data_checks.SAMPLE` images and the
existence of their views on as many files; nothing scans the whole views folder.
"""
import json
import os
import os.path as osp
import re
from typing import List, NamedTuple, Optional

from .checklist import BROKEN, MISSING, NOTE, OK, Check
from .data_checks import sample_images

MANIFEST_FIX = [
    'released views: python tools/import_views.py data/imagenet/train_variations '
    '--source-root data/imagenet/train --out data/genview/views/manifest.jsonl',
    'or generate them: python tools/generate_views.py data/imagenet/train --pca '
    'data/genview/pca/generator.pth --out-dir data/genview/views',
    'then set genview = dict(manifest=...) in the config or --cfg-options genview.manifest=...']


class Coverage(NamedTuple):
    """What one pass over a manifest found.

    Attributes:
        rows (int): rows of the manifest.
        hits (int): sampled dataset images with an ``ok`` row.
        example (str, optional): one row's key.
        outputs (List[str]): ``output`` of the ``ok`` rows of the sampled images (of the first
            parsed rows when nothing was sampled), as written in the manifest.
    """
    rows: int
    hits: int
    example: Optional[str]
    outputs: List[str]


def manifest_coverage(path: str, sample: List[str], parse_first: int = 100) -> Coverage:
    """Stream a manifest once and match it against sampled dataset images.

    Only the first ``parse_first`` lines and the lines whose key names a sampled file are
    decoded, so 1.28M rows take seconds. A sampled image matches a row by absolute source path
    or by the row's key being a trailing part of its path (as :class:`ManifestIndex`).

    Raises:
        ValueError: a decoded line is not a valid manifest row.
    """
    wanted = {}
    for p in sample:
        wanted.setdefault(osp.basename(p), []).append(osp.abspath(p).replace(os.sep, '/'))
    key_re = re.compile(r'"key":\s*"((?:[^"\\]|\\.)*)"')
    rows, found, example, outputs = 0, set(), None, []
    with open(path, encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            rows += 1
            match = key_re.search(line)
            name = osp.basename(match.group(1)) if match else None
            if number > parse_first and name not in wanted:
                continue
            try:
                row = json.loads(line)
                key, source, status = row['key'], row['source'], row['status']
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f'line {number} is not a manifest row ({exc})') from exc
            example = example or key
            if status != 'ok':
                continue
            matched = [sp for sp in wanted.get(osp.basename(key), [])
                       if source == sp or sp.endswith('/' + key.lstrip('/'))]
            found.update(matched)
            if row.get('output') and (matched or not sample):
                outputs.append(row['output'])
    return Coverage(rows, len(found), example, outputs)


def check_outputs(path: str, outputs: List[str], detail: str) -> Optional[Check]:
    """A failing or noting check when sampled views are missing, else None."""
    root = osp.dirname(osp.abspath(path))
    local = [osp.normpath(osp.join(root, o)) for o in outputs if '://' not in o]
    absent = [p for p in local if not osp.isfile(p)]
    if not absent:
        return None
    what = 'GenView views manifest'
    found = f'{len(absent)} of {len(local)} sampled views are missing (e.g. {absent[0]})'
    if len(absent) < len(local):
        return Check(what, NOTE, f'{detail}; {found}: those images train on the original')
    return Check(what, BROKEN, f'{detail}; {found}: training would fall back to the original '
                 'for every image (plain SSL)',
                 [f"outputs are relative to the manifest's folder ({root}): move or copy the "
                  'views folder together with its manifest', *MANIFEST_FIX[:2]])


def check_manifest(manifest: Optional[str], ds: Optional[dict], prob: float = 1.0) -> Check:
    """The GenView manifest exists, parses, matches a sample of the dataset's images and the
    sampled views exist; nothing is needed at ``prob=0``."""
    what = 'GenView views manifest'
    if prob is not None and float(prob) <= 0:
        return Check(what, NOTE, "prob=0: no generated view is used (the pairs are "
                     "MultiView's), so no manifest is read")
    if not manifest:
        return Check(what, MISSING, 'no manifest set', MANIFEST_FIX)
    path = osp.join(manifest, 'manifest.jsonl') if osp.isdir(manifest) else manifest
    if not osp.isfile(path):
        return Check(what, MISSING, f'{path} not found', MANIFEST_FIX)
    sample = sample_images(ds) if ds is not None else []
    try:
        rows, hits, key, outputs = manifest_coverage(path, sample)
    except (ValueError, OSError) as exc:
        return Check(what, BROKEN, f'{path}: {exc}', MANIFEST_FIX[:2])
    if rows == 0:
        return Check(what, BROKEN, f'{path} is empty', MANIFEST_FIX[:2])
    if not sample:
        detail = f'{path} ({rows} rows)'
        return check_outputs(path, outputs, detail) or Check(what, OK, detail)
    detail = f'{path}: {rows} rows; {hits} of {len(sample)} sampled dataset images have a view'
    if hits == 0:
        return Check(what, BROKEN, f'{detail} (a dataset image: {sample[0]}; a manifest key: '
                     f'{key})', ['generate or import views for this dataset, or set '
                                 'genview.source_root to the folder the keys are relative to'])
    return check_outputs(path, outputs, detail) or \
        Check(what, OK if hits == len(sample) else NOTE, detail)
