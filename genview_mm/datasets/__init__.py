"""GenView data pipeline: the pair transform, its manifest index and its hook."""
from .genview_pair_hook import GenViewPairHook
from .manifest_index import ManifestIndex
from .transforms import GEN_KEYS, GenViewPairDataset

__all__ = ['GenViewPairDataset', 'GenViewPairHook', 'ManifestIndex', 'GEN_KEYS']
