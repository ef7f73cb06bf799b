"""Test data drawn on the spot: photos, colour-coded class folders, a toy COCO set, a fake views
manifest and foreground PCA files. The photos, the toy COCO set and the tiny models live in
:mod:`genview_mm.demo` (the demo and tools/make_toy_coco.py use them too); the rest is
test-only."""
import json
import os
import os.path as osp
from types import SimpleNamespace
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image

from genview_mm.demo.coco_shapes import write_coco_shapes  # noqa: F401
from genview_mm.demo.photos import sample_photos, write_photos  # noqa: F401
from genview_mm.demo.tiny_models import save_tiny_clip_vision, save_tiny_unclip  # noqa: F401

CLASS_COLOURS = {'red': (200, 40, 40), 'green': (40, 180, 60), 'blue': (40, 60, 200)}


def write_class_folders(root: str, per_class: int, size: int = 32, seed: int = 0) -> List[str]:
    """``root/<class>/<i>.png`` images: a class colour plus noise and a random grey square.

    Returns:
        List[str]: the class names (sorted, i.e. the label order of CustomDataset).
    """
    rng = np.random.default_rng(seed)
    for name, colour in CLASS_COLOURS.items():
        os.makedirs(osp.join(root, name), exist_ok=True)
        for i in range(per_class):
            img = np.clip(np.array(colour)[None, None] + rng.normal(0, 25, (size, size, 3)), 0,
                          255).astype(np.uint8)
            s = int(rng.integers(size // 4, size // 2))
            x, y = rng.integers(0, size - s, 2)
            img[y:y + s, x:x + s] = int(rng.integers(60, 200))
            Image.fromarray(img).save(osp.join(root, name, f'{i}.png'))
    return sorted(CLASS_COLOURS)


def write_fake_manifest(folder: str, sources: List[str], src_root: str,
                        levels=(100, 200, 0, 300, 400, 100)) -> str:
    """A generation manifest whose 'generated views' are solid images of value 10*(i+1) (so
    tests can tell them apart), plus one failed row; returns the manifest path. At most 25
    sources (the values stop at 250)."""
    if len(sources) > 25:  # 10 * 26 overflows uint8 (numpy's OverflowError, far from here)
        raise ValueError(f'write_fake_manifest tells at most 25 views apart, got {len(sources)}')
    gen_dir = osp.join(folder, 'images')
    os.makedirs(gen_dir, exist_ok=True)
    rows = []
    for i, src in enumerate(sources):
        key = osp.relpath(src, src_root).replace(os.sep, '/')
        out = osp.join('images', osp.splitext(osp.basename(src))[0] + '.png')
        Image.fromarray(np.full((24, 24, 3), 10 * (i + 1), np.uint8)).save(osp.join(folder, out))
        rows.append(dict(source=osp.abspath(src), key=key, variation=0, output=out,
                         noise_level=levels[i % len(levels)], fg_ratio=0.5, seed=i, generator='t',
                         clip_sim=0.9 - 0.1 * i, status='ok', reason=''))
    rows.append(dict(source='/nowhere/x.jpg', key='x.jpg', variation=0, output=None,
                     noise_level=None, fg_ratio=None, seed=0, generator='t', clip_sim=None,
                     status='failed', reason='unreadable'))
    path = osp.join(folder, 'manifest.jsonl')
    with open(path, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows)
    return path


def photos_with_views(root: str, n: int, size: int, ext: str = '.jpg',
                      folder: str = 'cls') -> SimpleNamespace:
    """``n`` photos in ``root/images/<folder>/`` and a fake manifest of views of them in
    ``root/views/`` (:func:`write_fake_manifest`).

    Returns:
        SimpleNamespace: ``src_root`` (the dataset's data_root), ``sources`` (the photo paths),
        ``manifest`` and ``gen_dir`` (the folder of the views).
    """
    src_root = osp.join(root, 'images')
    sources = write_photos(osp.join(src_root, folder), n, size=size, ext=ext)
    manifest = write_fake_manifest(osp.join(root, 'views'), sources, src_root)
    return SimpleNamespace(src_root=src_root, sources=sources, manifest=manifest,
                           gen_dir=osp.join(root, 'views', 'images'))


def save_backbone_checkpoint(backbone, path: str) -> str:
    """A checkpoint as a pretraining run leaves it for conversion: ``backbone``'s weights under
    ``state_dict['backbone.*']``; returns ``path``."""
    import torch
    torch.save({'state_dict': {'backbone.' + k: v for k, v in backbone.state_dict().items()}},
               path)
    return path


def save_pca(path: str, encoder: str, dim: int, grid: Tuple[int, int], input_size: int,
             seed: int = 0, arch: Optional[str] = None,
             fingerprint: Optional[list] = None) -> str:
    """A foreground PCA file for ``encoder`` with a random unit direction (seeded), zero mean
    and alpha 0; ``arch`` and ``fingerprint`` record the encoder's identity as a fit does."""
    import torch

    from genview_mm.foreground import ForegroundPCA
    g = torch.Generator().manual_seed(seed)
    direction = torch.randn(dim, generator=g)
    ForegroundPCA(direction=direction / direction.norm(), mean=torch.zeros(dim), alpha=0.0,
                  encoder=encoder, grid=grid, input_size=input_size, encoder_arch=arch,
                  fingerprint=fingerprint).save(path)
    return path


def zero_tensor_bytes(path: str, out: str, count: int = 4096) -> str:
    """Write to ``out`` a copy of the zip checkpoint ``path`` with ``count`` bytes of its first
    tensor zeroed and the CRC-32s left as they were (a download with a gap, bit rot)."""
    import zipfile
    with open(path, 'rb') as f:
        data = bytearray(f.read())
    with zipfile.ZipFile(path) as zf:
        entry = next(i for i in zf.infolist() if '/data/' in i.filename)
    start = entry.header_offset + 30 + len(entry.filename.encode()) + len(entry.extra) + 64
    assert start + count <= entry.header_offset + entry.compress_size, 'tensor too small'
    data[start:start + count] = bytes(count)
    with open(out, 'wb') as f:
        f.write(bytes(data))
    return out

