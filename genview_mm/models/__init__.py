"""GenView models: pair-quality scorer, quality-driven head and algorithm variants.

Importing this package registers the patch encoders (``CLIPPatchEncoder``, ``TimmPatchEncoder``),
``PairQualityScorer``, ``QualityDrivenContrastiveHead`` and
``GenViewMoCo``, ``GenViewMoCoV3``, ``GenViewBYOL``, ``GenViewSimSiam``, ``GenViewSimCLR``,
``GenViewSwAV`` into MMPretrain's ``MODELS`` registry.
"""
from . import encoders, heads, scorers, selfsup, weighting  # noqa: F401
from .encoders import CLIPPatchEncoder, TimmPatchEncoder
from .heads import QualityDrivenContrastiveHead
from .scorers import PairQualityScorer
from .selfsup import (
                      GenViewBYOL,
                      GenViewMixin,
                      GenViewMoCo,
                      GenViewMoCoV3,
                      GenViewSimCLR,
                      GenViewSimSiam,
                      GenViewSwAV,
)
from .weighting import quality_weights

__all__ = ['CLIPPatchEncoder', 'TimmPatchEncoder', 'QualityDrivenContrastiveHead',
           'PairQualityScorer', 'quality_weights',
           'GenViewMixin', 'GenViewMoCo', 'GenViewMoCoV3', 'GenViewBYOL', 'GenViewSimSiam',
           'GenViewSimCLR', 'GenViewSwAV']
