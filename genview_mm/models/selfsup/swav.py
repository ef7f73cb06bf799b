"""GenView variant of MMPretrain's SwAV."""
from mmpretrain.models.selfsup import SwAV
from mmpretrain.registry import MODELS

from .genview_mixin import GenViewMixin


@MODELS.register_module()
class GenViewSwAV(GenViewMixin, SwAV):
    """SwAV (multi-crop) with GenView's quality-driven loss (see :class:`GenViewMixin`).

    Weight-to-row mapping (not specified by the authors; our choice): the pair is the two
    global crops ``inputs[0]`` and ``inputs[1]``, scored as in every other method; sample
    ``i``'s weight ``w_i`` then multiplies its whole swapped-prediction loss, i.e. every term
    predicting the codes of either global crop of sample ``i`` from any of its other crops
    (small crops included). Small crops are never scored: they are sub-views of the same
    images and too small for the encoder's grid.

    Args:
        scorer (dict): pair scorer config, e.g. ``dict(type='PairQualityScorer', pca_path=...)``.
        **kwargs: the arguments of :class:`mmpretrain.models.selfsup.SwAV`.
    """
