"""Test data and tiny models. The tiny models, photos and toy COCO data live in
:mod:`genview_mm.demo` (the demo and tools/make_toy_coco.py use them too); fake manifests are
test-only."""
import os
import os.path as osp
from typing import List

import numpy as np

from genview_mm.demo.photos import PHOTO_FILES, sample_photos, write_photos  # noqa: F401
from genview_mm.demo.coco_shapes import write_coco_shapes  # noqa: F401
from genview_mm.demo.tiny_models import save_tiny_clip_vision, save_tiny_unclip  # noqa: F401


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
