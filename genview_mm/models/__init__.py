"""GenView models: pair-quality scorer, quality-driven head and algorithm variants.

Importing this package registers ``PairQualityScorer``, ``QualityDrivenContrastiveHead`` and
``GenViewMoCo``, ``GenViewMoCoV3``, ``GenViewBYOL``, ``GenViewSimSiam``, ``GenViewSimCLR``,
``GenViewSwAV`` into MMPretrain's ``MODELS`` registry.
"""
from . import heads, losses, scorers, selfsup  # noqa: F401
from .heads import QualityDrivenContrastiveHead
from .scorers import PairQualityScorer, quality_weights
from .selfsup import (GenViewBYOL, GenViewMixin, GenViewMoCo, GenViewMoCoV3, GenViewSimCLR,
                      GenViewSimSiam, GenViewSwAV)

__all__ = ['QualityDrivenContrastiveHead', 'PairQualityScorer', 'quality_weights',
           'GenViewMixin', 'GenViewMoCo', 'GenViewMoCoV3', 'GenViewBYOL', 'GenViewSimSiam',
           'GenViewSimCLR', 'GenViewSwAV']
