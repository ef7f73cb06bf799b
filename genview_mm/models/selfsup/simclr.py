"""GenView variant of MMPretrain's SimCLR."""
import torch
from mmpretrain.models.selfsup import SimCLR
from mmpretrain.registry import MODELS

from genview_mm.utils.dist import gather_variable

from .genview_mixin import GenViewMixin


@MODELS.register_module()
class GenViewSimCLR(GenViewMixin, SimCLR):
    """SimCLR with GenView's quality-driven loss (see :class:`GenViewMixin`).

    Weight-to-row mapping: upstream SimCLR stacks the views per sample, so the embedding rows
    are interleaved (row ``2i`` is view 1 and row ``2i+1`` view 2 of sample ``i``), and gathers
    them from every rank before its NT-Xent loss over ``2 * N_global`` rows. Pair ``i``'s weight
    ``w_i`` therefore weights both of its rows ``2i`` and ``2i+1`` (each view's NT-Xent row
    ``l_i``), and the weights are gathered in rank order like the embeddings.

    Args:
        scorer (dict): pair scorer config, e.g. ``dict(type='PairQualityScorer', pca_path=...)``.
        **kwargs: the arguments of :class:`mmpretrain.models.selfsup.SimCLR`.
    """

    def loss_row_weights(self, weights: torch.Tensor) -> torch.Tensor:
        """(N,) local pair weights -> (2 * N_global,) interleaved row weights."""
        return gather_variable(weights)[0].repeat_interleave(2)
