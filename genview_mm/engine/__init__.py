"""Runner-side components (hooks, the CPU model wrapper), as mmpretrain's ``engine`` package."""
from .cpu_ddp import CPU_DDP, CPUDistributedDataParallel
from .errors import RunCheckFailed, StartCheckFailed
from .hooks import GenViewPairHook, KNNMonitorHook

__all__ = ['CPU_DDP', 'CPUDistributedDataParallel', 'GenViewPairHook', 'KNNMonitorHook',
           'RunCheckFailed', 'StartCheckFailed']
