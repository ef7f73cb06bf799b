"""Runner-side components (hooks), as mmpretrain's ``engine`` package."""
from .errors import StartCheckFailed
from .hooks import GenViewPairHook, KNNMonitorHook

__all__ = ['GenViewPairHook', 'KNNMonitorHook', 'StartCheckFailed']
