"""GenView variant of MMPretrain's BYOL."""
from mmpretrain.models.selfsup import BYOL
from mmpretrain.registry import MODELS

from .genview_mixin import GenViewMixin


@MODELS.register_module()
class GenViewBYOL(GenViewMixin, BYOL):
    """BYOL with GenView's quality-driven loss (see :class:`GenViewMixin`).

    ``l_i`` is the negative cosine of sample ``i``; both symmetric terms get the same ``w_i``.

    Args:
        scorer (dict): pair scorer config, e.g. ``dict(type='PairQualityScorer', pca_path=...)``.
        **kwargs: the arguments of :class:`mmpretrain.models.selfsup.BYOL`.
    """
