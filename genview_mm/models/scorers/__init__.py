"""Pair-quality scoring with a frozen encoder (arXiv:2403.12003, Sec. 3.3)."""
from .pair_quality_scorer import OFFICIAL_ENCODER, PairQualityScorer, PairScores
from .pair_scores import pair_quality, pooled_features, soft_masks

__all__ = ['OFFICIAL_ENCODER', 'PairQualityScorer', 'PairScores', 'pair_quality',
           'pooled_features', 'soft_masks']
