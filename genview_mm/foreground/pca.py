"""The fitted foreground PCA: one direction in a CLIP encoder's token space plus a threshold.

GenView (arXiv:2403.12003, Sec. 3.2) scores every patch token of a frozen CLIP encoder by its
projection on the first principal component of such tokens; tokens scoring above ``alpha`` are
foreground. The file written by :meth:`ForegroundPCA.save` records the encoder, token grid and
input size it was fitted with, so a file fitted for one encoder cannot silently be used with
another. Fit one with ``tools/fit_foreground_pca.py``.
"""
import os.path as osp
from dataclasses import asdict, dataclass
from typing import Optional, Tuple

import torch
from torch import Tensor

FORMAT = 'genview_mm.ForegroundPCA'
VERSION = 1
_REFIT = 'Fit one with: python tools/fit_foreground_pca.py --help'


class ForegroundPCAError(ValueError):
    """A foreground PCA file is missing, malformed or fitted for another encoder."""


@dataclass
class ForegroundPCA:
    """One principal direction of patch tokens and the foreground threshold on its scores.

    Args:
        direction (Tensor): unit vector of shape (D,).
        mean (Tensor): token mean of shape (D,) subtracted before projecting.
        alpha (float): tokens with score > alpha are foreground.
        encoder (str): id of the encoder the tokens came from (``CLIPPatchEncoder.name``).
        grid (Tuple[int, int]): token grid (h, w) of that encoder.
        input_size (int): square input size of that encoder in pixels.
        fg_fraction (float): foreground fraction alpha was chosen for. Defaults to 0.4.
        num_images (int): number of images the fit used. Defaults to 0.
        sign_rule (str): how the sign of ``direction`` was chosen ('center', '+1', '-1').
            Defaults to 'center'.
    """

    direction: Tensor
    mean: Tensor
    alpha: float
    encoder: str
    grid: Tuple[int, int]
    input_size: int
    fg_fraction: float = 0.4
    num_images: int = 0
    sign_rule: str = 'center'

    def __post_init__(self) -> None:
        self.direction = torch.as_tensor(self.direction, dtype=torch.float32).flatten()
        self.mean = torch.as_tensor(self.mean, dtype=torch.float32).flatten()
        if self.direction.shape != self.mean.shape:
            raise ForegroundPCAError(
                f'direction {tuple(self.direction.shape)} and mean {tuple(self.mean.shape)} '
                'must have the same shape (D,)')
        self.alpha = float(self.alpha)
        self.grid = (int(self.grid[0]), int(self.grid[1]))
        self.input_size = int(self.input_size)

    @property
    def dim(self) -> int:
        """Token width D."""
        return int(self.direction.numel())

    def scores(self, tokens: Tensor) -> Tensor:
        """Projection scores ``(tokens - mean) @ direction``: (..., N, D) -> (..., N)."""
        direction = self.direction.to(tokens.device, tokens.dtype)
        mean = self.mean.to(tokens.device, tokens.dtype)
        return (tokens - mean) @ direction

    def foreground_mask(self, tokens: Tensor) -> Tensor:
        """Boolean foreground mask: (..., N, D) -> (..., N)."""
        return self.scores(tokens) > self.alpha

    def foreground_ratio(self, tokens: Tensor) -> Tensor:
        """Fraction of foreground tokens per image: (B, N, D) -> (B,) float32 in [0, 1]."""
        return self.foreground_mask(tokens).float().mean(-1)

    def save(self, path: str) -> None:
        """Save as plain tensors and python types (loadable with ``weights_only=True``)."""
        state = asdict(self)
        state['direction'] = self.direction.detach().cpu().float().clone()
        state['mean'] = self.mean.detach().cpu().float().clone()
        state['grid'] = list(self.grid)
        state['format'] = FORMAT
        state['version'] = VERSION
        torch.save(state, path)

    @classmethod
    def load(cls, path: str, encoder: Optional[str] = None,
             dim: Optional[int] = None) -> 'ForegroundPCA':
        """Load a file written by :meth:`save`, checking it fits the encoder in use.

        Args:
            path (str): the file.
            encoder (str, optional): expected encoder id; checked when given.
            dim (int, optional): expected token width; checked when given.

        Raises:
            ForegroundPCAError: the file is missing, is not a foreground PCA file, or was
                fitted for another encoder or token width.
        """
        if not osp.isfile(path):
            raise ForegroundPCAError(f'Foreground PCA file not found: {path!r}. {_REFIT}')
        try:
            state = torch.load(path, map_location='cpu', weights_only=True)
        except Exception as exc:  # noqa: BLE001  (any unreadable file gets the same advice)
            raise ForegroundPCAError(
                f'{path!r} is not a foreground PCA file (torch.load with weights_only=True '
                f'failed: {type(exc).__name__}). {_REFIT}') from exc
        if not isinstance(state, dict) or state.get('format') != FORMAT:
            raise ForegroundPCAError(f'{path!r} is not a foreground PCA file. {_REFIT}')
        state = {k: v for k, v in state.items() if k not in ('format', 'version')}
        try:
            pca = cls(**state)
        except TypeError as exc:
            raise ForegroundPCAError(f'{path!r} is malformed ({exc}). {_REFIT}') from exc
        if encoder is not None and pca.encoder != encoder:
            raise ForegroundPCAError(
                f'{path!r} was fitted for encoder {pca.encoder!r}, not {encoder!r}. '
                f'Refit it for this encoder: python tools/fit_foreground_pca.py '
                f'--encoder {encoder} ...')
        if dim is not None and pca.dim != int(dim):
            raise ForegroundPCAError(
                f'{path!r} was fitted on {pca.dim}-d tokens of {pca.encoder!r}, but the '
                f'encoder in use gives {dim}-d tokens. {_REFIT}')
        return pca
