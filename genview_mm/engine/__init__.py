from .launch import init_cpu_distributed, prepare_cfg, replace_sync_bn

__all__ = ['init_cpu_distributed', 'prepare_cfg', 'replace_sync_bn']
