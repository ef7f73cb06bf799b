"""Streaming 1-component PCA of patch tokens, the sign rule and the foreground threshold.

The fit never holds all tokens: pass 1 accumulates the token sum and the sum of outer products
(float64, D x D) and takes the top eigenvector of the covariance; pass 2 re-encodes the images
and keeps only their scores (N_images x N_tokens floats, ~10 MB for 10,000 ViT-H images) for
the sign rule and the threshold.

Sign rule ``'center'`` (documented, automatic): objects tend to sit in the middle of a photo, so
the direction is flipped if needed so that the mean score of the *centre* tokens (rows and
columns in the central half of the grid) exceeds the mean score of the *border* tokens (the
outermost ring of the grid). ``'+1'``/``'-1'`` keep/flip the eigenvector's sign as returned
(after the canonical sign fix: its largest-magnitude entry positive) for a manual override.

Threshold rules (``threshold_rule``):

* ``'quantile'`` (default): alpha is the ``1 - fg_fraction`` quantile of all token scores of the
  sample, so ``fg_fraction`` of the sample's tokens (default 40%, as the authors' README says)
  are foreground.
* ``'histogram'``: the rule of the authors' fit script, needed to regenerate their released
  views: a 200-bin histogram of all token scores, the first bin whose cumulative fraction
  reaches 0.65, alpha = that bin's left edge (about 35% of tokens above it). Their script looks
  the edge up in a dict keyed by cumulative fraction, so when empty bins follow, the left edge
  of the last bin with the same cumulative fraction is taken; :func:`alpha_histogram` does the
  same.
"""
from typing import Callable, Iterable, Tuple

import numpy as np
import torch
from torch import Tensor

from .pca import ForegroundPCA

SIGN_RULES = ('center', '+1', '-1')
FIT_THRESHOLD_RULES = ('quantile', 'histogram')
HISTOGRAM_BINS, HISTOGRAM_CDF = 200, 0.65


class CovarianceAccumulator:
    """Running sums for the mean and covariance of D-dimensional vectors (float64)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.count = 0
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, tokens: Tensor) -> None:
        """Add tokens of shape (..., D)."""
        x = tokens.detach().reshape(-1, self.dim).to('cpu', torch.float64)
        if not torch.isfinite(x).all():  # one NaN made the covariance NaN: 'eigh failed to
            raise ValueError(            # converge' at the end, naming nothing
                'the encoder gave non-finite tokens (NaN or inf): its weights are damaged, or '
                'it overflowed in half precision (fit in float32)')
        self.count += x.shape[0]
        self.sum += x.sum(0)
        self.outer += x.T @ x

    def mean(self) -> Tensor:
        return self.sum / max(self.count, 1)

    def covariance(self) -> Tensor:
        if self.count < 2:
            raise ValueError('need at least 2 tokens to fit a PCA')
        mean = self.mean()
        return (self.outer - self.count * torch.outer(mean, mean)) / (self.count - 1)

    def top_direction(self) -> Tensor:
        """Unit eigenvector of the largest eigenvalue, largest-magnitude entry made positive."""
        _, vectors = torch.linalg.eigh(self.covariance())
        v = vectors[:, -1]
        if v[v.abs().argmax()] < 0:
            v = -v
        return v


def center_border_masks(grid: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """Boolean (h*w,) masks of the centre (central half) and border (outer ring) tokens."""
    h, w = grid
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    centre = ((rows >= h // 4) & (rows < h - h // 4) & (cols >= w // 4) & (cols < w - w // 4))
    border = (rows == 0) | (rows == h - 1) | (cols == 0) | (cols == w - 1)
    return centre.flatten(), border.flatten()


def choose_sign(scores: Tensor, grid: Tuple[int, int], rule: str = 'center') -> int:
    """+1 or -1 for the direction whose ``scores`` (M, h*w) were computed, following ``rule``."""
    if rule not in SIGN_RULES:
        raise ValueError(f'sign rule must be one of {SIGN_RULES}, got {rule!r}')
    if rule != 'center':
        return int(rule)
    centre, border = center_border_masks(grid)
    if scores.shape[-1] != centre.numel():
        raise ValueError(f'scores have {scores.shape[-1]} tokens, grid {grid} has '
                         f'{centre.numel()}')
    gap = scores[..., centre].double().mean() - scores[..., border].double().mean()
    return 1 if gap >= 0 else -1


def alpha_for_fraction(scores: Tensor, fg_fraction: float) -> float:
    """Score threshold above which ``fg_fraction`` of ``scores`` lie."""
    if not 0.0 < fg_fraction < 1.0:
        raise ValueError(f'fg_fraction must be in (0, 1), got {fg_fraction}')
    values = scores.detach().reshape(-1).to('cpu', torch.float64).numpy()
    return float(np.quantile(values, 1.0 - fg_fraction))


def alpha_histogram(scores: Tensor, bins: int = HISTOGRAM_BINS,
                    cdf: float = HISTOGRAM_CDF) -> float:
    """The official threshold: left edge of the first histogram bin whose cumulative fraction
    reaches ``cdf`` (of the last bin sharing that cumulative fraction, see the module doc)."""
    values = scores.detach().reshape(-1).to('cpu', torch.float32).numpy()
    if values.size == 0:
        raise ValueError('no scores to threshold')
    counts, edges = np.histogram(values, bins=bins)
    cumulative = np.cumsum(counts) / np.sum(counts)
    first = int(np.argmax(cumulative >= cdf))
    last = first + int(np.sum(cumulative[first:] == cumulative[first])) - 1
    return float(edges[last])


def choose_alpha(scores: Tensor, rule: str, fg_fraction: float = 0.4) -> float:
    """Threshold of ``scores`` by ``rule`` (``'quantile'`` or ``'histogram'``)."""
    if rule == 'quantile':
        return alpha_for_fraction(scores, fg_fraction)
    if rule == 'histogram':
        return alpha_histogram(scores)
    raise ValueError(f'threshold rule must be one of {FIT_THRESHOLD_RULES}, got {rule!r}')


def fit_foreground_pca(batches: Callable[[], Iterable[Tensor]], grid: Tuple[int, int],
                       encoder: str, input_size: int, fg_fraction: float = 0.4,
                       sign_rule: str = 'center', threshold_rule: str = 'quantile',
                       progress: Callable[[Iterable, str], Iterable] = lambda it, _: it,
                       **record) -> ForegroundPCA:
    """Fit a :class:`ForegroundPCA` from token batches in two streaming passes.

    Args:
        batches: called once per pass; yields token tensors of shape (B, N, D), the same
            images in the same order each time.
        grid: token grid (h, w) with h * w == N.
        encoder: encoder id to record.
        input_size: encoder input size to record.
        fg_fraction: target foreground fraction of the quantile rule. Defaults to 0.4.
        sign_rule: 'center', '+1' or '-1' (see the module docstring). Defaults to 'center'.
        threshold_rule: 'quantile' or 'histogram' (see the module docstring).
            Defaults to 'quantile'.
        progress: wraps an iterable with a progress display (e.g. tqdm). Defaults to none.
        **record: more fields for the file (``encoder_arch``, ``fingerprint``).

    The file records the fraction of the fitted tokens that ends above alpha as
    ``fg_fraction``, and as ``sign_rule`` the rule with the sign 'center' chose
    (``'center (+1)'``: the same direction as ``sign_rule='+1'``).
    """
    if sign_rule not in SIGN_RULES:
        raise ValueError(f'sign rule must be one of {SIGN_RULES}, got {sign_rule!r}')
    if threshold_rule not in FIT_THRESHOLD_RULES:
        raise ValueError(f'threshold rule must be one of {FIT_THRESHOLD_RULES}, got '
                         f'{threshold_rule!r}')
    acc, num_images = None, 0
    for tokens in progress(batches(), 'pass 1/2 (covariance)'):
        acc = acc or CovarianceAccumulator(tokens.shape[-1])
        acc.update(tokens)
        num_images += tokens.shape[0]
    if acc is None:
        raise ValueError('no images to fit the foreground PCA on: none of them could be read; '
                         'check them (the warnings above name them) or give another source')
    pca = ForegroundPCA(direction=acc.top_direction(), mean=acc.mean(), alpha=0.0,
                        encoder=encoder, grid=grid, input_size=input_size,
                        fg_fraction=fg_fraction, num_images=num_images, sign_rule=sign_rule,
                        threshold_rule=threshold_rule, **record)
    scores = torch.cat([pca.scores(t.float()).cpu()
                        for t in progress(batches(), 'pass 2/2 (scores)')])
    sign = choose_sign(scores, grid, sign_rule)
    if sign_rule == 'center':  # which one it chose: '--sign' with the other flips the mask
        pca.sign_rule = f'center ({sign:+d})'
    pca.direction = pca.direction * sign
    scores = scores * sign
    pca.alpha = choose_alpha(scores, threshold_rule, fg_fraction)
    pca.fg_fraction = float((scores > pca.alpha).double().mean())
    return pca
