"""The settings that decide a generated view's pixels, recorded in ``OUT/generation_settings.json``.

A run writes the file (atomically, before its first image) and a rerun into the same
``--out-dir`` must match it: otherwise resuming would keep views made with another model,
PCA, step count, seed, ... and silently mix two datasets. Settings that only change speed or
placement (batch sizes, device, world size, level buckets) are not recorded. The dtype is:
fp16 and fp32 sampling give visibly different images for the same seed. The device is not:
GPU kernels of different models differ at rounding level too, and a requeue must be able to land
on another node.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import socket
from glob import glob
from typing import Dict, List, Optional

from .errors import SettingsMismatch
from .manifest import MERGED_NAME, PARTS_DIR
from .outputs import IMAGES_DIR

SETTINGS_NAME = 'generation_settings.json'
# bump when the code changes the views (or their names) that the same settings give
OUTPUT_FORMAT = 2


def file_sha256(path: str) -> str:
    """sha256 of a file's content (a PCA moved or copied elsewhere is still the same PCA)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def settings_path(out_dir: str) -> str:
    return osp.join(out_dir, SETTINGS_NAME)


def settings_diff(old: Dict, new: Dict) -> List[str]:
    """``'name: old -> new'`` for every setting that differs (pure)."""
    return [f'{k}: {old.get(k, "(not recorded)")!r} -> {new.get(k, "(not recorded)")!r}'
            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def has_outputs(out_dir: str) -> bool:
    """Whether ``out_dir`` holds manifests or images of an earlier run."""
    images = osp.join(out_dir, IMAGES_DIR)
    return (bool(glob(osp.join(out_dir, PARTS_DIR, 'part-*.jsonl')))
            or osp.isfile(osp.join(out_dir, MERGED_NAME))
            or (osp.isdir(images) and bool(os.listdir(images))))


def read_settings(out_dir: str) -> Optional[Dict]:
    path = settings_path(out_dir)
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def mismatch_message(out_dir: str, settings: Dict) -> Optional[str]:
    """Why ``settings`` cannot resume ``out_dir`` (None: they can, or nothing is there)."""
    old = read_settings(out_dir)
    if old is None:
        if not has_outputs(out_dir):
            return None
        head = (f'{out_dir} holds generated views but no {SETTINGS_NAME} (an older version '
                'wrote them), so they cannot be checked against this run\'s settings.')
    else:
        diff = settings_diff(old, settings)
        if not diff:
            return None
        head = (f'{out_dir} holds views generated with other settings '
                f'({settings_path(out_dir)}); resuming would mix them with this run\'s:\n  '
                + '\n  '.join(diff))
    return head + ('\nUse a new --out-dir, or pass --overwrite to delete its images and '
                   'manifests and start over (or delete the folder yourself).')


def check_settings(out_dir: str, settings: Dict) -> None:
    """Raise :class:`SettingsMismatch` unless ``settings`` may resume ``out_dir``."""
    message = mismatch_message(out_dir, settings)
    if message:
        raise SettingsMismatch(message)


def write_settings(out_dir: str, settings: Dict) -> None:
    """Create ``OUT/generation_settings.json`` atomically; if another process created it
    first, check that it holds the same settings."""
    os.makedirs(out_dir, exist_ok=True)
    path = settings_path(out_dir)
    tmp = f'{path}.{socket.gethostname()}-{os.getpid()}.partial'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(settings, f, indent=1, sort_keys=True)
        f.write('\n')
    try:
        os.link(tmp, path)  # atomic, and fails if the file exists
    except FileExistsError:
        pass
    except OSError:  # no hard links on this filesystem
        if not osp.exists(path):
            os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    check_settings(out_dir, settings)


def clear_outputs(out_dir: str) -> None:
    """Delete the images, manifests and settings of an earlier run (``--overwrite``)."""
    for name in (IMAGES_DIR, PARTS_DIR, '.tmp'):
        shutil.rmtree(osp.join(out_dir, name), ignore_errors=True)
    for name in (MERGED_NAME, SETTINGS_NAME):
        if osp.isfile(osp.join(out_dir, name)):
            os.remove(osp.join(out_dir, name))
