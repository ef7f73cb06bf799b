"""Runner-side components (hooks), as mmpretrain's ``engine`` package."""
from .errors import RunCheckFailed, StartCheckFailed
from .hooks import GenViewPairHook, KNNMonitorHook

__all__ = ['GenViewPairHook', 'KNNMonitorHook', 'RunCheckFailed', 'StartCheckFailed']
