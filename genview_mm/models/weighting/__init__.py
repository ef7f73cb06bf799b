"""How GenView's pair-quality weights reach the loss (arXiv:2403.12003, Sec. 3.3).

:func:`quality_weights` is the weight rule (qualities -> per-sample weights, mean 1); the loss
rules (:func:`weighting_rule`) make an upstream head's own loss module compute
``(1/R) sum_r w_r l_r``; :func:`swav_per_sample_loss` gives SwAV's per-sample terms, which its
loss module has no hook for.
"""
from .loss_rules import WEIGHTING_RULES, weighting_rule
from .quality_weights import (
    NORMALIZE_MODES,
    QualityWeights,
    check_gamma,
    check_weight_rule,
    quality_weights,
)
from .swav_per_sample import swav_per_sample_loss

__all__ = ['WEIGHTING_RULES', 'weighting_rule', 'NORMALIZE_MODES', 'QualityWeights',
           'check_gamma', 'check_weight_rule', 'quality_weights', 'swav_per_sample_loss']
