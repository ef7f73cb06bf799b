"""Render scored positive pairs as a grid with s_f, s_b and w under each (paper Fig. 5)."""
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..models.scorers import PairScores
from ..models.scorers.normalization import to_encoder_pixels
from .marks import is_marked, save_marked

#: the mark of a grid written here (so a rerun may replace it, nothing else)
GRID_MARK = 'pair grid'


def views_to_uint8(x: torch.Tensor, mean: Optional[Sequence[float]],
                   std: Optional[Sequence[float]], bgr: bool = False) -> np.ndarray:
    """(B, 3, H, W) SSL-normalised views -> (B, H, W, 3) uint8 RGB images."""
    raw = to_encoder_pixels(x, mean, std, (0., 0., 0.), (1 / 255., ) * 3, bgr)
    return raw.clamp(0, 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


def render_pair_grid(images1: np.ndarray, images2: np.ndarray, scores: PairScores,
                     weights: torch.Tensor, path: str, cell: int = 128, columns: int = 4,
                     sort: bool = True) -> str:
    """Write a grid (PNG, or JPEG for a .jpg/.jpeg ``path``; marked as ours): each tile shows a
    pair side by side and ``s_f``, ``s_b``, ``w`` below.

    Args:
        images1 (np.ndarray): (N, H, W, 3) uint8 first views.
        images2 (np.ndarray): (N, H, W, 3) uint8 second views.
        scores (PairScores): scores of the N pairs.
        weights (torch.Tensor): (N,) their loss weights.
        path (str): output path (.png; .jpg or .jpeg: JPEG). Folders are created.
        cell (int): side of each view in pixels. Defaults to 128.
        columns (int): pairs per row. Defaults to 4.
        sort (bool): order pairs by decreasing weight. Defaults to True.

    Returns:
        str: ``path``.
    """
    n = len(images1)
    if n == 0 or len(images2) != n or weights.numel() != n:
        raise ValueError(f'need N >= 1 pairs with N scores; got {n}, {len(images2)} and '
                         f'{weights.numel()}')
    order = (torch.argsort(weights.cpu(), descending=True).tolist()
             if sort else list(range(n)))
    columns = min(columns, n)
    rows = (n + columns - 1) // columns
    text_h, pad = 16, 6
    tile_w, tile_h = 2 * cell + pad, cell + text_h + pad
    canvas = Image.new('RGB', (columns * tile_w + pad, rows * tile_h + pad), 'white')
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    for slot, i in enumerate(order):
        x0 = pad + (slot % columns) * tile_w
        y0 = pad + (slot // columns) * tile_h
        for j, img in enumerate((images1[i], images2[i])):
            tile = Image.fromarray(np.ascontiguousarray(img)).resize((cell, cell))
            canvas.paste(tile, (x0 + j * cell, y0))
        label = (f's_f={scores.s_f[i].item():.2f} s_b={scores.s_b[i].item():.2f} '
                 f'w={weights[i].item():.2f}')
        draw.text((x0, y0 + cell + 2), label, fill='black', font=font)
    return save_marked(canvas, path, GRID_MARK)


def is_pair_grid(path: str) -> bool:
    """Whether ``path`` is a picture :func:`render_pair_grid` wrote."""
    return is_marked(path, GRID_MARK)
