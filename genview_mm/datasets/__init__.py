"""GenView data pipeline: the pair transform and its manifest index."""
from .manifest_index import ManifestIndex
from .transforms import GEN_KEYS, GenViewPairDataset

__all__ = ['GenViewPairDataset', 'ManifestIndex', 'GEN_KEYS']
