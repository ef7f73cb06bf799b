import os
import os.path as osp

import pytest


def _write_photos(folder, n, size=48):
    """``n`` distinct real photos: the 4 first scikit-image photos of tiny_models.sample_photos
    (its list breaks past 4: skimage has no 'motorcycle_left'), cropped/flipped/rotated."""
    from PIL import Image
    from tiny_models import sample_photos
    base = [Image.fromarray(a) for a in sample_photos(4, 2 * size)]
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        img = base[i % 4]
        k = i // 4
        off = (k % 3) * size // 4
        img = img.crop((off, off, off + 3 * size // 2, off + 3 * size // 2)).resize((size, size))
        if k % 2:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        img = img.rotate(90 * (k // 3 % 4))
        paths.append(osp.join(folder, f'img_{i:04d}.jpg'))
        img.save(paths[-1])
    return paths


@pytest.fixture(scope='session')
def write_distinct_photos():
    return _write_photos
