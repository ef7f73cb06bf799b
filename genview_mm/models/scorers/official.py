"""The official scoring path and the accuracy rule a faster scorer must keep.

The official GenView code scores a batch of pairs with two eager encoder calls (one per view)
under fp16 autocast, with float32 weights and NCHW tensors. :func:`official_scores` does that for
any patch encoder; :func:`score_errors` measures a path against a float32 reference, and
:func:`within_accuracy_rule` says whether a faster path is at least as close to it as the
official one (max ``|q - q_ref|`` and max relative ``|w - w_ref|``, ``w = N softmax(q)``).
:class:`OfficialStyleScorer` is a :class:`PairQualityScorer` that scores the official way (the
benchmarks' baseline arm).
"""
import contextlib
from typing import Dict, Iterator, Optional, Sequence

import torch
from torch import nn

from ..weighting import quality_weights
from .fast_path import resolve_switch
from .normalization import to_encoder_pixels
from .pair_quality_scorer import PairQualityScorer, PairScores
from .pair_scores import pair_quality


@contextlib.contextmanager
def no_tf32() -> Iterator[None]:
    """Float32 matmuls and convolutions in full precision inside the block (CUDA's TF32 off)."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@torch.no_grad()
def official_scores(encoder: nn.Module, direction: torch.Tensor, view1: torch.Tensor,
                    view2: torch.Tensor, dtype: Optional[torch.dtype] = torch.float16,
                    src_mean: Optional[Sequence[float]] = None,
                    src_std: Optional[Sequence[float]] = None) -> Dict[str, torch.Tensor]:
    """Scores the official way: one eager encoder call per view under autocast.

    Args:
        encoder (nn.Module): a patch encoder (float32 weights, NCHW) on the views' device.
        direction (torch.Tensor): (D,) PCA direction.
        view1 (torch.Tensor): (N, 3, H, W) first views, SSL-normalised with ``src_mean/std``.
        view2 (torch.Tensor): (N, 3, H, W) second views.
        dtype (torch.dtype, optional): autocast dtype; None for float32 without autocast (the
            reference; run it inside :func:`no_tf32`). Defaults to torch.float16.
        src_mean (Sequence[float], optional): SSL mean (0-255); None for raw pixels.
        src_std (Sequence[float], optional): SSL std (0-255).

    Returns:
        Dict[str, torch.Tensor]: ``s_f``, ``s_b`` and ``q``, each (N,) float32.
    """
    device_type = view1.device.type
    tokens = []
    for views in (view1, view2):
        with torch.autocast(device_type=device_type, enabled=False):
            x = to_encoder_pixels(views, src_mean, src_std, encoder.mean, encoder.std,
                                  size=encoder.input_size)
        with torch.autocast(device_type=device_type, dtype=dtype or torch.float32,
                            enabled=dtype is not None):
            tokens.append(encoder(x).float())
    u = direction.to(tokens[0].device)
    with torch.autocast(device_type=device_type, enabled=False):  # a training step's AMP too
        s_f, s_b, q = pair_quality(tokens[0], tokens[1], u.float())
    return dict(s_f=s_f, s_b=s_b, q=q)


def score_errors(q: torch.Tensor, q_ref: torch.Tensor) -> Dict[str, float]:
    """How far qualities ``q`` are from the reference ``q_ref``.

    Args:
        q (torch.Tensor): (N,) qualities of the path measured.
        q_ref (torch.Tensor): (N,) float32 reference qualities.

    Returns:
        Dict[str, float]: ``q`` = max ``|q - q_ref|`` and ``w`` = max ``|w - w_ref| / w_ref``
        of the weights ``w = N softmax(q)`` (gamma 1, over this batch).
    """
    q, q_ref = q.detach().double().cpu(), q_ref.detach().double().cpu()
    w = quality_weights(q).weights.double()
    w_ref = quality_weights(q_ref).weights.double()
    return dict(q=float((q - q_ref).abs().max()), w=float(((w - w_ref).abs() / w_ref).max()))


def within_accuracy_rule(errors: Dict[str, float], official: Dict[str, float],
                         slack: float = 1.0) -> bool:
    """Whether a path's errors are no larger than ``slack`` times the official path's."""
    return all(errors[k] <= slack * official[k] for k in ('q', 'w'))


class OfficialStyleScorer(PairQualityScorer):
    """A :class:`PairQualityScorer` scoring the official way: two eager encoder calls under
    autocast (where its ``autocast`` switch is on for the device), float32 weights, NCHW; the
    other speed switches are ignored. Same arguments."""

    @torch.no_grad()
    def forward(self, view1: torch.Tensor, view2: torch.Tensor,
                data_preprocessor: Optional[nn.Module] = None) -> PairScores:
        """Score the pairs ``(view1[i], view2[i])`` (see :meth:`PairQualityScorer.forward`)."""
        mean, std, bgr = self._ssl_normalisation(data_preprocessor)
        if bgr:
            view1, view2 = view1.flip(1), view2.flip(1)
            mean, std = mean and mean[::-1], std and std[::-1]
        enc = self.encoder.to(view1.device)
        amp = resolve_switch('autocast', self.switches['autocast'], view1.device, self._seen)
        scores = official_scores(enc, self.__dict__['_direction'], view1, view2.to(view1),
                                 self.autocast_dtype if amp else None, mean, std)
        return PairScores(scores['s_f'], scores['s_b'], scores['q'])
