"""Test data and tiny models. The tiny models and photos live in :mod:`genview_mm.demo` (the demo
uses them too); COCO shapes and fake manifests are test-only."""
import os
import os.path as osp
from typing import List

import numpy as np

from genview_mm.demo.photos import PHOTO_FILES, sample_photos, write_photos  # noqa: F401
from genview_mm.demo.tiny_models import save_tiny_clip_vision, save_tiny_unclip  # noqa: F401


def write_coco_shapes(folder: str, n: int, size: int = 64, seed: int = 0) -> str:
    """Draw ``n`` images of filled rectangles and ellipses with COCO polygon masks.

    Writes ``folder/images/*.png`` and ``folder/annotations.json`` (categories: rectangle,
    ellipse); returns the annotation path.
    """
    import json

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


def write_fake_manifest(folder: str, sources: List[str], src_root: str,
                        levels=(100, 200, 0, 300, 400, 100)) -> str:
    """A generation manifest whose 'generated views' are solid images of value 10*(i+1) (so
    tests can tell them apart), plus one failed row; returns the manifest path."""
    import json

    from PIL import Image
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
