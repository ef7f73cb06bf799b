"""The settings that decide a view's pixels, names and shards, recorded in
``OUT/generation_settings.json`` once the model has loaded and matched by every rerun before any
model loads (the model by a fingerprint of its weights: a moved folder or a hub id still
match); and what ``--overwrite`` may delete."""
import argparse
import glob
import json
import os
import os.path as osp
from contextlib import ExitStack
from typing import Dict, List, Optional

from ...foreground.encoder_identity import file_sha256, is_fingerprint, model_fingerprint
from ...generation.pipeline_loader import local_folder, native_size
from ...structures.manifest import MERGED_NAME
from ...utils.atomic_write import atomic_write, create_once
from ...utils.file_lock import FileLock
from ...utils.file_safety import lies_under
from . import SettingsMismatch, SetupError
from .shards import IMAGES_DIR, SHARDS_DIR, read_row_files, row_files

SETTINGS_NAME = 'generation_settings.json'
# bump when the code changes the views (or their names) that the same settings give
OUTPUT_FORMAT = 3  # 3: sources decoded by OpenCV as in training (EXIF, 16 bit); fixed shards
_JPEG_LIKE = ('.jpg', '.jpeg', '.webp')
_UNRECORDED = {'output': 'pil'}  # what a record from before a setting existed had


def settings_of(gen, args: argparse.Namespace) -> Dict:
    """What changes the views' pixels, names or shards (JSON types): ``gen``'s
    ``pixel_settings()``, the fingerprint of its model's weights, and the tool's ``--pca``,
    ``--ext``, ``--quality``, ``--shard-size``."""
    return json.loads(json.dumps(dict(
        gen.pixel_settings(), format=OUTPUT_FORMAT,
        pretrained=model_fingerprint(local_folder(gen.pretrained)),
        pca_sha256=file_sha256(args.pca), ext=args.ext,
        quality=args.quality if args.ext in _JPEG_LIKE else None, shard_size=args.shard_size)))


def read_settings(out_dir: str) -> Optional[Dict]:
    """The settings record; None without one, ``{}`` for an empty or damaged one (it matches
    no settings: only ``--overwrite`` goes on)."""
    path = osp.join(out_dir, SETTINGS_NAME)
    if not osp.isfile(path):
        return None
    try:
        with open(path, encoding='utf-8') as f:
            settings = json.load(f)
    except ValueError:
        settings = None
    return settings if isinstance(settings, dict) else {}


def settings_diff(old: Dict, new: Dict) -> List[str]:
    """``'name: old -> new'`` for every setting that differs (pure)."""
    def get(d: Dict, k: str):
        return d.get(k, _UNRECORDED.get(k, '(not recorded)'))
    return [f'{k}: {get(old, k)!r} -> {get(new, k)!r}' for k in sorted(set(old) | set(new))
            if get(old, k) != get(new, k)]


def check_settings(out_dir: str, settings: Dict, overwrite: bool = False,
                   pretrained: Optional[str] = None) -> bool:
    """Raise :class:`SettingsMismatch` unless ``settings`` may resume ``out_dir`` or
    ``overwrite`` may clear it (only where this tool's settings record is): True for the
    latter, the views there are to be cleared. ``pretrained``: the model as given, whose
    whole-folder fingerprint an older record may hold."""
    old = read_settings(out_dir)
    if old is None:
        images = osp.join(out_dir, IMAGES_DIR)
        if (row_files(out_dir) or osp.isfile(osp.join(out_dir, MERGED_NAME))
                or osp.isdir(osp.join(out_dir, 'manifests'))
                or (osp.isdir(images) and os.listdir(images))):
            raise SettingsMismatch(
                f'{out_dir} holds images or manifests but no {SETTINGS_NAME} of this tool, so '
                "they cannot be checked against this run's settings, and --overwrite will not "
                'delete what this tool did not record: use a new --out-dir (or delete them '
                'yourself).')
        return False
    name = old.get('pretrained')
    weights = is_fingerprint(name)
    folder = local_folder(name) if isinstance(name, str) and not weights else None
    if folder and osp.isdir(folder):  # recorded by its hub id
        size = old.get('gen_size')
        old = dict(old, pretrained=model_fingerprint(folder),
                   gen_size=None if size == native_size(folder) else size)
    elif weights and not is_fingerprint(settings.get('pretrained')):
        old = dict(old, pretrained=settings.get('pretrained'), gen_size=settings.get(
            'gen_size'))  # a hub id not downloaded yet (its native size unknown): compared
        # once it has loaded, with the settings taken again
    elif weights and pretrained and name != settings.get('pretrained') and name == \
            model_fingerprint(local_folder(pretrained), whole_folder=True):  # an older record
        old = dict(old, pretrained=settings.get('pretrained'))
    diff = settings_diff(old, settings)
    if diff and not overwrite:
        raise SettingsMismatch(
            f'{out_dir} holds views generated with other settings '
            f"({osp.join(out_dir, SETTINGS_NAME)}{', empty or damaged' if not old else ''}); "
            "resuming would mix them with this run's:\n  " + '\n  '.join(diff) +
            '\nUse a new --out-dir, or pass --overwrite to delete the views and records this '
            'tool wrote there and start over.')
    return bool(diff)


def write_settings(out_dir: str, settings: Dict, pretrained: Optional[str] = None) -> None:
    """Create the settings record unless another worker created it first (the first one
    stays), then check it holds these settings (``pretrained``: see :func:`check_settings`). A
    record that names the same model otherwise (a hub id, an older fingerprint) is replaced by
    these settings, unless it changed since it was checked: later starts compare it at once."""
    path, text = osp.join(out_dir, SETTINGS_NAME), json.dumps(settings, indent=1,
                                                               sort_keys=True) + '\n'
    create_once(path, text)
    seen = read_settings(out_dir)
    check_settings(out_dir, settings, pretrained=pretrained)
    now = read_settings(out_dir)
    if is_fingerprint(settings.get('pretrained')) and now != settings and now == seen:
        with atomic_write(path) as f:
            f.write(text)


def clear_outputs(out_dir: str) -> int:
    """``--overwrite``: with every shard lock held (no live writer), delete the views the
    records list (inside ``out_dir`` only), the records, the merged manifest and the settings
    record (none without it); the count."""
    if read_settings(out_dir) is None:
        raise SettingsMismatch(f'{out_dir} has no {SETTINGS_NAME}: --overwrite deletes only '
                               'what this tool recorded; use a new --out-dir')
    root = osp.realpath(out_dir)
    with ExitStack() as stack:
        for path in sorted(glob.glob(osp.join(out_dir, SHARDS_DIR, '*.lock'))):
            stack.enter_context(FileLock(path))
        files = row_files(out_dir)
        try:
            views = {osp.join(out_dir, r.output) for r in read_row_files(files) if r.output}
        except ValueError as exc:  # a damaged record: its views cannot all be listed
            raise SetupError(f'{exc}: delete that file (its views are then not deleted, the '
                             'new run writes over them) and rerun') from None
        targets = {v for v in views if lies_under(osp.realpath(v), root)} | set(files)
        targets = sorted(t for t in targets | {osp.join(out_dir, MERGED_NAME)} if osp.isfile(t))
        # the settings record last: a clear cut short leaves a folder --overwrite still clears
        targets += [p for p in [osp.join(out_dir, SETTINGS_NAME)] if osp.isfile(p)]
        for path in targets:
            os.remove(path)
        for folder in (IMAGES_DIR, SHARDS_DIR):  # folders left empty (not a link's target's)
            top = osp.join(out_dir, folder)
            for d, _, _ in sorted(os.walk(top) if not osp.islink(top) else [], reverse=True):
                if not os.listdir(d):
                    os.rmdir(d)
    return len(targets)
