"""Toy data the evaluation tests draw themselves: colour-coded class folders and a COCO set."""
import json
import math
import os
import os.path as osp
from typing import List, Sequence

import numpy as np
from PIL import Image, ImageDraw

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


def write_coco(root: str, split: str, num_images: int, size: int = 128, seed: int = 0) -> str:
    """Draw ``num_images`` images with 1-3 rectangles/ellipses and write ``<split>.json``.

    Images go to ``root/images/``; each object has a polygon mask, box and area.

    Returns:
        str: the annotation file path.
    """
    rng = np.random.default_rng(seed)
    img_dir = osp.join(root, 'images')
    os.makedirs(img_dir, exist_ok=True)
    images, anns = [], []
    for i in range(num_images):
        name = f'{split}_{i:03d}.jpg'
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
    path = osp.join(root, f'{split}.json')
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=COCO_CATEGORIES), f)
    return path
