"""Pair-quality scoring with a frozen encoder and the GenView weight rule."""
from .pair_quality_scorer import PairQualityScorer, PairScores
from .pair_scores import pair_quality, pooled_features, soft_masks
from .patch_encoders import (PATCH_ENCODERS, TimmPatchEncoder, build_patch_encoder,
                             register_patch_encoder)
from .quality_weights import QualityWeights, gather_variable, quality_weights

__all__ = ['PairQualityScorer', 'PairScores', 'pair_quality', 'pooled_features', 'soft_masks',
           'PATCH_ENCODERS', 'TimmPatchEncoder', 'build_patch_encoder', 'register_patch_encoder',
           'QualityWeights', 'gather_variable', 'quality_weights']
