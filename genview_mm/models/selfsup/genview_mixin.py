"""The shared logic of every GenView algorithm variant: score pairs, weight the head's loss."""
import logging
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

from ...utils.config_keys import type_name
from ..scorers import PairScores
from ..scorers.side_stream import PendingScores, deferred_head_loss
from ..weighting import QualityWeights, check_weight_rule, quality_weights

HEAD_WRAPPER = 'QualityDrivenContrastiveHead'


def wrap_head(head: Optional[dict]) -> Optional[dict]:
    """Wrap an upstream head config in ``QualityDrivenContrastiveHead`` (once)."""
    if head is None or type_name(head) == HEAD_WRAPPER:
        return head
    return dict(type=HEAD_WRAPPER, head=head)


class GenViewMixin:
    """Mixed in front of an upstream MMPretrain algorithm (``class X(GenViewMixin, Upstream)``).

    It wraps the configured head in ``QualityDrivenContrastiveHead`` (an upstream config only
    needs its ``type`` changed and a ``scorer`` added), builds the frozen pair-quality scorer,
    and in :meth:`loss` scores the two views the upstream ``loss`` receives, turns the
    qualities into weights ``w = N * softmax(gamma * q)`` (:func:`quality_weights`, paper
    Sec. 3.3), maps the pair weights to loss rows (:meth:`loss_row_weights`) and runs the
    upstream ``loss`` unchanged with those weights active on the head. Telemetry
    (``genview_w_mean``, ``genview_w_std``, ``genview_w_min``, ``genview_w_max``,
    ``genview_sf``, ``genview_sb``, ``genview_nonfinite``) is added to the loss dict; MMEngine
    logs these but, their keys not containing ``'loss'``, never adds them to the loss.
    State-dict keys stay upstream's. With ``scorer.overlap`` the scorer runs on a CUDA side
    stream during the SSL forward and the weights are made at the head's first loss call
    (the same weights).

    Args:
        scorer (dict | nn.Module): config of the pair scorer, e.g.
            ``dict(type='PairQualityScorer', pca_path=...)``. None disables GenView weighting
            (the upstream loss, for baselines and benchmarks).
        gamma (float): weight-rule temperature; 0 gives uniform weights. Defaults to 1.0.
        normalize (str): ``'local'`` normalises the weights over each GPU's batch, as the
            official code does; ``'global'`` over the whole batch across GPUs, so that results
            do not depend on the GPU count. Defaults to ``'local'``.
        *args, **kwargs: the upstream algorithm's arguments.
    """

    def __init__(self, *args, scorer: Optional[Union[dict, nn.Module]] = None,
                 gamma: float = 1.0, normalize: str = 'local', **kwargs) -> None:
        check_weight_rule(gamma, normalize)  # before anything is built or loaded
        if 'head' in kwargs:
            kwargs['head'] = wrap_head(kwargs['head'])
        super().__init__(*args, **kwargs)
        if not hasattr(self.head, 'sample_weights'):
            raise TypeError(f'{type(self).__name__} needs its head wrapped in {HEAD_WRAPPER}; '
                            'pass the head config as a keyword argument.')
        self.scorer = MODELS.build(scorer) if isinstance(scorer, dict) else scorer
        if self.scorer is None:  # a config that lost its scorer would train the baseline
            print_log(f'{type(self).__name__} has no scorer: it trains the upstream loss, '
                      'unweighted (for a baseline, configs/baselines/ use the upstream types)',
                      logger='current', level=logging.WARNING)
        self.gamma, self.normalize = float(gamma), normalize

    def pair_views(self, inputs: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """The two views of each positive pair: ``inputs[0]`` and ``inputs[1]``."""
        return inputs[0], inputs[1]

    def loss_row_weights(self, weights: torch.Tensor) -> torch.Tensor:
        """Map the (N,) pair weights to the rows of each head loss call (identity here)."""
        return weights

    def loss(self, inputs: List[torch.Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """The upstream loss with per-sample quality weights on the head.

        Args:
            inputs (List[torch.Tensor]): the views, as the upstream algorithm receives them.
            data_samples (List[DataSample]): passed through.

        Returns:
            Dict[str, torch.Tensor]: upstream losses plus ``genview_*`` telemetry.
        """
        if self.scorer is None:
            return super().loss(inputs, data_samples, **kwargs)
        view1, view2 = self.pair_views(inputs)
        if getattr(self.scorer, 'overlap', False):
            pending, made = PendingScores(self.scorer, view1, view2, self.data_preprocessor), []

            def row_weights() -> torch.Tensor:
                made.append(self._weigh(pending.wait(), view1.device))
                return made[0][2]

            with deferred_head_loss(self.head, row_weights):
                losses = super().loss(inputs, data_samples, **kwargs)
            scores, weights, _ = made[0] if made else self._weigh(pending.wait(), view1.device)
        else:
            scores, weights, rows = self._weigh(
                self.scorer(view1, view2, data_preprocessor=self.data_preprocessor),
                view1.device)
            with self.head.sample_weights(rows):
                losses = super().loss(inputs, data_samples, **kwargs)
        losses.update(quality_log_vars(scores, weights))
        return losses

    def _weigh(self, scores: PairScores, device: torch.device
               ) -> Tuple[PairScores, QualityWeights, torch.Tensor]:
        """The scores, their weights and the loss-row weights on ``device``."""
        weights = quality_weights(scores.q, self.gamma, self.normalize)
        return scores, weights, self.loss_row_weights(weights.weights.to(device))


def quality_log_vars(scores: PairScores, weights: QualityWeights,
                     prefix: str = 'genview_') -> Dict[str, torch.Tensor]:
    """Telemetry for the loss dict: mean/std/min/max of w, means of s_f and s_b, the
    non-finite count. The keys contain no 'loss', so MMEngine logs but never sums them."""
    w = weights.weights.float()
    std = w.std(unbiased=False) if w.numel() > 0 else w.new_zeros(())
    stats = dict(w_mean=w.mean(), w_std=std, w_min=w.min(), w_max=w.max(),
                 sf=scores.s_f.float().mean(), sb=scores.s_b.float().mean(),
                 nonfinite=torch.as_tensor(weights.num_nonfinite).to(w))
    return {prefix + k: v.detach() for k, v in stats.items()}
