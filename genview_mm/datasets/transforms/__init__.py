from .genview_pair import GEN_KEYS, GenViewPairDataset

__all__ = ['GenViewPairDataset', 'GEN_KEYS']
