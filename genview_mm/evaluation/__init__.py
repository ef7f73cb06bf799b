"""Evaluation and transfer: checkpoint conversion, semi-supervised subsets, kNN top-1."""
from .checkpoint_io import CheckpointError, pretraining_normalisation, read_checkpoint
from .convert import (
                      FORMATS,
                      NoBackboneError,
                      convert_checkpoint,
                      detectron2_name,
                      extract_backbone,
                      load_state_dict,
)
from .knn import knn_predict, knn_top1, pool_features
from .subsets import (
                      balanced_subset,
                      read_ann_file,
                      read_simclr_names,
                      simclr_subset,
                      write_ann_file,
)

__all__ = [
    'CheckpointError', 'pretraining_normalisation', 'read_checkpoint', 'FORMATS',
    'NoBackboneError', 'convert_checkpoint', 'detectron2_name', 'extract_backbone',
    'load_state_dict', 'knn_predict', 'knn_top1', 'pool_features',
    'balanced_subset', 'read_ann_file', 'read_simclr_names', 'simclr_subset', 'write_ann_file'
]
