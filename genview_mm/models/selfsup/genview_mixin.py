"""The shared logic of every GenView algorithm variant: score pairs, weight the head's loss."""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import nn

HEAD_WRAPPER = 'QualityDrivenContrastiveHead'


def wrap_head(head: Optional[dict]) -> Optional[dict]:
    """Wrap an upstream head config in ``QualityDrivenContrastiveHead`` (once)."""
    kind = None if head is None else head.get('type')
    if head is None or HEAD_WRAPPER in (kind, getattr(kind, '__name__', None)):
        return head
    return dict(type=HEAD_WRAPPER, head=head)


class GenViewMixin:
    """Mixed in front of an upstream MMPretrain algorithm (``class X(GenViewMixin, Upstream)``).

    It wraps the configured head in ``QualityDrivenContrastiveHead`` (an upstream config only
    needs its ``type`` changed and a ``scorer`` added), builds the frozen pair-quality scorer,
    and in :meth:`loss` scores the two views the upstream ``loss`` receives, maps the pair
    weights to loss rows (:meth:`loss_row_weights`) and runs the upstream ``loss`` unchanged
    with those weights active on the head. Telemetry (``genview_w_mean``, ``genview_w_std``,
    ``genview_w_min``, ``genview_w_max``, ``genview_sf``, ``genview_sb``,
    ``genview_nonfinite``) is added to the loss dict; MMEngine logs these but, their keys not
    containing ``'loss'``, never adds them to the loss. State-dict keys stay upstream's.

    Args:
        scorer (dict | nn.Module): config of the pair scorer, e.g.
            ``dict(type='PairQualityScorer', pca_path=...)``. None disables GenView weighting
            (the upstream loss, for baselines and benchmarks).
        *args, **kwargs: the upstream algorithm's arguments.
    """

    def __init__(self, *args, scorer: Optional[Union[dict, nn.Module]] = None,
                 **kwargs) -> None:
        if 'head' in kwargs:
            kwargs['head'] = wrap_head(kwargs['head'])
        super().__init__(*args, **kwargs)
        if not hasattr(self.head, 'sample_weights'):
            raise TypeError(f'{type(self).__name__} needs its head wrapped in {HEAD_WRAPPER}; '
                            'pass the head config as a keyword argument.')
        self.scorer = MODELS.build(scorer) if isinstance(scorer, dict) else scorer

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
        scores = self.scorer(view1, view2, data_preprocessor=self.data_preprocessor)
        with self.head.sample_weights(self.loss_row_weights(scores.weights)):
            losses = super().loss(inputs, data_samples, **kwargs)
        losses.update(scores.log_vars())
        return losses
