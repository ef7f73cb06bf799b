"""A toy COCO-format dataset (filled rectangles and ellipses with polygon masks) for the tiny
Mask R-CNN (configs/demo/mask-rcnn_r18_fpn_tiny_cpu.py); ``tools/make_toy_coco.py`` writes one."""
import json
import os
import os.path as osp
from typing import List, Tuple

import numpy as np

from genview_mm.utils.atomic_write import atomic_write
from genview_mm.utils.file_safety import check_replace, holds_text
from genview_mm.utils.image_files import save_image


def coco_shapes(n: int, size: int = 64, seed: int = 0) -> Tuple[List[tuple], dict]:
    """Draw ``n`` images of filled rectangles and ellipses with COCO polygon masks.

    Returns:
        Tuple[List[tuple], dict]: ``(file name, PIL image)`` pairs and the COCO dataset
        (images, annotations, categories: rectangle, ellipse); the same for the same arguments.
    """
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    pictures, images, annotations = [], [], []
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
        pictures.append((name, img))
        images.append(dict(id=i + 1, file_name=name, width=size, height=size))
    return pictures, dict(images=images, annotations=annotations,
                          categories=[dict(id=1, name='rectangle'), dict(id=2, name='ellipse')])


def annotation_text(dataset: dict) -> str:
    """The text of ``annotations.json`` for ``dataset`` (what :func:`write_coco_shapes` writes)."""
    return json.dumps(dataset)


def same_picture(path: str, img) -> bool:
    """Whether the image file ``path`` decodes to the pixels of ``img`` (mode, size and every
    pixel; False if it is not an image): such a file is what :func:`write_coco_shapes` would
    write there, whichever PNG encoder wrote it."""
    from PIL import Image
    try:
        with Image.open(path) as old:
            return (old.mode, old.size) == (img.mode, img.size) and old.tobytes() == img.tobytes()
    except (OSError, ValueError, Image.DecompressionBombError):
        return False


def write_coco_shapes(folder: str, n: int, size: int = 64, seed: int = 0,
                      overwrite: bool = False) -> str:
    """Draw :func:`coco_shapes` and write them: ``folder/images/*.png`` and
    ``folder/annotations.json``; returns the annotation path.

    An image already there with the same pixels, and an annotations.json with the same text (a
    rerun), are left as they are. An image with other content (a user's own, or one of other
    ``n``, ``size`` or ``seed``) raises :class:`~genview_mm.utils.file_safety.ReplaceRefused`
    before anything is written, unless ``overwrite``. A differing annotations.json is replaced
    without asking (tools/make_toy_coco.py checks it first).
    """
    pictures, dataset = coco_shapes(n, size, seed)
    images = [(osp.join(folder, 'images', name), img) for name, img in pictures]
    if not overwrite:  # check every image first: a refusal writes nothing
        for path, img in images:
            check_replace(path, lambda p, img=img: same_picture(p, img),
                          'the image these arguments draw', '--overwrite')
    os.makedirs(osp.join(folder, 'images'), exist_ok=True)
    for path, img in images:
        if not same_picture(path, img):  # atomically: a kill leaves no partial picture, and a
            save_image(img, path)        # link there is replaced, not written through
    ann, text = osp.join(folder, 'annotations.json'), annotation_text(dataset)
    if not holds_text(ann, text):
        with atomic_write(ann) as f:
            f.write(text)
    return ann
