"""How per-sample weights enter the loss modules of upstream MMPretrain SSL heads.

Each rule runs the wrapped head's own ``loss`` (never a copy of it) while a temporary hook on
its ``loss_module`` turns the mean over rows into ``(1/R) sum_r w_r l_r``:

* ``CrossEntropyLoss`` (ContrastiveHead: MoCo v2, SimCLR; MoCoV3Head): the loss's own
  sample-wise ``weight`` argument, whose mean reduction is exactly ``mean(w * l)``.
* ``CosineSimilarityLoss`` (LatentPredictHead: BYOL, SimSiam): its ``mask`` argument gives
  ``sum(w l) / sum(w)``; the output is rescaled by ``sum(w) / R``, so weights normalised over
  the global batch keep their scale on every rank.
* ``SwAVLoss`` (SwAVHead): it has no per-sample hook, so its per-sample terms are computed from
  the loss module's own prototypes, queue and Sinkhorn (:func:`swav_per_sample_loss`).
"""
from typing import Callable, Dict, Tuple

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


def _ce_weighted(head: nn.Module, weights: torch.Tensor, args: tuple, kwargs: dict
                 ) -> torch.Tensor:

    def inject(module: nn.Module, a: tuple, kw: dict) -> Tuple[tuple, dict]:
        score = a[0] if a else kw['cls_score']
        _check_rows(weights, score.size(0), module)
        if len(a) > 2 or kw.get('weight') is not None:
            raise ValueError('the wrapped head already passes a sample weight to its loss')
        kw['weight'] = weights.to(device=score.device, dtype=torch.float32)
        return a, kw

    handle = head.loss_module.register_forward_pre_hook(inject, with_kwargs=True)
    try:
        return head.loss(*args, **kwargs)
    finally:
        handle.remove()


def _cosine_weighted(head: nn.Module, weights: torch.Tensor, args: tuple, kwargs: dict
                     ) -> torch.Tensor:

    def inject(module: nn.Module, a: tuple, kw: dict) -> Tuple[tuple, dict]:
        pred = a[0] if a else kw['pred']
        _check_rows(weights, pred.size(0), module)
        if len(a) > 2 or kw.get('mask') is not None:
            raise ValueError('the wrapped head already passes a mask to its loss')
        kw['mask'] = weights.to(device=pred.device, dtype=pred.dtype)
        return a, kw

    def rescale(module: nn.Module, a: tuple, kw: dict, out: torch.Tensor) -> torch.Tensor:
        w = weights.to(out.device)
        return out * (w.sum() / w.numel()).to(out.dtype)

    pre = head.loss_module.register_forward_pre_hook(inject, with_kwargs=True)
    post = head.loss_module.register_forward_hook(rescale, with_kwargs=True)
    try:
        return head.loss(*args, **kwargs)
    finally:
        pre.remove()
        post.remove()


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
