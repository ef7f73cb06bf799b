"""Training hooks: the kNN monitor of representation quality."""
from .knn_monitor_hook import KNNMonitorHook

__all__ = ['KNNMonitorHook']
