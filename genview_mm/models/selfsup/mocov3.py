"""GenView variant of MMPretrain's MoCoV3."""
from mmpretrain.models.selfsup import MoCoV3
from mmpretrain.registry import MODELS

from .genview_mixin import GenViewMixin


@MODELS.register_module()
class GenViewMoCoV3(GenViewMixin, MoCoV3):
    """MoCo v3 (ResNet or ViT) with GenView's quality-driven loss (see :class:`GenViewMixin`).

    ``l_i`` is query ``i``'s InfoNCE row; both symmetric terms ``head.loss(q1, k2)`` and
    ``head.loss(q2, k1)`` have N local rows and get the same ``w_i``.

    Args:
        scorer (dict): pair scorer config, e.g. ``dict(type='PairQualityScorer', pca_path=...)``.
        **kwargs: the arguments of :class:`mmpretrain.models.selfsup.MoCoV3`.
    """
