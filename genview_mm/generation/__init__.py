"""GenView's adaptive view generation, the method alone (arXiv:2403.12003, Sec. 3.2).

The noise rule (:mod:`.noise`), per-image seeding (:mod:`.seeding`), foreground analysis and the
registered :class:`AdaptiveNoiseGenerator` (one mixed-level unCLIP call per batch). The job that
runs it over a dataset (shards, records, merge) is :mod:`genview_mm.apis.generation`; the
manifest it writes is :mod:`genview_mm.structures.manifest`. diffusers is imported only when a
pipeline is loaded.
"""
from .generator import AdaptiveNoiseGenerator, GeneratedView
from .noise import DEFAULT_BINS, DEFAULT_LEVELS, noise_level_from_ratio, validate_noise_rule
from .seeding import image_seed

__all__ = ['AdaptiveNoiseGenerator', 'GeneratedView', 'noise_level_from_ratio',
           'validate_noise_rule', 'DEFAULT_BINS', 'DEFAULT_LEVELS', 'image_seed']
