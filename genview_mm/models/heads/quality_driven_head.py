"""GenView's quality-driven contrastive loss as a wrapper of any upstream SSL head."""
from contextlib import contextmanager
from typing import Iterator, List, Optional, Union

import torch
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS

from ..weighting import weighting_rule


@MODELS.register_module()
class QualityDrivenContrastiveHead(BaseModule):
    """Applies per-sample quality weights to the loss of a wrapped MMPretrain SSL head.

    `GenView <https://arxiv.org/abs/2403.12003>`_ reweights the per-sample SSL loss,
    ``L = (1/N) sum_i w_i l_i``. The wrapped head (``ContrastiveHead``, ``MoCoV3Head``,
    ``LatentPredictHead``, ``SwAVHead``) runs its own ``loss``; the weights enter through its
    loss module (see :mod:`genview_mm.models.weighting.loss_rules`). Without weights
    (outside :meth:`sample_weights`) or with all weights 1 the loss equals the wrapped head's.

    The wrapped head's children (``predictor``, ``loss_module``) are registered directly on
    this module, so state-dict keys stay upstream's (``head.predictor.*``) and upstream hooks
    reaching ``model.head.loss_module`` (e.g. ``SwAVHook``) keep working.

    Where ``w_i * l_i`` happens, from the algorithm's ``loss`` down::

        GenViewMixin.loss(inputs, data_samples)               # models/selfsup/genview_mixin.py
          scores = self.scorer(view1, view2)                  # q = s_f - s_b, no weights
          w = quality_weights(scores.q, gamma, normalize)     # N * softmax(gamma * q)
          with self.head.sample_weights(loss_row_weights(w)): # rows of each head.loss call
            Upstream.loss(self, inputs, data_samples)         # MoCo / MoCoV3 / BYOL / ...
              self.head.loss(...)  -> QualityDrivenContrastiveHead.loss (this class)
                rule(wrapped_head, w, args)                   # models/weighting/loss_rules.py
                  wrapped_head.loss(...)                      # upstream head, unchanged
                    loss_module(...)                          # with w injected, see below

    per loss module (``rule`` = :func:`~genview_mm.models.weighting.weighting_rule`):

    * MoCo v2 (ContrastiveHead), MoCo v3 (MoCoV3Head), SimCLR (ContrastiveHead):
      ``CrossEntropyLoss(cls_score, label, weight=w)`` -- a forward pre-hook adds ``weight``;
      its mean reduction is ``mean_i(w_i * CE_i)``. MoCo v3 calls the head twice (both
      symmetric terms, the same ``w``); SimCLR maps pair ``i`` to rows ``2i, 2i+1``.
    * BYOL, SimSiam (LatentPredictHead): ``CosineSimilarityLoss(pred, target, mask=m)`` -- a
      pre-hook adds ``mask`` ``m = w / max(w)`` (giving ``sum(w l) / sum(w)``, never 0/0) and
      a forward hook rescales by ``sum(w) / N``, so the result is ``mean_i(w_i * l_i)``.
    * SwAV (SwAVHead): ``SwAVLoss`` has no per-sample input, so the rule computes
      :func:`~genview_mm.models.weighting.swav_per_sample_loss` from the loss module's own
      prototypes, queue and Sinkhorn and returns ``mean_i(w_i * l_i)``.

    Args:
        head (dict): config of the upstream head to wrap.
        init_cfg (dict or List[dict], optional): initialization config; defaults to the wrapped
            head's.
    """

    def __init__(self, head: dict,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        inner = MODELS.build(head)
        super().__init__(init_cfg=init_cfg if init_cfg is not None else inner.init_cfg)
        if list(inner.named_parameters(recurse=False)) or list(inner.named_buffers(recurse=False)):
            raise ValueError(f'{type(inner).__name__} holds parameters outside submodules; '
                             'QualityDrivenContrastiveHead cannot keep its state-dict keys.')
        self.__dict__['_inner'] = inner  # not a child: its children are adopted below
        for name, child in inner.named_children():
            self.add_module(name, child)
        self._rule = weighting_rule(inner)
        self._row_weights: Optional[torch.Tensor] = None

    @property
    def wrapped(self) -> BaseModule:
        """The upstream head (shares its submodules with this module)."""
        return self.__dict__['_inner']

    def train(self, mode: bool = True) -> 'QualityDrivenContrastiveHead':
        """Set the mode of this module and of the wrapped head."""
        self.wrapped.training = mode
        return super().train(mode)

    @contextmanager
    def sample_weights(self, weights: Optional[torch.Tensor]) -> Iterator[None]:
        """Weight every :meth:`loss` call inside the block by ``weights``.

        Args:
            weights (torch.Tensor, optional): (R,) detached weights, one per loss row of each
                call (the algorithm maps pair weights to rows). None: unweighted.

        Raises:
            ValueError: ``weights`` is not 1-D (an (R, 1) tensor broadcast against the (R,)
                row losses into an (R, R) product: a wrong loss, no error).
        """
        if weights is not None and weights.dim() != 1:
            raise ValueError(f'sample weights must be a 1-D (R,) tensor, one per loss row, got '
                             f'shape {tuple(weights.shape)}')
        previous, self._row_weights = self._row_weights, (
            None if weights is None else weights.detach())
        try:
            yield
        finally:
            self._row_weights = previous

    def loss(self, *args, **kwargs) -> torch.Tensor:
        """The wrapped head's loss, weighted per sample inside :meth:`sample_weights`.

        Args:
            *args: the wrapped head's ``loss`` arguments.
            **kwargs: the wrapped head's ``loss`` keyword arguments.

        Returns:
            torch.Tensor: the scalar loss ``(1/R) sum_r w_r l_r``.
        """
        if self._row_weights is None:
            return self.wrapped.loss(*args, **kwargs)
        return self._rule(self.wrapped, self._row_weights, args, kwargs)
