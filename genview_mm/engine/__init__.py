from .launch import (add_common_args, build_runner, init_cpu_distributed, load_cfg,
                     prepare_cfg, replace_sync_bn)

__all__ = ['add_common_args', 'build_runner', 'init_cpu_distributed', 'load_cfg', 'prepare_cfg',
           'replace_sync_bn']
