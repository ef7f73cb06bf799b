"""Convert a GenView / MMPretrain self-supervised checkpoint into transfer-ready backbone weights.

Three output formats (see :func:`convert_checkpoint`):

* ``'mmpretrain'`` -- ``{'state_dict': {'backbone.<name>': Tensor}, 'meta': {...}}`` of plain
  tensors. It loads with ``torch.load(weights_only=True)`` and is meant for MMPretrain /
  MMDetection ``init_cfg=dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')`` (the
  ``backbone.`` keys are kept so the same ``prefix`` works for the raw runner checkpoint too).
* ``'torchvision'`` -- a flat ``{name: Tensor}`` dict with torchvision ResNet names (``conv1``,
  ``bn1``, ``layer1.0.conv1``, ...; no ``fc``) for ``torchvision.models.resnet50().load_state_dict(
  sd, strict=False)``.
* ``'detectron2'`` -- a pickle ``{'model': {name: ndarray}, '__author__': 'genview_mm',
  'matching_heuristics': True}`` with detectron2 ResNet names (``stem.conv1``, ``res2.0.conv1``,
  ``conv1.norm``, ``shortcut``), the conversion MoCo uses for its detection transfer.
"""
import os
import os.path as osp
import pickle
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch

FORMATS = ('mmpretrain', 'torchvision', 'detectron2')
# Keys of an MMPretrain/MMDetection ``ResNet`` (pytorch style, plain stem), which torchvision shares.
_RESNET_KEY = re.compile(
    r'^(conv1\.weight|bn1\.\w+|layer[1-4]\.\d+\.(conv[1-3]\.weight|bn[1-3]\.\w+|'
    r'downsample\.[01]\.\w+))$')


class NoBackboneError(ValueError):
    """Raised when a checkpoint holds no ``backbone.*`` weights."""


def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Load the model state dict of a runner checkpoint (``{'state_dict': ..., 'meta': ...}``) or of
    a plain state dict, with ``weights_only=True``.

    MMEngine runner checkpoints hold a few non-tensor types (message hub, numpy scalars);
    ``import genview_mm`` allow-lists exactly those (see :mod:`genview_mm.compat`).

    Args:
        path (str): checkpoint file.

    Returns:
        Dict[str, torch.Tensor]: parameter name -> tensor (a ``module.`` DDP prefix is removed).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist')
    import genview_mm  # noqa: F401  (allow-lists MMEngine checkpoint types for weights_only)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(ckpt, dict):
        raise ValueError(f'{path} is not a checkpoint: expected a dict, got {type(ckpt).__name__}')
    state = ckpt.get('state_dict', ckpt)
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()
             if isinstance(v, torch.Tensor)}
    return state


def extract_backbone(state_dict: Dict[str, torch.Tensor], prefix: str = 'backbone.',
                     source: str = 'the checkpoint') -> 'OrderedDict[str, torch.Tensor]':
    """Select the online backbone's weights (``backbone.*``) and strip the prefix.

    Momentum/target encoders (``target_net.*``, ``momentum_encoder.*``), necks and heads are left
    out. Tensors are cloned so that a saved file holds only the backbone.

    Raises:
        NoBackboneError: if no key starts with ``prefix``.
    """
    out = OrderedDict((k[len(prefix):], v.detach().clone().contiguous())
                      for k, v in state_dict.items() if k.startswith(prefix))
    if not out:
        tops = sorted({k.split('.', 1)[0] for k in state_dict})
        raise NoBackboneError(
            f'{source} has no "{prefix}*" weights (top-level names found: {tops[:10] or "none"}). '
            'Pass a checkpoint written by GenView/MMPretrain self-supervised pretraining (e.g. '
            'work_dirs/<config>/epoch_200.pth), or set --prefix to the key prefix of the backbone.')
    return out


def check_resnet(backbone: Dict[str, torch.Tensor], fmt: str) -> None:
    """Refuse backbones that are not a pytorch-style ResNet with a plain stem."""
    bad = [k for k in backbone if not _RESNET_KEY.match(k)]
    if bad:
        raise ValueError(
            f'the {fmt} format supports ResNet backbones (plain stem) only; this backbone has '
            f'other weights, e.g. {bad[:3]}. Use --format mmpretrain for ViTs and other backbones.')


def to_mmpretrain(backbone: Dict[str, torch.Tensor], prefix: str = 'backbone.',
                  meta: Optional[dict] = None) -> dict:
    """``{'state_dict': {'backbone.<k>': v}, 'meta': meta}`` for ``init_cfg`` Pretrained."""
    return {'state_dict': OrderedDict((prefix + k, v) for k, v in backbone.items()),
            'meta': dict(meta or {})}


def to_torchvision(backbone: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """torchvision ResNet names (identical to MMPretrain's ResNet names; ``fc`` absent)."""
    check_resnet(backbone, 'torchvision')
    return OrderedDict(backbone)


def detectron2_name(name: str) -> str:
    """Map one torchvision/MMPretrain ResNet key to its detectron2 name.

    ``conv1.weight -> stem.conv1.weight``, ``bn1.bias -> stem.conv1.norm.bias``,
    ``layer1.0.bn2.weight -> res2.0.conv2.norm.weight``,
    ``layer2.0.downsample.0.weight -> res3.0.shortcut.weight``,
    ``layer2.0.downsample.1.running_mean -> res3.0.shortcut.norm.running_mean``.
    """
    if not name.startswith('layer'):
        name = 'stem.' + name
    name = re.sub(r'^layer([1-4])', lambda m: f'res{int(m.group(1)) + 1}', name)
    name = re.sub(r'(^|\.)bn([1-3])\.', r'\1conv\2.norm.', name)
    name = name.replace('downsample.0.', 'shortcut.').replace('downsample.1.', 'shortcut.norm.')
    return name


def to_detectron2(backbone: Dict[str, torch.Tensor]) -> dict:
    """The detectron2 pickle (numpy arrays; ``num_batches_tracked`` dropped)."""
    check_resnet(backbone, 'detectron2')
    model = OrderedDict((detectron2_name(k), v.cpu().numpy()) for k, v in backbone.items()
                        if not k.endswith('num_batches_tracked'))
    return {'model': model, '__author__': 'genview_mm', 'matching_heuristics': True}


def convert_checkpoint(src: str, dst: str, fmt: str = 'mmpretrain',
                       prefix: str = 'backbone.') -> dict:
    """Convert ``src`` into ``dst`` in format ``fmt`` (one of :data:`FORMATS`).

    Args:
        src (str): GenView/MMPretrain checkpoint (runner checkpoint or plain state dict).
        dst (str): output file (``.pth`` for mmpretrain/torchvision, ``.pkl`` for detectron2).
        fmt (str): output format. Defaults to 'mmpretrain'.
        prefix (str): key prefix of the backbone in ``src``. Defaults to 'backbone.'.

    Returns:
        dict: what was saved.
    """
    if fmt not in FORMATS:
        raise ValueError(f'unknown format {fmt!r}; choose one of {FORMATS}')
    backbone = extract_backbone(load_state_dict(src), prefix, source=src)
    if fmt == 'mmpretrain':
        out = to_mmpretrain(backbone, 'backbone.', meta=dict(
            converted_from=osp.basename(src), source_prefix=prefix, init_cfg_prefix='backbone.'))
    elif fmt == 'torchvision':
        out = to_torchvision(backbone)
    else:
        out = to_detectron2(backbone)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    if fmt == 'detectron2':
        with open(dst, 'wb') as f:
            pickle.dump(out, f)
    else:
        torch.save(out, dst)
    return out
