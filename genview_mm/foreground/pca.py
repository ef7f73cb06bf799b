"""The fitted foreground PCA: one direction in an encoder's token space plus a threshold.

GenView (arXiv:2403.12003, Sec. 3.2) scores every patch token of a frozen CLIP encoder by its
projection on the first principal component of such tokens; tokens scoring above ``alpha`` are
foreground. The file written by :meth:`ForegroundPCA.save` records what the direction was fitted
for (encoder name, architecture, a fingerprint of its weights, token grid, input size) and how
(threshold rule, sign rule, projection convention), so a file fitted for one encoder is never
silently used with another. Fit one with ``tools/fit_foreground_pca.py`` or import the authors'
vectors with ``tools/import_official_pca.py``.
"""
import math
import os
import os.path as osp
from dataclasses import asdict, dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from ..utils.atomic_write import atomic_write

FORMAT = 'genview_mm.ForegroundPCA'
VERSION = 3  # 3: ``inclusive``
THRESHOLD_RULES = ('quantile', 'histogram', 'given', 'none')
_REFIT = ('Fit one with tools/fit_foreground_pca.py (or import the official vector with '
          'tools/import_official_pca.py)')


class ForegroundPCAError(ValueError):
    """A foreground PCA file is missing, malformed or fitted for another encoder."""


@dataclass
class ForegroundPCA:
    """One principal direction of patch tokens and the foreground threshold on its scores.

    Args:
        direction (Tensor): unit vector of shape (D,).
        mean (Tensor): token mean of shape (D,).
        alpha (float, optional): tokens with score > alpha (>= with ``inclusive``) are
            foreground; None for a file without a threshold (enough for the pair scorer, which
            uses soft masks).
        encoder (str): canonical id of the encoder the tokens came from.
        grid (Tuple[int, int]): token grid (h, w) of that encoder.
        input_size (int): square input size of that encoder in pixels.
        fg_fraction (float): fraction of the fitted tokens above ``alpha``. Defaults to 0.4.
        num_images (int): number of images the fit used. Defaults to 0.
        sign_rule (str): how the sign of ``direction`` was chosen. Defaults to 'center'.
        threshold_rule (str): how ``alpha`` was chosen: ``'quantile'`` (exact quantile for
            ``fg_fraction``), ``'histogram'`` (the official 200-bin rule), ``'given'`` or
            ``'none'``. Defaults to 'quantile'.
        center (bool): subtract ``mean`` before projecting; False is the official convention
            (``tokens @ direction``). Defaults to True.
        encoder_arch (str, optional): architecture signature of the encoder. Defaults to None.
        fingerprint (List[float], optional): weight fingerprint of the encoder (see
            :func:`~genview_mm.foreground.encoder_identity.weights_fingerprint`). Defaults to None.
        source (str): provenance, ``'fit'`` or ``'official:<file>'``. Defaults to 'fit'.
        inclusive (bool): a token scoring exactly ``alpha`` is foreground too (the official
            ``--mask-type lt``, ``tokens @ v <= t``, imported as ``-score >= -t``). Defaults
            to False.
    """

    direction: Tensor
    mean: Tensor
    alpha: Optional[float]
    encoder: str
    grid: Tuple[int, int]
    input_size: int
    fg_fraction: float = 0.4
    num_images: int = 0
    sign_rule: str = 'center'
    threshold_rule: str = 'quantile'
    center: bool = True
    encoder_arch: Optional[str] = None
    fingerprint: Optional[List[float]] = None
    source: str = 'fit'
    inclusive: bool = False

    def __post_init__(self) -> None:
        self.direction = torch.as_tensor(self.direction, dtype=torch.float32).flatten()
        self.mean = torch.as_tensor(self.mean, dtype=torch.float32).flatten()
        if self.direction.shape != self.mean.shape:
            raise ForegroundPCAError(
                f'direction {tuple(self.direction.shape)} and mean {tuple(self.mean.shape)} '
                'must have the same shape (D,)')
        if self.threshold_rule not in THRESHOLD_RULES:
            raise ForegroundPCAError(f'threshold_rule must be one of {THRESHOLD_RULES}, got '
                                     f'{self.threshold_rule!r}')
        self.alpha = None if self.alpha is None else float(self.alpha)
        if self.alpha is not None and not math.isfinite(self.alpha):  # nan: no foreground ever
            raise ForegroundPCAError(f'the foreground threshold alpha must be a finite number, '
                                     f'got {self.alpha}')
        if not (torch.isfinite(self.direction).all() and torch.isfinite(self.mean).all()):
            raise ForegroundPCAError('the direction and mean must be finite (they hold nan or '
                                     'inf)')
        if not self.direction.any():  # one noise level for every image, uniform pair weights
            raise ForegroundPCAError('the direction is all zeros: every token would score the '
                                     'same')
        if self.alpha is None:
            self.threshold_rule = 'none'
        self.grid = (int(self.grid[0]), int(self.grid[1]))
        self.input_size = int(self.input_size)
        if self.fingerprint is not None:
            self.fingerprint = [float(v) for v in self.fingerprint]

    @property
    def dim(self) -> int:
        """Token width D."""
        return int(self.direction.numel())

    def scores(self, tokens: Tensor) -> Tensor:
        """Projection scores: (..., N, D) -> (..., N); ``(tokens - mean) @ direction`` when
        ``center``, else ``tokens @ direction``; in float32 at least (float16 tokens moved
        masks; integer ones truncated the direction to zeros)."""
        dtype = torch.promote_types(tokens.dtype, torch.float32)
        tokens, direction = tokens.to(dtype), self.direction.to(tokens.device, dtype)
        if self.center:
            tokens = tokens - self.mean.to(tokens.device, dtype)
        return tokens @ direction

    def require_scorer_direction(self) -> 'ForegroundPCA':
        """``self``; :class:`ForegroundPCAError` for an official vector imported with
        ``--mask-type lt`` (its direction negated for the generator's rule): the authors' scorer
        uses the vector as it is, so foreground and background would swap and every pair's
        weight invert."""
        if self.source.startswith('official:') and self.inclusive:
            raise ForegroundPCAError(
                f'this PCA file ({self.source}) was imported with --mask-type lt, which negates '
                "the vector for the generator's foreground rule; the authors' scorer uses it "
                'as it is (foreground and background would swap, every pair weight invert): '
                'import the scorer vector without --mask-type (tools/import_official_pca.py).')
        return self

    def require_threshold(self) -> 'ForegroundPCA':
        """``self``; :class:`ForegroundPCAError` if it has no foreground threshold (a scorer-only
        import), which foreground ratios need."""
        if self.alpha is None:
            raise ForegroundPCAError(
                f'this PCA file ({self.source}, encoder {self.encoder!r}) has no foreground '
                'threshold, which foreground ratios need: re-import it with '
                'tools/import_official_pca.py --alpha A (or --fit-images DIR), or fit one with '
                'tools/fit_foreground_pca.py.')
        return self

    def foreground_mask(self, tokens: Tensor) -> Tensor:
        """Boolean foreground mask: (..., N, D) -> (..., N)."""
        scores = self.require_threshold().scores(tokens)
        return scores >= self.alpha if self.inclusive else scores > self.alpha

    def foreground_ratio(self, tokens: Tensor) -> Tensor:
        """Fraction of foreground tokens per image: (B, N, D) -> (B,) float64 in [0, 1], on the
        CPU.

        Counted, then divided in float64, so k/N is the nearest double to the exact fraction: a
        ratio on a bin edge of the noise rule (60 of 100 tokens) stays in its right-closed bin,
        where a float32 mean (3/5 -> 0.6000000238) read above the edge. The division is on the
        CPU: some devices (MPS) have no float64."""
        if tokens.shape[-2] == 0:  # 0/0: NaN ratios, which no noise bin takes
            raise ValueError(f'no tokens to count: got tokens of shape {tuple(tokens.shape)}')
        mask = self.foreground_mask(tokens)
        return mask.sum(-1).cpu().double() / mask.shape[-1]

    def describe(self) -> str:
        """One line naming the encoder the file was fitted for."""
        arch = f', {self.encoder_arch}' if self.encoder_arch else ''
        return f'{self.encoder!r}{arch}, {self.dim}-d tokens, {self.grid[0]}x{self.grid[1]} ' \
               f'grid at {self.input_size} px'

    def save(self, path: str) -> None:
        """Save as plain tensors and python types (loadable with ``weights_only=True``), through a
        temporary file renamed into place: a killed save leaves no truncated file."""
        state = asdict(self)
        state['direction'] = self.direction.detach().cpu().float().clone()
        state['mean'] = self.mean.detach().cpu().float().clone()
        state['grid'] = list(self.grid)
        state['format'] = FORMAT
        state['version'] = VERSION
        with atomic_write(path, 'wb') as f:
            torch.save(state, f)

    @classmethod
    def load(cls, path: str) -> 'ForegroundPCA':
        """Load a file written by :meth:`save` (version 1 files too).

        Check that it fits the encoder in use with
        :func:`genview_mm.foreground.check_pca_encoder`.

        Raises:
            ForegroundPCAError: the file is missing or is not a foreground PCA file.
        """
        if not isinstance(path, (str, os.PathLike)):  # an unset pca_path (None)
            raise ForegroundPCAError(f'No foreground PCA file given (the path is {path!r}): '
                                     f'set it (e.g. model.scorer.pca_path). {_REFIT}.')
        if not osp.isfile(path):
            raise ForegroundPCAError(f'Foreground PCA file not found: {path!r}. {_REFIT}.')
        if is_npy_file(path):  # the official configs name pca_vectors.npy itself
            raise ForegroundPCAError(
                f"{path!r} is a NumPy array (the authors' pca_vectors.npy?), not a foreground "
                f'PCA file: import it with tools/import_official_pca.py {path} --out NEW.pth '
                '(docs/released_views_and_official_artefacts.md) and give NEW.pth instead.')
        try:
            state = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as exc:  # noqa: BLE001  (any unreadable file gets the same advice)
            raise ForegroundPCAError(
                f'{path!r} is not a foreground PCA file (torch.load with weights_only=True '
                f'failed: {type(exc).__name__}). {_REFIT}.') from exc
        if not isinstance(state, dict) or state.get('format') != FORMAT:
            raise ForegroundPCAError(f'{path!r} is not a foreground PCA file. {_REFIT}.')
        try:  # a field missing or not usable (a file edited by hand: int('32px'), a short
            version = int(state.get('version', 1))  # grid) is said for the file
            if version <= VERSION:
                return cls(**{k: v for k, v in state.items() if k not in ('format', 'version')})
        except (TypeError, ValueError, IndexError) as exc:  # ForegroundPCAError is a ValueError
            detail = exc if isinstance(exc, ForegroundPCAError) else \
                f'{type(exc).__name__}: {exc}'
            raise ForegroundPCAError(f'{path!r} is malformed ({detail}). {_REFIT}.') from exc
        raise ForegroundPCAError(f'{path!r} was written by a newer genview_mm (format version '
                                 f'{version}); upgrade genview_mm.')


def is_npy_file(path: str) -> bool:
    """Whether ``path`` is a NumPy ``.npy`` array (its magic bytes), such as the authors'
    ``pca_vectors.npy``: a vector to import, not a PCA file (False if unreadable)."""
    try:
        with open(path, 'rb') as f:
            return f.read(6) == b'\x93NUMPY'
    except OSError:
        return False


def is_pca_file(path: str) -> bool:
    """Whether ``path`` is a file :meth:`ForegroundPCA.save` wrote (any version).

    Args:
        path (str): an existing file.

    Returns:
        bool: True if it loads (``weights_only``) as a dict tagged as a foreground PCA file.
    """
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # noqa: BLE001  (unreadable: not ours)
        return False
    return isinstance(state, dict) and state.get('format') == FORMAT
