"""Pair-quality scoring with a frozen encoder and the GenView weight rule."""
from .pair_quality_scorer import OFFICIAL_ENCODER, PairQualityScorer, PairScores
from .pair_scores import pair_quality, pooled_features, soft_masks
from .quality_weights import QualityWeights, gather_variable, quality_weights

__all__ = ['OFFICIAL_ENCODER', 'PairQualityScorer', 'PairScores', 'pair_quality',
           'pooled_features', 'soft_masks', 'QualityWeights', 'gather_variable',
           'quality_weights']
