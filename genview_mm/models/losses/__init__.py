"""Per-sample weighting of upstream SSL losses."""
from .sample_weighting import WEIGHTING_RULES, weighting_rule
from .swav_per_sample import swav_per_sample_loss

__all__ = ['WEIGHTING_RULES', 'weighting_rule', 'swav_per_sample_loss']
