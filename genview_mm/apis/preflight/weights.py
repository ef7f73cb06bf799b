"""A model's weights files, without loading the model: whether they load (headers, a
memory-mapped ``torch.load``)."""
import glob
import json
import os.path as osp
from typing import Optional

import torch

from genview_mm.evaluation.checkpoint_io import CheckpointError, check_torch_file

#: weights files of a model folder (Hugging Face layouts), single or sharded (``.index.json``),
#: in the order the loaders look for them (transformers: model.safetensors, else a safetensors
#: index, else pytorch_model.bin, else its index; timm's local-dir: the single files)
FOLDER_WEIGHTS = ('model.safetensors', '*.safetensors.index.json', 'pytorch_model.bin',
                  '*.index.json', 'open_clip_model.safetensors', 'open_clip_pytorch_model.bin')


def load_weights(path: str):
    """``torch.load(weights_only=True)``, memory-mapped (tensors' data not read) unless the file
    has the legacy (pre-zip) format, which cannot be mapped."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except RuntimeError as exc:
        if 'mmap can only be used' not in str(exc):
            raise
    return torch.load(path, map_location='cpu', weights_only=True)


def weights_file_problem(path: str) -> Optional[str]:
    """Why a weights file cannot be loaded, or None: a safetensors file by its header, any
    other by its torch.save structure and ``torch.load`` (memory-mapped; a file refused only
    for pickling objects beyond tensors is left to its loader)."""
    try:
        if path.endswith('.safetensors'):
            from safetensors import safe_open
            with safe_open(path, framework='pt') as f:
                if not list(f.keys()):
                    return f'{path} holds no tensors'
            return None
        check_torch_file(path)
        load_weights(path)
    except CheckpointError as exc:
        return str(exc).split('. Expected a file')[0].replace('PyTorch checkpoint',
                                                              'loadable torch file')
    except Exception as exc:  # noqa: BLE001  (what the loader says is the detail)
        text = str(exc).strip()
        if 'GLOBAL' in text:  # a torch file pickling more than tensors: its loader decides
            return None
        kind = 'safetensors' if path.endswith('.safetensors') else 'torch'
        first = text.splitlines()[0][:160] if text else ''
        return f'{path} is not a loadable {kind} file ({type(exc).__name__}: {first})'
    return None


def folder_weights_problem(folder: str, required: bool = True) -> Optional[str]:
    """Why a model folder's weights cannot be loaded (one unreadable, or none there when
    ``required``), or None."""
    # only the first kind found is read: another beside it (an older save, damaged or not) is not
    chosen = next((found for pattern in FOLDER_WEIGHTS
                   for found in [sorted(p for p in glob.glob(osp.join(glob.escape(folder),
                                                                   pattern)) if osp.isfile(p))]
                   if found), [])
    files = [p for p in chosen if not p.endswith('.index.json')]
    indexes = [p for p in chosen if p.endswith('.index.json')]
    for index in indexes:
        try:
            with open(index, encoding='utf-8') as f:
                shards = sorted(set(json.load(f)['weight_map'].values()))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            return f'{index} is not a weights index ({type(exc).__name__})'
        missing = [s for s in shards if not osp.isfile(osp.join(folder, s))]
        if missing:
            return f'{folder} lacks {len(missing)} weight shards of {index}, e.g. {missing[0]}'
        files += [osp.join(folder, s) for s in shards]
    if not files and required:
        return f'{folder} has no weights file ({FOLDER_WEIGHTS[0]}, {FOLDER_WEIGHTS[2]})'
    for path in files:
        problem = weights_file_problem(path)
        if problem:
            return problem
    return None
