"""A contact sheet of foreground masks over their images, to check a PCA fit at a glance."""
import math
from typing import List, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .marks import is_marked, save_marked

#: the mark of a sheet written here (so a rerun may replace it, nothing else)
SHEET_MARK = 'foreground contact sheet'


def square_tile(image: Image.Image, tile: int = 128) -> Image.Image:
    """Centre-cropped square RGB copy of ``image`` resized to ``tile`` px."""
    img = image.convert('RGB')
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((tile, tile), Image.BICUBIC)


def mask_overlay(image: Image.Image, mask: np.ndarray, tile: int = 128) -> Image.Image:
    """``image`` (centre-cropped square, ``tile`` px) with background dimmed and foreground
    tinted red; ``mask`` is a boolean (h, w) token grid."""
    img = square_tile(image, tile)
    m = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255).resize((tile, tile),
                                                                       Image.NEAREST)
    m = np.asarray(m)[..., None] > 0
    arr = np.asarray(img).astype(np.float32)
    red = np.array([255.0, 0.0, 0.0])
    out = np.where(m, 0.6 * arr + 0.4 * red, 0.35 * arr)
    return Image.fromarray(out.clip(0, 255).astype(np.uint8))


def contact_sheet(images: Sequence[Image.Image], masks: Sequence[np.ndarray], tile: int = 128,
                  columns: int = 8, caption: str = '') -> Image.Image:
    """Pairs (image, overlay) side by side, ``columns`` pairs per row, on a white sheet, with
    ``caption`` (e.g. the threshold rule) written above them."""
    if len(images) != len(masks) or not images:
        raise ValueError(f'need as many masks as images (>0), got {len(images)}, {len(masks)}')
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    pad, top = 4, 16 if caption else 0
    sheet = Image.new('RGB', (columns * (2 * tile + 3 * pad), rows * (tile + 2 * pad) + top),
                      'white')
    if caption:
        ImageDraw.Draw(sheet).text((pad, 2), caption, fill='black',
                                   font=ImageFont.load_default())
    for i, (img, mask) in enumerate(zip(images, masks)):
        r, c = divmod(i, columns)
        x, y = c * (2 * tile + 3 * pad) + pad, r * (tile + 2 * pad) + pad + top
        sheet.paste(square_tile(img, tile), (x, y))
        sheet.paste(mask_overlay(img, mask, tile), (x + tile + pad, y))
    return sheet


def save_contact_sheet(path: str, images: List[Image.Image], masks: List[np.ndarray],
                       tile: int = 128, columns: int = 8, caption: str = '') -> str:
    """Write :func:`contact_sheet` to ``path`` (PNG, marked as ours) and return the path."""
    save_marked(contact_sheet(images, masks, tile, columns, caption), path, SHEET_MARK, 'PNG')
    return path


def is_contact_sheet(path: str) -> bool:
    """Whether ``path`` is a PNG that :func:`save_contact_sheet` wrote.

    Args:
        path (str): an existing file.

    Returns:
        bool: True for a PNG carrying the sheet's text chunk.
    """
    return is_marked(path, SHEET_MARK)
