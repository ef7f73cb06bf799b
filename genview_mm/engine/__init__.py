"""Runner-side components (hooks), as mmpretrain's ``engine`` package."""
from .hooks import KNNMonitorHook

__all__ = ['KNNMonitorHook']
