"""The per-image analysis behind a generated view: pixels, foreground ratio, noise level and
CLIP image embedding (arXiv:2403.12003, Sec. 3.2).

Pixels come from the pipeline's own ``feature_extractor`` (a ``CLIPImageProcessor``), so the
embedding that conditions the generation is exactly what ``StableUnCLIPImg2ImgPipeline`` would
compute from the image itself. An analysis is a dict ``{fg_ratio: [float], noise_level: [int],
embeds: Tensor (B, P)}``, so a runner can analyse an image once and hand the result to
``generate(..., analysis=...)``; :func:`select_analysis` cuts one.
"""
from typing import Any, Dict, Sequence

import torch

from .noise import noise_level_from_ratio


def analyze_pixels(encoder: Any, pca: Any, pixel_values: torch.Tensor, bins: Sequence[float],
                   levels: Sequence[int]) -> Dict[str, Any]:
    """One encoder pass: patch tokens -> foreground ratio -> noise level, and the embedding.

    Args:
        encoder (CLIPPatchEncoder): the pipeline's image encoder.
        pca (ForegroundPCA): foreground PCA fitted for that encoder.
        pixel_values (Tensor): (B, 3, S, S) from the pipeline's ``feature_extractor``
            (``AdaptiveNoiseGenerator.preprocess``).
        bins / levels: the noise rule (see :mod:`.noise`).
    """
    tokens, embeds = encoder.encode(pixel_values)
    finite = (torch.isfinite(tokens.flatten(1)).all(1) & torch.isfinite(embeds.flatten(1)).all(1))
    if not bool(finite.all()):  # NaN would read as no foreground: level 0, garbage views
        raise ValueError(f'the image encoder gave non-finite values for images '
                         f'{(~finite).nonzero().flatten().tolist()} of the batch (in float16, '
                         "an overflow: pass torch_dtype='bfloat16' or 'float32', the tool's "
                         '--dtype; else damaged pixels)')
    ratios = [float(p) for p in pca.foreground_ratio(tokens.float()).tolist()]
    noise = [noise_level_from_ratio(p, bins, levels) for p in ratios]
    return dict(fg_ratio=ratios, noise_level=noise, embeds=embeds)


def analysis_size(info: Dict[str, Any]) -> int:
    """Number of images an analysis describes (checks its parts agree)."""
    sizes = {len(info['fg_ratio']), len(info['noise_level']), int(info['embeds'].shape[0])}
    if len(sizes) != 1:
        raise ValueError(f'inconsistent analysis: fg_ratio, noise_level and embeds hold '
                         f'{sorted(sizes)} images')
    return sizes.pop()


def select_analysis(info: Dict[str, Any], indices: Sequence[int]) -> Dict[str, Any]:
    """The analysis of images ``indices`` (in that order)."""
    idx = list(indices)
    return dict(fg_ratio=[info['fg_ratio'][i] for i in idx],
                noise_level=[info['noise_level'][i] for i in idx], embeds=info['embeds'][idx])
