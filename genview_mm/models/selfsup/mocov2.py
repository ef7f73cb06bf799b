"""GenView variant of MMPretrain's MoCo."""
from mmpretrain.models.selfsup import MoCo
from mmpretrain.registry import MODELS

from .genview_mixin import GenViewMixin


@MODELS.register_module()
class GenViewMoCo(GenViewMixin, MoCo):
    """MoCo v2 (and v1) with GenView's quality-driven loss (see :class:`GenViewMixin`).

    ``l_i`` is query ``i``'s cross-entropy over ``[positive, queue] / tau`` (one head call with
    N rows, so each pair weight weights its row).

    Args:
        scorer (dict): pair scorer config, e.g. ``dict(type='PairQualityScorer', pca_path=...)``.
        **kwargs: the arguments of :class:`mmpretrain.models.selfsup.MoCo`.
    """
