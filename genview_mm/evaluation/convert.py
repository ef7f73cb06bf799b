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

Official GenView model-zoo files (MMPretrain 1.0 fork, numpy 1.x) convert the same way: their
``state_dict`` holds ``backbone.*`` beside the neck, head, momentum encoder (``encoder_k``,
``momentum_encoder`` or ``target_net``) and the frozen CLIP scorer (``clip_model.*``), which are
left out. The pretraining config stored in their ``meta['cfg']`` gives the input normalisation
(the official configs use CLIP's mean/std); it is kept in the output's ``meta`` so that the
transfer configs can be told to match it (see :mod:`genview_mm.evaluation.checkpoint_io`); a
converted file converted again keeps its record.
"""
import os.path as osp
import pickletools
import re
from collections import OrderedDict
from typing import Any, Dict, Optional

import torch

from genview_mm.utils import numpy1_pickle
from genview_mm.utils.atomic_write import atomic_write
from genview_mm.utils.file_safety import check_writable, same_file

from .checkpoint_io import CheckpointError, read_checkpoint, recorded_normalisation

FORMATS = ('mmpretrain', 'torchvision', 'detectron2')
# Keys of an MMPretrain/MMDetection ``ResNet`` (pytorch style, plain stem), as torchvision's.
_RESNET_KEY = re.compile(
    r'^(conv1\.weight|bn1\.\w+|layer[1-4]\.\d+\.(conv[1-3]\.weight|bn[1-3]\.\w+|'
    r'downsample\.[01]\.\w+))$')


class NoBackboneError(CheckpointError):
    """Raised when a checkpoint holds no ``backbone.*`` weights."""


_DETECTOR_HEADS = ('rpn_head.', 'roi_head.', 'bbox_head.', 'mask_head.')


def state_dict_of(ckpt: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """The tensors of a runner checkpoint's ``state_dict`` (or ``model``, as many released
    checkpoints name it, or of a plain state dict), with a ``module.`` DDP prefix removed."""
    state = ckpt.get('state_dict', ckpt.get('model', ckpt))
    if not isinstance(state, dict):
        state = {}
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()
            if isinstance(v, torch.Tensor)}


def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Load the model state dict of a runner checkpoint (``{'state_dict': ..., 'meta': ...}``) or of
    a plain state dict, with ``weights_only=True``.

    MMEngine runner checkpoints hold a few non-tensor types (message hub, numpy scalars);
    ``import genview_mm`` allow-lists exactly those (see :mod:`genview_mm.compat`).

    Args:
        path (str): checkpoint file.

    Returns:
        Dict[str, torch.Tensor]: parameter name -> tensor (a ``module.`` DDP prefix is removed).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is not a checkpoint, is unreadable or was refused.
    """
    return state_dict_of(read_checkpoint(path))


#: top-level modules of a whole self-supervised model (a bare timm or torchvision backbone may
#: have a ``head``/``fc``, never these)
_MODEL_PARTS = ('backbone', 'target_net', 'momentum_encoder', 'teacher')


def extract_backbone(state_dict: Dict[str, torch.Tensor], prefix: str = 'backbone.',
                     source: str = 'the checkpoint') -> 'OrderedDict[str, torch.Tensor]':
    """Select the online backbone's weights (``backbone.*``) and strip the prefix.

    Momentum/target encoders (``target_net.*``, ``momentum_encoder.*``), necks and heads are left
    out. Tensors are cloned so that a saved file holds only the backbone. A prefix without its
    final dot (``backbone``) means the module ``backbone.``, as for MMEngine's ``init_cfg``
    prefix: matching the bare text would keep a leading dot in every name (``.conv1.weight``)
    and take in sibling modules (``backbone_k.*``).

    Raises:
        NoBackboneError: if no key starts with ``prefix``, or ``prefix`` is empty and the
            state holds a whole model (``backbone.*``, ``neck.*``, ...).
    """
    if prefix and not prefix.endswith('.'):
        prefix += '.'
    if prefix.startswith('module.') and not any(k.startswith(prefix) for k in state_dict):
        prefix = prefix[len('module.'):]  # DDP's, which state_dict_of drops from the keys
    tops = sorted({k.split('.', 1)[0] for k in state_dict})
    if not prefix and set(tops) & set(_MODEL_PARTS):  # names saved under a second module name
        raise NoBackboneError(
            f"--prefix '' takes every tensor of {source}, which holds a whole model "
            f"({', '.join(map(repr, tops[:8]))}): pass --prefix backbone (its online backbone, "
            'the default) or the prefix of the module to convert')
    out = OrderedDict((k[len(prefix):], v.detach().clone().contiguous())
                      for k, v in state_dict.items() if k.startswith(prefix))
    if not out:
        raise NoBackboneError(
            f'{source} has no "{prefix}*" weights (top-level names found: {tops[:10] or "none"}). '
            'Pass a checkpoint written by GenView/MMPretrain self-supervised pretraining (e.g. '
            'work_dirs/<config>/epoch_200.pth), or set --prefix to the key prefix of the backbone.')
    inner = {k.split('.', 1)[0] for k in out}
    wrapper = 'module' in inner and inner <= {'module', 'steps'}  # MMEngine's EMA wrapper
    if wrapper or prefix.endswith('module.') and inner <= {'0', '1'}:  # or its (backbone, neck)
        # (encoder_k, momentum_encoder, target_net): module.0.* is the backbone, module.1.* the
        # neck; kept as they are, no name fits a backbone and init_cfg loads nothing
        first = 'module.0' if wrapper else '0'
        fix = prefix + (first if any(k.startswith(first + '.') for k in out) else 'module')
        raise NoBackboneError(
            f"--prefix {prefix.rstrip('.')} names a momentum encoder of {source} (an EMA "
            f"wrapper: {prefix}{'module.' if wrapper else ''}0.* its backbone, 1.* its neck), "
            'not a backbone: its weights would load into nothing. '
            f'Pass --prefix {fix} for its backbone, or --prefix backbone for the online one')
    return out


def check_resnet(backbone: Dict[str, torch.Tensor], fmt: str) -> None:
    """Refuse backbones that are not a pytorch-style ResNet with a plain stem."""
    bad = [k for k in backbone if not _RESNET_KEY.match(k)]
    if bad:
        raise CheckpointError(
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
    """The detectron2 pickle (numpy arrays, bfloat16 ones as float32: numpy has no bfloat16;
    ``num_batches_tracked`` dropped)."""
    check_resnet(backbone, 'detectron2')
    model = OrderedDict(
        (detectron2_name(k), (v.float() if v.dtype == torch.bfloat16 else v).cpu().numpy())
        for k, v in backbone.items() if not k.endswith('num_batches_tracked'))
    return {'model': model, '__author__': 'genview_mm', 'matching_heuristics': True}


def is_converted_backbone(path: str) -> bool:
    """Whether ``path`` is a backbone file :func:`convert_checkpoint` wrote: the mmpretrain
    format's ``meta.converted_from``, or the detectron2 pickle's ``__author__`` (read from its
    opcodes, nothing unpickled: a foreign file runs no code). A torchvision state dict carries
    no mark. Told apart by their bytes, not their names (either may have been written under
    the other's extension): torch's files are zip archives."""
    with open(path, 'rb') as f:
        if f.read(2) != b'PK':
            f.seek(0)
            texts = [arg for _, arg, _ in pickletools.genops(f) if isinstance(arg, str)]
            return ('__author__', 'genview_mm') in zip(texts, texts[1:])
    return 'converted_from' in read_checkpoint(path)['meta']


def check_apart(src: str, dst: str) -> None:
    """ValueError if ``dst`` is the file ``src`` (links resolved): converting would replace a
    training checkpoint by its backbone weights."""
    if same_file(src, dst):
        raise ValueError(f'{dst} is the input checkpoint {src} (the same file): converting '
                         'would replace it by its backbone weights, and the rest (heads, '
                         'optimizer state, training progress) would be lost; write the output '
                         'to another path')


def convert_checkpoint(src: str, dst: str, fmt: str = 'mmpretrain',
                       prefix: str = 'backbone.', info: Optional[dict] = None) -> dict:
    """Convert ``src`` into ``dst`` in format ``fmt`` (one of :data:`FORMATS`).

    Args:
        src (str): GenView/MMPretrain checkpoint (runner checkpoint or plain state dict).
        dst (str): output file (``.pth`` for mmpretrain/torchvision, ``.pkl`` for detectron2).
        fmt (str): output format. Defaults to 'mmpretrain'.
        prefix (str): key prefix of the backbone in ``src``. Defaults to 'backbone.'.
        info (dict, optional): receives ``pretrain_normalisation``, whatever the format.

    Returns:
        dict: what was saved. The normalisation found in the source's config (None if it has
        none) is ``meta['pretrain_normalisation']`` of the mmpretrain format and
        ``pretrain_normalisation`` of the detectron2 pickle (detectron2 ignores the key); a
        torchvision state dict has no room for it.

    Raises:
        FileNotFoundError, CheckpointError: ``src`` is missing or not a usable checkpoint (nothing
            is written then).
        ValueError: ``dst`` is ``src`` (:func:`check_apart`; checked first).
        IsADirectoryError: ``dst`` is a folder (checked next).
        NotWritable: ``dst`` cannot be created: under a file, or in a folder where this process
            cannot create files (checked next; :func:`genview_mm.utils.file_safety.check_writable`).
    """
    if fmt not in FORMATS:
        raise ValueError(f'unknown format {fmt!r}; choose one of {FORMATS}')
    check_apart(src, dst)
    if osp.isdir(dst):  # before the work: writing would fail only at the end
        name = 'backbone.pkl' if fmt == 'detectron2' else 'backbone.pth'
        raise IsADirectoryError(f'{dst} is a folder: give the output file, e.g. '
                                f'{osp.join(dst, name)}')
    check_writable(dst)
    ckpt = read_checkpoint(src)
    state = state_dict_of(ckpt)
    nested = sorted(k for k, v in ckpt.items() if isinstance(v, dict)) if not state else []
    if nested:  # DINO's {'student': ..., 'teacher': ...}: --prefix cannot reach inside
        raise CheckpointError(
            f'{src} holds no tensors at its top level or under state_dict/model; its top-level '
            f'keys are {nested[:10]}: save the model you mean as a flat state dict first, e.g. '
            f"torch.save(torch.load('{src}')['{nested[0]}'], 'flat.pth'), and convert that")
    heads = sorted({k.split('.')[0] for k in state if k.startswith(_DETECTOR_HEADS)})
    if heads:  # its backbone may lack res5 (C4: in the RoI head) and was trained on COCO
        raise CheckpointError(f'{src} is a detector checkpoint ({", ".join(heads)}): convert '
                              'the self-supervised pretraining checkpoint instead '
                              '(work_dirs/<pretraining config>/epoch_N.pth)')
    backbone = extract_backbone(state, prefix, source=src)
    norm = recorded_normalisation(ckpt)  # a converted file's record, else its config's
    if info is not None:
        info['pretrain_normalisation'] = norm
    if fmt == 'mmpretrain':
        out = to_mmpretrain(backbone, 'backbone.', meta=dict(
            converted_from=osp.basename(src), source_prefix=prefix, init_cfg_prefix='backbone.',
            pretrain_normalisation=norm))
    elif fmt == 'torchvision':
        out = to_torchvision(backbone)  # a bare state dict: no room for it
    else:
        out = dict(to_detectron2(backbone), pretrain_normalisation=norm)
    with atomic_write(dst, 'wb') as f:  # a crash never leaves a half-written dst
        if fmt == 'detectron2':  # numpy-1 names: detectron2 setups often have numpy < 1.26.1
            numpy1_pickle.dump(out, f)
        else:
            torch.save(out, f)
    return out
