"""GenView heads."""
from .quality_driven_head import QualityDrivenContrastiveHead

__all__ = ['QualityDrivenContrastiveHead']
