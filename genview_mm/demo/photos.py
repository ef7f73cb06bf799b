"""Real photos that ship inside scikit-image's wheel, for the demo and the tests (offline)."""
import logging
import os
import os.path as osp
from typing import List

import numpy as np

logger = logging.getLogger(__name__)

PHOTO_FILES = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png',
               'motorcycle_right.png', 'hubble_deep_field.jpg', 'retina.jpg', 'ihc.png',
               'color.png', 'logo.png', 'camera.png', 'coins.png', 'moon.png', 'brick.png',
               'grass.png', 'gravel.png', 'page.png', 'horse.png')
DISTINCT_PHOTOS = 4 * len(PHOTO_FILES)  # each file as is and in three rotations (76)


def sample_photos(n: int, size: int = 64) -> List[np.ndarray]:
    """``n`` real RGB photos shipped inside scikit-image's wheel, resized to ``size`` x ``size``.

    Beyond the 19 shipped files the photos repeat rotated (and mirrored), which gives
    :data:`DISTINCT_PHOTOS` (76) distinct ones; photo ``i`` beyond them is photo ``i - 76`` again,
    and a warning says so.
    """
    from PIL import Image
    try:
        from skimage import data
    except ImportError as exc:
        raise ImportError('the demo photos ship in scikit-image: pip install scikit-image (or '
                          "pip install 'genview_mm[demo]')") from exc
    if n > DISTINCT_PHOTOS:
        logger.warning('%d photos asked for, but the embedded set has %d distinct ones (%d files '
                       'x 4 rotations): photos %d-%d repeat them', n, DISTINCT_PHOTOS,
                       len(PHOTO_FILES), DISTINCT_PHOTOS + 1, n)
    photos = []
    for i in range(n):
        pil = Image.open(osp.join(data.data_dir, PHOTO_FILES[i % len(PHOTO_FILES)])).convert('RGB')
        pil = pil.resize((size, size), Image.BILINEAR)
        k = i // len(PHOTO_FILES)
        if k:
            pil = pil.rotate(90 * k)
            if k % 2:
                pil = pil.transpose(Image.FLIP_LEFT_RIGHT)
        photos.append(np.asarray(pil))
    return photos


def write_photos(folder: str, n: int, size: int = 64, ext: str = '.jpg') -> List[str]:
    """Write ``n`` photos as files under ``folder``; return their paths."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, img in enumerate(sample_photos(n, size)):
        p = osp.join(folder, f'img_{i:04d}{ext}')
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths
