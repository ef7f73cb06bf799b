"""Training hooks: GenView's pair check and statistics, the kNN monitor."""
from .genview_pair_hook import GenViewPairHook
from .knn_monitor_hook import KNNMonitorHook

__all__ = ['GenViewPairHook', 'KNNMonitorHook']
