"""Tiny randomly initialised models saved to disk, for tests that load them back through the
real ``from_pretrained(path)`` code (no hub is reachable in tests)."""
import os
import os.path as osp
from typing import List

import numpy as np


def save_tiny_clip_vision(path: str, image_size: int = 32, patch_size: int = 4,
                          hidden_size: int = 32, seed: int = 0) -> str:
    """A 2-layer CLIP vision tower (with projection) and its image processor, saved to ``path``.

    The token grid is ``(image_size // patch_size) ** 2`` (8x8 = 64 by default).
    """
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)
    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=hidden_size, intermediate_size=37, projection_dim=32,
                              num_hidden_layers=2, num_attention_heads=4, image_size=image_size,
                              patch_size=patch_size)
    model = CLIPVisionModelWithProjection(config).eval()
    model.save_pretrained(path)
    CLIPImageProcessor(size={'shortest_edge': image_size},
                       crop_size={'height': image_size, 'width': image_size}).save_pretrained(path)
    return path


def sample_photos(n: int, size: int = 64) -> List[np.ndarray]:
    """``n`` real RGB photos shipped with scikit-image, resized to ``size`` x ``size`` (uint8)."""
    from PIL import Image
    from skimage import data
    names = ['astronaut', 'chelsea', 'coffee', 'rocket', 'motorcycle_left', 'motorcycle_right',
             'horse', 'cat', 'hubble_deep_field', 'immunohistochemistry', 'retina', 'colorwheel']
    photos = []
    for i in range(n):
        img = np.asarray(getattr(data, names[i % len(names)])())
        if img.ndim == 2:
            img = np.stack([img] * 3, -1)
        img = img[..., :3]
        if img.dtype != np.uint8:
            img = (255 * (img.astype(np.float64) / max(img.max(), 1))).astype(np.uint8)
        pil = Image.fromarray(img).resize((size, size), Image.BILINEAR)
        if i >= len(names):  # distinct images beyond the list: mirror / rotate
            pil = pil.transpose(Image.FLIP_LEFT_RIGHT).rotate(90 * (i // len(names)))
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
