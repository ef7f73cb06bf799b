"""The GenView weight rule: pair-quality scores -> per-sample loss weights.

``w = N * softmax(gamma * q)`` (arXiv:2403.12003, Sec. 3.3; the paper writes softmax(q), the
authors' code multiplies by N to keep the loss scale), detached, mean 1. A pure function, tested
at its boundaries without any model; GenViewMixin calls it on the scorer's qualities.
"""
from typing import NamedTuple

import torch

from genview_mm.utils.dist import gather_variable

NORMALIZE_MODES = ('local', 'global')


class QualityWeights(NamedTuple):
    """Result of :func:`quality_weights`.

    Attributes:
        weights (torch.Tensor): (N,) weights of this rank's samples, float32, no gradient.
        num_nonfinite (torch.Tensor): 0-d count of the non-finite scores in the normalised
            batch (local or global); when positive the whole batch fell back to uniform weights.
            A tensor, so that a training step does not wait for the GPU here.
    """
    weights: torch.Tensor
    num_nonfinite: torch.Tensor


def check_gamma(gamma: float) -> float:
    """``gamma`` as a float, or a ValueError unless it is finite and >= 0 (inf or NaN gives
    NaN weights that the non-finite fallback misses; a negative one favours the worst pairs)."""
    if not 0 <= float(gamma) < float('inf'):
        raise ValueError(f'gamma must be a finite number >= 0 (0: uniform weights; a '
                         f'negative one favours the worst pairs), got {gamma!r}')
    return float(gamma)


def check_weight_rule(gamma: float, normalize: str) -> None:
    """A ValueError unless ``gamma`` passes :func:`check_gamma` and ``normalize`` is one of
    :data:`NORMALIZE_MODES` (what a GenView algorithm checks when built, and the preflight
    before a job starts)."""
    check_gamma(gamma)
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f'normalize must be one of {NORMALIZE_MODES}, got {normalize!r}')


@torch.no_grad()
def quality_weights(q: torch.Tensor, gamma: float = 1.0,
                    normalize: str = 'local') -> QualityWeights:
    """Per-sample weights ``w = N * softmax(gamma * q)`` with mean 1 over the batch.

    Args:
        q (torch.Tensor): (N,) pair-quality scores ``s_f - s_b`` of this rank's samples.
        gamma (float): softmax temperature multiplier, finite and >= 0 (:func:`check_gamma`);
            0 gives uniform weights. Defaults to 1.0.
        normalize (str): ``'local'`` normalises over this rank's batch (as the official code,
            so results depend on the GPU count); ``'global'`` all-gathers ``q`` across ranks,
            normalises over the global batch (``N_global * softmax``, global mean 1) and returns
            this rank's slice. Defaults to ``'local'``.

    Returns:
        QualityWeights: the detached (N,) float32 weights and the number of non-finite scores;
        if any score of the normalised batch is non-finite, that whole batch gets weight 1.
    """
    if normalize not in NORMALIZE_MODES:
        raise ValueError(f'normalize must be one of {NORMALIZE_MODES}, got {normalize!r}')
    if q.dim() != 1:
        raise ValueError(f'q must be a 1-D (N,) tensor, got shape {tuple(q.shape)}')
    gamma = check_gamma(gamma)
    q = q.detach().to(torch.float64)
    n_local, offset = q.numel(), 0
    if normalize == 'global':
        q, offset = gather_variable(q)
    num_nonfinite = (~torch.isfinite(q)).sum()
    w = q.numel() * torch.softmax(gamma * q, dim=0)
    w = w / w.mean()  # removes the float rounding of the softmax sum
    w = torch.where(num_nonfinite > 0, torch.ones_like(q), w)  # chosen on the device: no sync
    w = w[offset:offset + n_local]
    return QualityWeights(w.to(torch.float32), num_nonfinite)

