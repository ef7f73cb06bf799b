"""Test data drawn on the spot: photos, colour-coded class folders, a toy COCO set, a fake views
manifest and foreground PCA files. The photos and the tiny models live in
:mod:`genview_mm.demo` (the demo uses them too); the rest is test-only."""
import json
import math
import os
import os.path as osp
from types import SimpleNamespace
from typing import List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from genview_mm.demo.photos import sample_photos, write_photos  # noqa: F401
from genview_mm.demo.tiny_models import save_tiny_clip_vision, save_tiny_unclip  # noqa: F401

CLASS_COLOURS = {'red': (200, 40, 40), 'green': (40, 180, 60), 'blue': (40, 60, 200)}
COCO_CATEGORIES = [{'id': 1, 'name': 'rectangle'}, {'id': 2, 'name': 'ellipse'}]


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


def ellipse_polygon(cx: float, cy: float, rx: float, ry: float, n: int = 16) -> List[float]:
    """A closed polygon ``[x0, y0, x1, y1, ...]`` approximating an ellipse."""
    pts = []
    for k in range(n):
        t = 2 * math.pi * k / n
        pts += [cx + rx * math.cos(t), cy + ry * math.sin(t)]
    return pts


def polygon_area(poly: Sequence[float]) -> float:
    xs, ys = np.array(poly[0::2]), np.array(poly[1::2])
    return float(0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1))))


def write_coco_shapes(root: str, num_images: int, size: int = 64, seed: int = 0,
                      split: Optional[str] = None) -> str:
    """Draw ``num_images`` images with 1-3 rectangles/ellipses; write their COCO annotations.

    Each object has a polygon mask, box and area (categories: rectangle, ellipse).

    Args:
        root (str): the data root; images go to ``root/images/``.
        num_images (int): how many images.
        size (int): their width and height. Defaults to 64.
        seed (int): the random seed. Defaults to 0.
        split (str, optional): a split name: ``root/<split>.json`` with images
            ``<split>_<i>.jpg`` (splits can share the image folder); None writes
            ``root/annotations.json`` (the demo configs' name) with ``shape_<i>.jpg``.
            Defaults to None.

    Returns:
        str: the annotation file path.
    """
    rng = np.random.default_rng(seed)
    img_dir = osp.join(root, 'images')
    os.makedirs(img_dir, exist_ok=True)
    images, anns = [], []
    for i in range(num_images):
        name = f'{split or "shape"}_{i:03d}.jpg'
        img = Image.fromarray(rng.integers(90, 140, (size, size, 3), dtype=np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 4))):
            cat = int(rng.integers(1, 3))
            w, h = rng.integers(size // 5, size // 2, 2)
            x0, y0 = rng.integers(0, size - w), rng.integers(0, size - h)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            if cat == 1:
                poly = [x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]
                draw.rectangle([x0, y0, x0 + w, y0 + h], fill=colour)
            else:
                poly = ellipse_polygon(x0 + w / 2, y0 + h / 2, w / 2, h / 2)
                draw.ellipse([x0, y0, x0 + w, y0 + h], fill=colour)
            poly = [float(v) for v in poly]
            xs, ys = poly[0::2], poly[1::2]
            anns.append(dict(id=len(anns) + 1, image_id=i + 1, category_id=cat, iscrowd=0,
                             segmentation=[poly], area=polygon_area(poly),
                             bbox=[min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]))
        img.save(osp.join(img_dir, name), quality=95)
        images.append(dict(id=i + 1, file_name=name, width=size, height=size))
    path = osp.join(root, f'{split or "annotations"}.json')
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=COCO_CATEGORIES), f)
    return path


def write_fake_manifest(folder: str, sources: List[str], src_root: str,
                        levels=(100, 200, 0, 300, 400, 100)) -> str:
    """A generation manifest whose 'generated views' are solid images of value 10*(i+1) (so
    tests can tell them apart), plus one failed row; returns the manifest path."""
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
