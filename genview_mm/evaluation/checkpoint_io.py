"""Read a checkpoint safely, with one clear error per way a file can be wrong.

:func:`read_checkpoint` loads with ``torch.load(weights_only=True)`` (``import genview_mm``
allow-lists the data types MMEngine checkpoints hold, numpy 1.x spellings included; see
:mod:`genview_mm.compat`) and tells three failures apart: a file that is not a ``torch.save``
file at all (text, image, plain pickle), a torch file that cannot be read (truncated, corrupted),
and a checkpoint that pickles objects beyond tensors and those data types (refused, since
unpickling them could run code). :func:`pretraining_normalisation` reads the data preprocessor's
mean/std from the config text that MMEngine stores in ``meta['cfg']``, without executing it.
"""
import ast
import os
import os.path as osp
import pickle
import re
import zipfile
import zlib
from contextlib import suppress
from typing import Any, Dict, Optional

import torch

from ..utils.config_keys import type_name

# CLIP's mean/std in 0-255, RGB: what GenView pretraining (ours and the official configs),
# configs/benchmarks and configs/detection normalise with (configs/_base_/clip_normalization.py)
TRANSFER_MEAN = (255 * 0.48145466, 255 * 0.4578275, 255 * 0.40821073)
TRANSFER_STD = (255 * 0.26862954, 255 * 0.26130258, 255 * 0.27577711)
# what torchvision's ImageNet models and detectron2's (caffe, BGR, std 1) configs normalise with
_CONSUMER_DEFAULTS = {
    'torchvision': dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True),
    'detectron2': dict(mean=[103.53, 116.28, 123.675], std=[1.0, 1.0, 1.0], to_rgb=False)}
# A legacy (pre-zip) torch.save file starts with a pickled magic number; after the 2-byte
# protocol header its LONG1 opcode and value are the same for every protocol.
_LEGACY_MAGIC = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)[2:-1]
_EXPECTED = ('Expected a file written by torch.save: an MMEngine runner checkpoint (e.g. '
             'work_dirs/<config>/epoch_200.pth or an official GenView model-zoo .pth) or a '
             'state dict of tensors.')


class CheckpointError(ValueError):
    """A checkpoint file is missing, not a checkpoint, unreadable, refused or lacks weights."""


def _describe(head: bytes, is_zip: bool) -> str:
    """What a file that is not a torch.save file looks like, from its first bytes."""
    if not head:
        return 'an empty file'
    if head.startswith(b'\xff\xd8\xff'):
        return 'a JPEG image'
    if head.startswith(b'\x89PNG'):
        return 'a PNG image'
    if is_zip:
        return 'a zip archive without the data.pkl that torch.save writes'
    if head.startswith(b'PK'):
        return ('a truncated or damaged zip archive (an interrupted copy or download?); copy or '
                'download it again')
    if head[:1] == b'\x80':
        return 'a plain pickle (not written by torch.save)'
    try:
        text = head.decode('utf-8')
    except UnicodeDecodeError:
        return f'binary data starting with {head[:8]!r}'
    return f'a text file starting with {text.splitlines()[0][:40]!r}' if text.strip() else \
        'a text file of blank lines'


def checkpoint_in(folder: str) -> str:
    """The checkpoint a work_dir's ``last_checkpoint`` names, else its newest ``*.pth``, else
    ``<folder>/epoch_N.pth``."""
    try:
        with open(osp.join(folder, 'last_checkpoint'), encoding='utf-8') as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            return named
    except (OSError, UnicodeDecodeError):
        pass
    try:  # (an unreadable folder: the example name only)
        found = [osp.join(folder, n) for n in os.listdir(folder) if n.endswith('.pth')]
    except OSError:
        found = []
    times = {}
    for p in found:
        with suppress(OSError):  # (one removed since the listing: not named)
            if osp.isfile(p):
                times[p] = osp.getmtime(p)
    return max(times, key=times.get) if times else osp.join(folder, 'epoch_N.pth')


def folder_given(path: str) -> str:
    """What to say of a folder given as a checkpoint (a work_dir: 'not found' misled)."""
    return f'{path} is a folder, not a file: give a checkpoint file, e.g. {checkpoint_in(path)}'


def check_torch_file(path: str) -> None:
    """Raise :class:`CheckpointError` unless ``path`` looks like a ``torch.save`` file
    (``FileNotFoundError`` if there is no such file)."""
    if osp.isdir(path):
        raise FileNotFoundError(f'checkpoint {folder_given(path)}')
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} does not exist (or is not a file)')
    with open(path, 'rb') as f:
        head = f.read(64)
    is_zip = zipfile.is_zipfile(path)
    if is_zip:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        if any(n.endswith('/constants.pkl') for n in names):  # also holds a data.pkl
            raise CheckpointError(f'{path} is a TorchScript model, not a checkpoint: load it '
                                  'with torch.jit.load and torch.save its state_dict()')
        if any(n == 'data.pkl' or n.endswith('/data.pkl') for n in names):
            return
    elif head[:1] == b'\x80' and head[2:2 + len(_LEGACY_MAGIC)] == _LEGACY_MAGIC:
        return
    raise CheckpointError(f'{path} is not a PyTorch checkpoint: it is {_describe(head, is_zip)}. '
                          + _EXPECTED)


def check_checksums(path: str) -> None:
    """Raise :class:`CheckpointError` if an entry of a zip checkpoint does not match its CRC-32
    (``torch.load`` does not check them: zeroed or flipped tensor bytes loaded as weights).
    Entries saved without one (CRC 0; torch >= 2.6 can) are not checked."""
    if not zipfile.is_zipfile(path):
        return
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.CRC == 0 and info.file_size:
                continue
            try:
                with zf.open(info) as f:
                    while f.read(1 << 24):
                        pass
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise CheckpointError(
                    f'{path} is damaged: its entry {info.filename} does not match its checksum '
                    f'({exc}): copy or download it again') from None


def check_whole_file(path: str) -> None:
    """:func:`check_torch_file` and :func:`check_checksums`: a ``torch.save`` file whose bytes
    are as written (``FileNotFoundError`` or :class:`CheckpointError` otherwise)."""
    check_torch_file(path)
    check_checksums(path)


def _weights_only_detail(err: Exception) -> str:
    """The unpickler's own reason, without torch's generic preamble and footer."""
    text = str(err)
    if 'WeightsUnpickler error:' in text:
        text = text.split('WeightsUnpickler error:', 1)[1]
    text = text.split('Check the documentation of torch.load', 1)[0]
    return ' '.join(text.split())


#: what ``torch.load(weights_only=True)`` raises on a file it cannot read or refuses (odd pickles:
#: 'Cannot unpickle a scalar with object dtype' is a TypeError, ...)
LOAD_ERRORS = (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, ValueError,
               TypeError, AttributeError, IndexError)


def load_error(path: str, err: Exception) -> CheckpointError:
    """The :class:`CheckpointError` saying why ``torch.load(path, weights_only=True)`` raised
    ``err``: what a refused file pickles, a pickle protocol it cannot read, or a damaged file
    (torch's own message opens with a generic preamble, its reason further on)."""
    if isinstance(err, pickle.UnpicklingError):
        detail = _weights_only_detail(err)
        name = re.search(r'GLOBAL (\S+)', detail)
        if name or 'getattr' in detail or 'allowlist' in detail:
            what = f'it pickles {name.group(1)}' if name else detail
            return CheckpointError(
                f'{path} was refused by weights_only loading: {what}. Only tensors and the data '
                'types MMEngine checkpoints hold (numpy arrays, scalars and dtypes, HistoryBuffer) '
                'are loaded, because unpickling other objects can run code. If you trust the '
                'file, save its state dict as plain tensors and convert that.')
        if 'Unsupported operand' in detail:  # torch.save(..., pickle_protocol=3 or more)
            return CheckpointError(
                f'{path} could not be read ({detail}): it was saved with a pickle protocol that '
                'weights_only loading cannot read; save it again with torch.save\'s default '
                '(pickle_protocol=2), e.g. torch.save(torch.load(path, weights_only=False), '
                'path) where you trust the file.')
        return CheckpointError(f'{path} could not be read ({detail or err}); it may be truncated '
                               'or corrupted: copy or download it again.')
    return CheckpointError(f'{path} could not be read ({type(err).__name__}: '
                           f'{str(err).splitlines()[0] if str(err) else "no detail"}); it may '
                           'be truncated or corrupted: copy or download it again.')


def read_checkpoint(path: str) -> Dict[str, Any]:
    """``torch.load(path, map_location='cpu', weights_only=True)``, checked to be a dict.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: with a message naming ``path`` and what is wrong with it.
    """
    check_whole_file(path)
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except LOAD_ERRORS as err:
        raise load_error(path, err) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path} is a torch.save file but not a checkpoint: it holds a '
                              f'{type(ckpt).__name__}, not a dict. ' + _EXPECTED)
    return ckpt


def _dict_items(node: ast.AST) -> Dict[str, ast.AST]:
    """Keyword -> value node of ``dict(a=..)`` or ``{'a': ..}``; empty for anything else."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'dict':
        return {kw.arg: kw.value for kw in node.keywords if kw.arg}
    if isinstance(node, ast.Dict):
        return {k.value: v for k, v in zip(node.keys, node.values)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return {}


def pretraining_normalisation(cfg_text: str) -> Optional[Dict[str, Any]]:
    """The pretraining config's input normalisation, read from MMEngine's ``meta['cfg']``.

    The text is parsed (``ast``), never executed. The model's own ``data_preprocessor`` wins
    over the top-level one, as in MMEngine's runner.

    Args:
        cfg_text (str): the config as MMEngine saved it (``Config.pretty_text``).

    Returns:
        dict or None: ``mean`` and ``std`` (lists of floats, 0-255) and ``to_rgb`` (bool), or
        None when the text holds no literal mean and std.
    """
    if not isinstance(cfg_text, str):
        return None
    try:
        tree = ast.parse(cfg_text)
    except (SyntaxError, ValueError):
        return None
    found: Dict[str, ast.AST] = {}
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)):
            continue
        name, items = stmt.targets[0].id, _dict_items(stmt.value)
        if name == 'data_preprocessor' and not found:
            found = items
        elif name == 'model' and 'data_preprocessor' in items:
            found = _dict_items(items['data_preprocessor']) or found
    try:  # a mean of None (no normalisation) or one number: not recorded as three channels
        mean, std = ([float(v) for v in ast.literal_eval(found[k])] for k in ('mean', 'std'))
        rgb = ast.literal_eval(found.get('to_rgb', found.get('bgr_to_rgb', ast.Constant(False))))
    except (KeyError, ValueError, TypeError, SyntaxError):
        return None
    return dict(mean=mean, std=std, to_rgb=bool(rgb))


def recorded_normalisation(ckpt: Any) -> Optional[Dict[str, Any]]:
    """The normalisation a checkpoint's weights were pretrained with: what a converted file
    records (``meta['pretrain_normalisation']``; the detectron2 pickle's top-level key), else
    what its training config says (``meta['cfg']``); None if neither says."""
    if not isinstance(ckpt, dict):
        return None
    meta = ckpt.get('meta') if isinstance(ckpt.get('meta'), dict) else {}
    for norm in (meta.get('pretrain_normalisation'), ckpt.get('pretrain_normalisation')):
        if isinstance(norm, dict) and {'mean', 'std', 'to_rgb'} <= set(norm):
            return norm
    return pretraining_normalisation(meta.get('cfg'))


def same_normalisation(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """Whether two normalisations agree: channel order, and mean/std within 1e-2 (the official
    configs' std differs from CLIP's by 2e-5: the same)."""
    values_a, values_b = list(a['mean']) + list(a['std']), list(b['mean']) + list(b['std'])
    return (bool(a['to_rgb']) == bool(b['to_rgb']) and len(values_a) == len(values_b)
            and all(abs(float(x) - float(y)) < 1e-2 for x, y in zip(values_a, values_b)))


def matches_transfer_normalisation(norm: Dict[str, Any]) -> bool:
    """True if ``norm`` is RGB with CLIP's mean/std, what our transfer configs use."""
    return len(norm['mean']) == 3 and same_normalisation(
        norm, dict(mean=TRANSFER_MEAN, std=TRANSFER_STD, to_rgb=True))


def consumer_normalisation(norm: Optional[Dict[str, Any]], fmt: str) -> str:
    """How a torchvision or detectron2 user must normalise inputs for a converted backbone:
    those libraries default to ImageNet's mean/std (detectron2: caffe BGR), which GenView's
    pretraining did not use (CLIP's, RGB: the stem would see inputs scaled ~20% otherwise).

    Args:
        norm (dict, optional): from :func:`pretraining_normalisation`; None: the checkpoint
            records no config, and GenView's configs' normalisation is given.
        fmt (str): 'torchvision' or 'detectron2'.
    """
    given = norm or dict(mean=list(TRANSFER_MEAN), std=list(TRANSFER_STD), to_rgb=True)
    order = 'RGB' if given['to_rgb'] else 'BGR'
    source = ('this backbone was pretrained on inputs normalised with' if norm else
              'the checkpoint records no config; GenView pretrains on inputs normalised with')

    def fmt_list(values, scale=1.0):
        return '[' + ', '.join(f'{v / scale:.6g}' for v in values) + ']'
    if fmt == 'torchvision':
        use = (f'transforms.Normalize(mean={fmt_list(given["mean"], 255)}, '
               f'std={fmt_list(given["std"], 255)}) on {order} images in [0, 1]')
    else:
        use = (f'MODEL.PIXEL_MEAN {fmt_list(given["mean"])} MODEL.PIXEL_STD '
               f'{fmt_list(given["std"])} INPUT.FORMAT {order} MODEL.RESNETS.STRIDE_IN_1X1 False '
               "(a pytorch-style ResNet: detectron2's default True moves the stride to the 1x1 "
               'conv)')
    default = same_normalisation(given, _CONSUMER_DEFAULTS[fmt])
    return (f'note: {source} mean={fmt_list(given["mean"])} '
            f'std={fmt_list(given["std"])} ({order}, 0-255), '
            f'{"" if default else "not "}the ImageNet defaults of {fmt}: use {use}')


#: MMPretrain's preprocessors, whose channel flip is ``to_rgb`` (MMEngine's and MMDetection's
#: is ``bgr_to_rgb``)
MMPRETRAIN_PREPROCESSORS = ('ClsDataPreprocessor', 'SelfSupDataPreprocessor',
                            'TwoNormDataPreprocessor', 'VideoDataPreprocessor',
                            'MultiModalDataPreprocessor')


def rgb_option(pre: Any, key: str = 'data_preprocessor') -> str:
    """The name of the channel-order flag of the preprocessor ``pre`` (a config dict) set at
    ``key``: the one it sets, else ``to_rgb`` for one of MMPretrain's types, ``bgr_to_rgb``
    for another type, else by where it sits (``model.``: a detection config's)."""
    if isinstance(pre, dict):
        for name in ('bgr_to_rgb', 'to_rgb'):
            if name in pre:
                return name
        kind = type_name(pre)
        if kind:
            return 'to_rgb' if kind in MMPRETRAIN_PREPROCESSORS else 'bgr_to_rgb'
    return 'bgr_to_rgb' if key.startswith('model.') else 'to_rgb'


def normalisation_options(norm: Dict[str, Any], key: str = 'data_preprocessor',
                          rgb: Optional[str] = None) -> str:
    """``--cfg-options`` that make a transfer config normalise like pretraining.

    Args:
        norm (dict): from :func:`pretraining_normalisation`.
        key (str): the config key of the preprocessor: 'data_preprocessor' for configs/benchmarks,
            'model.data_preprocessor' for configs/detection. Defaults to 'data_preprocessor'.
        rgb (str, optional): the name of its channel-order flag (:func:`rgb_option`); None:
            by ``key`` (``model.``: MMDetection's ``bgr_to_rgb``, else ``to_rgb``).
    """
    def fmt(values):
        return '[' + ','.join(f'{v:.10g}' for v in values) + ']'
    rgb = rgb or rgb_option(None, key)
    return (f'{key}.mean="{fmt(norm["mean"])}" {key}.std="{fmt(norm["std"])}" '
            f'{key}.{rgb}={norm["to_rgb"]}')
