"""A toy COCO-format dataset (filled rectangles and ellipses with polygon masks) for the tiny
Mask R-CNN (configs/demo/mask-rcnn_r18_fpn_tiny_cpu.py); ``tools/make_toy_coco.py`` writes one."""
import json
import os
import os.path as osp

import numpy as np


def write_coco_shapes(folder: str, n: int, size: int = 64, seed: int = 0) -> str:
    """Draw ``n`` images of filled rectangles and ellipses with COCO polygon masks.

    Writes ``folder/images/*.png`` and ``folder/annotations.json`` (categories: rectangle,
    ellipse); returns the annotation path.
    """
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(folder, 'images'), exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        img = Image.new('RGB', (size, size), tuple(int(c) for c in rng.integers(0, 80, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 3))):
            w, h = (int(v) for v in rng.integers(size // 4, size // 2, 2))
            x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            cat = int(rng.integers(1, 3))
            colour = tuple(int(c) for c in rng.integers(150, 256, 3))
            if cat == 1:
                poly = [x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]
            else:
                t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
                xs = x0 + w / 2 + (w / 2) * np.cos(t)
                ys = y0 + h / 2 + (h / 2) * np.sin(t)
                poly = [float(v) for xy in zip(xs, ys) for v in xy]
            draw.polygon(poly, fill=colour)
            annotations.append(dict(id=len(annotations) + 1, image_id=i + 1, category_id=cat,
                                    bbox=[x0, y0, w, h], area=float(w * h), iscrowd=0,
                                    segmentation=[[float(v) for v in poly]]))
        name = f'shape_{i:04d}.png'
        img.save(osp.join(folder, 'images', name))
        images.append(dict(id=i + 1, file_name=name, width=size, height=size))
    ann = osp.join(folder, 'annotations.json')
    with open(ann, 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=[dict(id=1, name='rectangle'), dict(id=2, name='ellipse')]), f)
    return ann
