"""GenView data pipeline: the pair transform, its manifest index and the genview settings."""
from .manifest_index import ManifestIndex
from .settings import PAIR_SETTINGS, apply_genview_settings
from .transforms import GEN_KEYS, GenViewPairDataset

__all__ = ['GenViewPairDataset', 'ManifestIndex', 'GEN_KEYS',
           'PAIR_SETTINGS', 'apply_genview_settings']
