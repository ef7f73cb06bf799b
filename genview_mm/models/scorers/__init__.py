"""Pair-quality scoring with a frozen encoder (arXiv:2403.12003, Sec. 3.3)."""
from .fast_path import cast_autocast_weights
from .official import OfficialStyleScorer, official_scores, score_errors, within_accuracy_rule
from .pair_quality_scorer import OFFICIAL_ENCODER, PairQualityScorer, PairScores
from .pair_scores import pair_quality, pooled_features, soft_masks

__all__ = ['OFFICIAL_ENCODER', 'OfficialStyleScorer', 'PairQualityScorer', 'PairScores',
           'cast_autocast_weights', 'official_scores', 'pair_quality', 'pooled_features',
           'score_errors', 'soft_masks', 'within_accuracy_rule']
