"""How per-sample weights enter the loss modules of upstream MMPretrain SSL heads.

Each rule runs the wrapped head's own ``loss`` (never a copy of it) while a temporary hook on
its ``loss_module`` turns the mean over rows into ``(1/R) sum_r w_r l_r``:

* ``CrossEntropyLoss`` (ContrastiveHead: MoCo v2, SimCLR; MoCoV3Head): the loss's own
  sample-wise ``weight`` argument, whose mean reduction is exactly ``mean(w * l)``.
* ``CosineSimilarityLoss`` (LatentPredictHead: BYOL, SimSiam): its ``mask`` argument gives
  ``sum(m l) / sum(m)``; with ``m = w / max(w)`` (its sum >= 1: weights that all round to 0,
  a rank's slice of a global softmax in float16, give no 0/0) and the output rescaled by
  ``sum(w) / R`` that is ``mean(w l)``, so weights normalised over the global batch keep their
  scale on every rank.
* ``SwAVLoss`` (SwAVHead): it has no per-sample hook, so its per-sample terms are computed from
  the loss module's own prototypes, queue and Sinkhorn (:func:`swav_per_sample_loss`).
"""
from typing import Callable, Dict, Optional, Tuple

import torch
from mmpretrain.models.losses import CosineSimilarityLoss, CrossEntropyLoss, SwAVLoss
from torch import nn

from .swav_per_sample import swav_per_sample_loss


def _check_rows(weights: torch.Tensor, rows: int, loss: nn.Module) -> None:
    if weights.numel() != rows:
        raise ValueError(
            f'{type(loss).__name__} got {rows} loss rows but {weights.numel()} sample weights: '
            'the algorithm variant must map its N pair weights to the loss rows '
            '(see GenViewMixin.loss_row_weights).')


def _with_row_keyword(head: nn.Module, weights: torch.Tensor, args: tuple, kwargs: dict,
                      first: str, keyword: str, float32: bool,
                      rescale: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Run ``head.loss`` with ``weights`` passed to its loss module as ``keyword``.

    A forward pre-hook on ``head.loss_module`` checks the rows of its first input (``first``
    when given by keyword) and adds ``keyword=weights`` (float32, or the input's dtype); with
    ``rescale`` a forward hook multiplies the output by it.
    """

    def inject(module: nn.Module, a: tuple, kw: dict) -> Tuple[tuple, dict]:
        x = a[0] if a else kw[first]
        _check_rows(weights, x.size(0), module)
        if len(a) > 2 or kw.get(keyword) is not None:
            raise ValueError(f'the wrapped head already passes {keyword!r} to its loss')
        kw[keyword] = weights.to(device=x.device, dtype=torch.float32 if float32 else x.dtype)
        return a, kw

    def scale(module: nn.Module, a: tuple, kw: dict, out: torch.Tensor) -> torch.Tensor:
        return out * rescale.to(device=out.device, dtype=out.dtype)

    handles = [head.loss_module.register_forward_pre_hook(inject, with_kwargs=True)]
    if rescale is not None:
        handles.append(head.loss_module.register_forward_hook(scale, with_kwargs=True))
    try:
        return head.loss(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()


def _ce_weighted(head: nn.Module, weights: torch.Tensor, args: tuple, kwargs: dict
                 ) -> torch.Tensor:
    """``CrossEntropyLoss(weight=w)``: its mean reduction is ``mean(w * l)``."""
    return _with_row_keyword(head, weights, args, kwargs, 'cls_score', 'weight', True)


def _cosine_weighted(head: nn.Module, weights: torch.Tensor, args: tuple, kwargs: dict
                     ) -> torch.Tensor:
    """``CosineSimilarityLoss(mask=m)`` gives ``sum(m l) / sum(m)``, ``m = w / max(w)`` (ones
    if every weight is 0), in float32 (not the autocast dtype); rescaled by ``sum(w) / R`` to
    ``mean(w l)``. No host sync."""
    w = weights.float()
    peak = w.max()
    mask = torch.where(peak > 0, w / peak.clamp_min(torch.finfo(w.dtype).tiny), torch.ones_like(w))
    return _with_row_keyword(head, mask, args, kwargs, 'pred', 'mask', True,
                             rescale=w.sum() / w.numel())


def _swav_weighted(head: nn.Module, weights: torch.Tensor, args: tuple, kwargs: dict
                   ) -> torch.Tensor:
    per_sample = swav_per_sample_loss(head.loss_module, *args, **kwargs)
    _check_rows(weights, per_sample.numel(), head.loss_module)
    return (per_sample * weights.to(per_sample)).mean()


WEIGHTING_RULES: Dict[type, Callable] = {
    CrossEntropyLoss: _ce_weighted,
    CosineSimilarityLoss: _cosine_weighted,
    SwAVLoss: _swav_weighted,
}


def weighting_rule(head: nn.Module) -> Callable:
    """The rule for ``head.loss_module``; raises a clear error for unsupported losses.

    Args:
        head (nn.Module): an upstream SSL head with a ``loss_module``.

    Returns:
        Callable: ``rule(head, weights, args, kwargs) -> loss`` computing the weighted loss.
    """
    loss = getattr(head, 'loss_module', None)
    for cls, rule in WEIGHTING_RULES.items():
        if isinstance(loss, cls):
            return rule
    raise NotImplementedError(
        f'QualityDrivenContrastiveHead cannot weight {type(head).__name__} with loss '
        f'{type(loss).__name__}; supported losses: '
        f'{", ".join(c.__name__ for c in WEIGHTING_RULES)}.')
