"""Pure pair-quality math of GenView (arXiv:2403.12003, Sec. 3.3), on patch tokens.

For each view: token scores ``a_k = F_k . u``, per-image min-max ``ahat``, soft masks
``M^f = ahat / (sum ahat + eps)`` and ``M^b = (1 - ahat) / (sum (1 - ahat) + eps)``, pooled
``z^f = sum_k M^f_k F_k`` and ``z^b``; then ``s_f = cos(z^f, z^f+)``, ``s_b = cos(z^b, z^b+)`` and
``q = s_f - s_b``.
"""
from typing import Tuple

import torch
import torch.nn.functional as F

EPS = 1e-7


def soft_masks(scores: torch.Tensor, eps: float = EPS) -> Tuple[torch.Tensor, torch.Tensor]:
    """Soft foreground/background masks from token scores (no threshold).

    Args:
        scores (torch.Tensor): (B, N) token scores ``a_k``.
        eps (float): stabiliser of the min-max and of the mask sums. Defaults to 1e-7.

    Returns:
        Tuple[torch.Tensor, torch.Tensor]: ``(M^f, M^b)``, each (B, N).
    """
    lo = scores.min(dim=1, keepdim=True).values
    hi = scores.max(dim=1, keepdim=True).values
    ahat = (scores - lo) / (hi - lo + eps)
    fg = ahat / (ahat.sum(dim=1, keepdim=True) + eps)
    bg = (1 - ahat) / ((1 - ahat).sum(dim=1, keepdim=True) + eps)
    return fg, bg


def pooled_features(tokens: torch.Tensor,
                    direction: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Foreground and background features of each image.

    Args:
        tokens (torch.Tensor): (B, N, D) patch tokens ``F``.
        direction (torch.Tensor): (D,) PCA direction ``u``.

    Returns:
        Tuple[torch.Tensor, torch.Tensor]: ``(z^f, z^b)``, each (B, D).
    """
    scores = tokens @ direction.to(tokens)
    fg, bg = soft_masks(scores)
    return (torch.einsum('bn,bnd->bd', fg, tokens), torch.einsum('bn,bnd->bd', bg, tokens))


def pair_quality(tokens1: torch.Tensor, tokens2: torch.Tensor, direction: torch.Tensor
                 ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Foreground/background similarities and quality of each positive pair.

    Args:
        tokens1 (torch.Tensor): (B, N, D) tokens of the first views.
        tokens2 (torch.Tensor): (B, N, D) tokens of the second views.
        direction (torch.Tensor): (D,) PCA direction ``u``.

    Returns:
        Tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ``(s_f, s_b, q)``, each (B,), with
        ``q = s_f - s_b`` in [-2, 2].
    """
    zf1, zb1 = pooled_features(tokens1, direction)
    zf2, zb2 = pooled_features(tokens2, direction)
    s_f = F.cosine_similarity(zf1, zf2, dim=1)
    s_b = F.cosine_similarity(zb1, zb2, dim=1)
    return s_f, s_b, s_f - s_b
