"""Offline adaptive view generation (GenView, arXiv:2403.12003, Sec. 3.2).

Pure rules (:mod:`.noise`, :mod:`.sharding`, :mod:`.seeding`), the manifest format
(:mod:`.manifest`), the registered :class:`AdaptiveNoiseGenerator` and the sharded, resumable
runner behind ``tools/generate_views.py``. diffusers is imported only when a pipeline is loaded.
"""
from .generator import AdaptiveNoiseGenerator, GeneratedView
from .manifest import read_manifest
from .noise import DEFAULT_BINS, DEFAULT_LEVELS, noise_level_from_ratio, validate_noise_rule
from .seeding import image_seed
from .sharding import shard, shard_indices

__all__ = ['AdaptiveNoiseGenerator', 'GeneratedView', 'read_manifest', 'noise_level_from_ratio',
           'validate_noise_rule', 'DEFAULT_BINS', 'DEFAULT_LEVELS', 'image_seed', 'shard',
           'shard_indices']
