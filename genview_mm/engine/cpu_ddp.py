"""Distributed training on CPU processes (gloo), for tests and machines without CUDA.

torch's DistributedDataParallel refuses ``SyncBatchNorm`` layers without a GPU. A config's
``SyncBN`` entries become ``BN`` before the model is built (:func:`genview_mm.apis.launch.
prepare_cfg`), but some layers are SyncBN without an entry: MMPretrain's ``NonLinearNeck`` and
``SwAVNeck`` default to it (the MoCo v3, BYOL, SimSiam, SimCLR and SwAV necks). This wrapper turns
every such layer of the built model into BatchNorm before DDP wraps it.
"""
import logging

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import MMDistributedDataParallel, revert_sync_batchnorm
from mmpretrain.registry import MODEL_WRAPPERS

#: the config ``type`` of the wrapper (its registry's scope named: found from any default scope,
#: MMDetection's too)
CPU_DDP = 'mmpretrain.CPUDistributedDataParallel'


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """:class:`~mmengine.model.MMDistributedDataParallel` whose model has no SyncBatchNorm
    layer (each becomes BatchNorm with its weights and statistics, logged once)."""

    def __init__(self, module: nn.Module, **kwargs) -> None:
        synced = sum(type(m).__name__ == 'SyncBatchNorm' for m in module.modules())  # mmcv's
        if synced:  # too (MMSyncBN)
            module = revert_sync_batchnorm(module)
            print_log(f'No CUDA: {synced} SyncBatchNorm layer(s) the model built without a '
                      'config entry (a neck default) are BatchNorm (SyncBN needs CUDA).',
                      logger='current', level=logging.WARNING)
        super().__init__(module=module, **kwargs)
