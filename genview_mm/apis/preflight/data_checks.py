"""Preflight checks of the data a config names: dataset folders, annotation files, evaluator
annotation files and the GenView manifest (parsed, and matched against a sample of the dataset).

Nothing scans a whole dataset: folders are checked for existence, image lists are read, and a
manifest's coverage is measured on at most :data:`SAMPLE` images.
"""
import json
import os
import os.path as osp
import random
import re
from typing import Iterator, List, Optional, Tuple

from genview_mm.utils.annotation_list import read_annotation_list
from genview_mm.utils.image_files import is_image_file

from .checklist import BROKEN, MISSING, NOTE, OK, Check

#: dataset images a manifest's coverage is measured on
SAMPLE = 200
SEMI_SUBSETS = ('python tools/make_semi_subsets.py --train-list data/imagenet/meta/train.txt '
                '--percent 1 10 --out-dir data/imagenet/meta')


def dataset_fix(kind: str, key: str) -> List[str]:
    """How to provide a dataset of ``kind`` (the config's dataset type)."""
    if 'Coco' in kind:
        make = ('download COCO 2017 into data/coco/ (annotations/instances_{train,val}2017.json, '
                'train2017/, val2017/), MMDetection\'s layout')
    elif kind == 'ImageNet':
        make = ('put ImageNet-1K under data/imagenet/ as MMPretrain expects (train/, val/, '
                'meta/train.txt, meta/val.txt)')
    else:
        make = f'create it (a {kind})'
    return [make, f'or point the config at yours: --cfg-options {key}.data_root=DIR']


def iter_datasets(node: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """(config key, dataset config) of a dataset and the datasets it wraps."""
    if not isinstance(node, dict):
        return
    inner = node.get('dataset')
    if isinstance(inner, dict):
        yield from iter_datasets(inner, key + '.dataset')
    for i, sub in enumerate(node.get('datasets') or []):
        yield from iter_datasets(sub, f'{key}.datasets.{i}')
    if inner is None and not node.get('datasets'):
        yield key, node


def _join(root: str, path: str) -> str:
    return path if not path or osp.isabs(path) or '://' in path else osp.join(root, path)


def dataset_paths(ds: dict) -> Tuple[str, Optional[str], List[str]]:
    """(data_root, annotation file or None, image folders) a dataset config reads."""
    root = ds.get('data_root') or ''
    ann = ds.get('ann_file') or ''
    prefix = ds.get('data_prefix') or ''
    split = ds.get('split') or ''
    if ds.get('type') == 'ImageNet' and split:  # mmpretrain's ImageNet defaults
        prefix = prefix or split
        if not ann and osp.isfile(osp.join(root, 'meta', f'{split}.txt')):
            ann = osp.join('meta', f'{split}.txt')
    folders = list(prefix.values()) if isinstance(prefix, dict) else [prefix]
    folders = [_join(root, f) for f in folders if f and isinstance(f, str)]
    return root, (_join(root, ann) if ann else None), folders


def check_dataset(key: str, ds: dict) -> List[Check]:
    """Existence of the dataset's root, annotation file and image folders."""
    kind = str(ds.get('type', 'dataset'))
    split = f" ({ds['split']})" if ds.get('split') else ''
    what = f'{kind}{split} data [{key}]'
    root, ann, folders = dataset_paths(ds)
    if root and not osp.isdir(root):
        return [Check(what, MISSING, f'{root} not found', dataset_fix(kind, key))]
    checks = []
    if ann is not None and not osp.isfile(ann):
        fix = [SEMI_SUBSETS] if 'percent' in osp.basename(ann) else dataset_fix(kind, key)
        checks.append(Check(what, MISSING, f'annotation file {ann} not found', fix))
    missing = [f for f in folders if not osp.isdir(f)]
    if missing:
        checks.append(Check(what, MISSING, f'image folder {missing[0]} not found',
                            dataset_fix(kind, key)))
    return checks or [Check(what, OK, ann or (folders[0] if folders else root))]


def check_evaluator(key: str, evaluator) -> List[Check]:
    """Annotation files an evaluator reads (e.g. CocoMetric's ``ann_file``)."""
    items = evaluator if isinstance(evaluator, (list, tuple)) else [evaluator]
    checks = []
    for ev in items:
        ann = ev.get('ann_file') if isinstance(ev, dict) else None
        if ann:
            status = OK if osp.isfile(ann) else MISSING
            fix = dataset_fix('Coco', key)[:1] + [f'or --cfg-options {key}.ann_file=FILE']
            checks.append(Check(f'{ev.get("type")} annotations [{key}]', status,
                                ann if status == OK else f'{ann} not found',
                                fix if status != OK else ()))
    return checks


def sample_images(ds: dict, k: int = SAMPLE, seed: int = 0) -> List[str]:
    """Up to ``k`` image paths of a dataset, read from its list file or from a few of its
    folders (never a full scan)."""
    root, ann, folders = dataset_paths(ds)
    rng = random.Random(seed)
    if ann and osp.isfile(ann):
        names = [name for name, _ in read_annotation_list(ann)]
        base = folders[0] if folders else root
        return [_join(base, n) for n in rng.sample(names, min(k, len(names)))]
    paths: List[str] = []
    for folder in folders or [root]:
        if not osp.isdir(folder):
            continue
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
        subdirs = [e.path for e in entries if e.is_dir()]
        paths += [e.path for e in entries if e.is_file() and is_image_file(e.name)]
        for sub in rng.sample(subdirs, min(len(subdirs), 20)):
            paths += [e.path for e in os.scandir(sub) if e.is_file() and is_image_file(e.name)]
    return rng.sample(paths, min(k, len(paths)))


MANIFEST_FIX = [
    'released views: python tools/import_views.py data/imagenet/train_variations '
    '--source-root data/imagenet/train --out data/genview/views/manifest.jsonl',
    'or generate them: python tools/generate_views.py data/imagenet/train --pca '
    'data/genview/pca/generator.pth --out-dir data/genview/views',
    'then set genview = dict(manifest=...) in the config or --cfg-options genview.manifest=...']


def manifest_coverage(path: str, sample: List[str], parse_first: int = 100
                      ) -> Tuple[int, int, Optional[str]]:
    """Stream a manifest once: (rows, sampled images with an ``ok`` row, one key).

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
    rows, found, example = 0, set(), None
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
            for sp in wanted.get(osp.basename(key), []):
                if source == sp or sp.endswith('/' + key.lstrip('/')):
                    found.add(sp)
    return rows, len(found), example


def check_manifest(manifest: Optional[str], ds: Optional[dict]) -> Check:
    """The GenView manifest exists, parses and matches a sample of the dataset's images."""
    what = 'GenView views manifest'
    if not manifest:
        return Check(what, MISSING, 'no manifest set', MANIFEST_FIX)
    path = osp.join(manifest, 'manifest.jsonl') if osp.isdir(manifest) else manifest
    if not osp.isfile(path):
        return Check(what, MISSING, f'{path} not found', MANIFEST_FIX)
    sample = sample_images(ds) if ds is not None else []
    try:
        rows, hits, key = manifest_coverage(path, sample)
    except (ValueError, OSError) as exc:
        return Check(what, BROKEN, f'{path}: {exc}', MANIFEST_FIX[:2])
    if rows == 0:
        return Check(what, BROKEN, f'{path} is empty', MANIFEST_FIX[:2])
    if not sample:
        return Check(what, OK, f'{path} ({rows} rows)')
    detail = f'{path}: {rows} rows; {hits} of {len(sample)} sampled dataset images have a view'
    if hits == 0:
        return Check(what, BROKEN, f'{detail} (a dataset image: {sample[0]}; a manifest key: '
                     f'{key})', ['generate or import views for this dataset, or set '
                                 'genview.source_root to the folder the keys are relative to'])
    return Check(what, OK if hits == len(sample) else NOTE, detail)
