"""Runner-side components (hooks), as mmpretrain's ``engine`` package."""
from .hooks import GenViewPairHook, KNNMonitorHook

__all__ = ['GenViewPairHook', 'KNNMonitorHook']
