"""The adaptive noise-level rule of GenView (arXiv:2403.12003, Sec. 3.2): pure functions.

A foreground ratio p in [0, 1] falls in a bin of ``bins`` (right-closed: (b_{i-1}, b_i]) and
gets that bin's noise level. The defaults give the paper's rule
``l = 100 * clip(ceil(5 p) - 1, 0, 4)``: p <= 0.2 -> 0, (0.2, 0.4] -> 100, ..., > 0.8 -> 400.
"""
import math
from typing import Sequence, Tuple

from ..structures.manifest import MAX_NOISE_LEVEL

DEFAULT_BINS: Tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
DEFAULT_LEVELS: Tuple[int, ...] = (0, 100, 200, 300, 400)


def validate_noise_rule(bins: Sequence[float] = DEFAULT_BINS,
                        levels: Sequence[int] = DEFAULT_LEVELS
                        ) -> Tuple[Tuple[float, ...], Tuple[int, ...]]:
    """Check a (bins, levels) rule and return it as tuples.

    Raises:
        ValueError: bins not strictly increasing inside [0, 1], ``len(levels) !=
            len(bins) + 1``, or a level that is not an integer in 0..999.
    """
    bins = tuple(float(b) for b in bins)
    levels = tuple(levels)
    if any(not 0.0 <= b <= 1.0 for b in bins):
        raise ValueError(f'noise bins must lie in [0, 1], got {bins}')
    if any(b1 >= b2 for b1, b2 in zip(bins, bins[1:])):
        raise ValueError(f'noise bins must be strictly increasing, got {bins}')
    if len(levels) != len(bins) + 1:
        raise ValueError(f'need len(levels) == len(bins) + 1 (one level per bin), got '
                         f'{len(levels)} levels for {len(bins)} bins')
    for level in levels:
        check_noise_level(level, f' in {levels}')
    return bins, tuple(int(v) for v in levels)


def check_noise_level(level, where: str = '') -> int:
    """``level`` as an int, or a ValueError unless it is an integer in 0..999 (``where`` ends
    the message)."""
    try:
        whole = not isinstance(level, (bool, str, bytes)) and float(level) == int(level)
    except (TypeError, ValueError, OverflowError):  # None, 'x', inf, nan
        whole = False
    if not whole or not 0 <= int(level) <= MAX_NOISE_LEVEL:
        raise ValueError(f'noise levels must be integers in 0..{MAX_NOISE_LEVEL} (the unCLIP '
                         f'noising scheduler has 1000 steps), got {level!r}{where}')
    return int(level)


def noise_level_from_ratio(p: float, bins: Sequence[float] = DEFAULT_BINS,
                           levels: Sequence[int] = DEFAULT_LEVELS) -> int:
    """Noise level for foreground ratio ``p``: ``levels[i]`` for the first bin with p <= bins[i].

    With the defaults this equals ``100 * clip(ceil(5 p) - 1, 0, 4)``.
    """
    bins, levels = validate_noise_rule(bins, levels)
    p = float(p)
    if math.isnan(p):
        raise ValueError('foreground ratio is NaN')
    if not 0.0 <= p <= 1.0:  # a share of tokens: anything else is a caller's bug, not a bin
        raise ValueError(f'foreground ratio must lie in [0, 1], got {p}')
    for edge, level in zip(bins, levels):
        if p <= edge:
            return level
    return levels[-1]
