"""What an encoder is, as a PCA file records it and compares it when the file is loaded.

An encoder's identity (:class:`EncoderIdentity`) is a canonical name (:func:`encoder_id`), an
architecture signature and a fingerprint of its weights (:func:`weights_fingerprint`) that
survives moving the files, another path to the same weights and another dtype. It lives here,
with the PCA file, so that :mod:`genview_mm.foreground` needs nothing from the models; the
encoders (:mod:`genview_mm.models.encoders`) compute their identity with these functions. A
whole model folder (a diffusers pipeline) is identified by :func:`model_fingerprint`.
"""
import glob
import hashlib
import json
import math
import os
import os.path as osp
import re
from typing import Dict, List, NamedTuple, Optional, Sequence

from torch import Tensor

#: tensors sampled by :func:`weights_fingerprint` and elements read from each
FINGERPRINT_TENSORS, FINGERPRINT_ELEMENTS = 16, 4096
#: relative tolerance of :func:`same_fingerprint` (bf16 rounding moves the statistics ~1e-4)
FINGERPRINT_RTOL = 2e-3


class EncoderIdentity(NamedTuple):
    """What a patch encoder is, as recorded in PCA files and compared when one is loaded.

    Attributes:
        name (str): canonical id: a hub id (also for a copy inside the Hugging Face cache), a
            timm model name, or an absolute folder.
        arch (str): architecture signature, e.g. ``'clip-vit:d1280-l32-p14-s224'``.
        fingerprint (List[float], optional): weight statistics (:func:`weights_fingerprint`);
            None when they could not be read.
    """
    name: str
    arch: Optional[str] = None
    fingerprint: Optional[List[float]] = None


def fingerprint_keys(shapes: Dict[str, Sequence[int]]) -> List[str]:
    """The tensors :func:`weights_fingerprint` reads: evenly spaced over the sorted names of
    the tensors with at least 16 elements."""
    names = sorted(k for k, s in shapes.items() if math.prod(s) >= 16)
    if not names:
        return []
    count = min(FINGERPRINT_TENSORS, len(names))
    step = (len(names) - 1) / max(count - 1, 1)
    return [names[round(i * step)] for i in range(count)]


def tensor_statistic(t: Tensor) -> float:
    """Mean absolute value of the first elements of ``t`` (flattened), in float64."""
    return float(t.detach().reshape(-1)[:FINGERPRINT_ELEMENTS].double().abs().mean())


def weights_fingerprint(state_dict: Dict[str, Tensor]) -> List[float]:
    """A dtype- and path-independent summary of a model's weights.

    For :data:`FINGERPRINT_TENSORS` tensors chosen by name (:func:`fingerprint_keys`) it takes
    the mean absolute value of their first :data:`FINGERPRINT_ELEMENTS` elements. The same
    weights give the same numbers whether loaded in fp32, fp16 or bf16 (within
    :data:`FINGERPRINT_RTOL`), from whichever folder; two trainings of one architecture do not.
    """
    floats = {k: v for k, v in state_dict.items() if v.is_floating_point()}
    keys = fingerprint_keys({k: tuple(v.shape) for k, v in floats.items()})
    return [tensor_statistic(floats[k]) for k in keys]


def same_fingerprint(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two fingerprints describe the same weights."""
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=FINGERPRINT_RTOL, abs_tol=1e-8) for x, y in zip(a, b))



def file_sha256(path: str) -> str:
    """The sha256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def is_fingerprint(value) -> bool:
    """Whether ``value`` is a :func:`model_fingerprint` (not a hub id it returned as it is)."""
    return isinstance(value, str) and value.startswith('weights:')


def model_fingerprint(pretrained: str, whole_folder: bool = False) -> str:
    """``'weights:<hash>'`` of a model folder (e.g. a diffusers pipeline): its configs'
    contents and the :func:`fingerprint_keys` statistics of each safetensors file (other files:
    their bytes), not where it lives. A hub id is returned as it is.

    A pipeline folder (one with ``model_index.json``) counts what the pipeline loads: that file
    and the component folders it names, and of a component's weight files those loaded without
    a variant (its safetensors where it has them, else its ``.bin``). A README, the single-file
    ``.ckpt``, ``.bin`` copies or fp16 variants, added by a full-repository download, change
    nothing and are not read. ``whole_folder``: every file (the fingerprint before this rule,
    which settings records made then hold); it equals the default for a folder
    ``save_pretrained`` wrote."""
    folder = osp.expanduser(pretrained)
    if not osp.isdir(folder):
        return pretrained
    files = {osp.relpath(p, folder).replace(os.sep, '/'): p for p in glob.glob(
        osp.join(folder, '**', '*'), recursive=True) if osp.isfile(p)}
    files = {rel: p for rel, p in files.items() if not rel.startswith('_')}
    if not whole_folder:
        files = _pipeline_files(folder, files)
    digest = hashlib.sha256()
    for rel, path in sorted(files.items()):
        digest.update(rel.encode() + b'\0')
        if path.endswith('.safetensors'):
            from safetensors import SafetensorError, safe_open
            try:
                with safe_open(path, framework='pt') as f:
                    shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
                    stats = [tensor_statistic(f.get_tensor(k)) for k in fingerprint_keys(shapes)]
            except SafetensorError as exc:  # a cut download, a file overwritten by something
                raise ValueError(f'cannot read the weights file {path} ({exc}): it is damaged '
                                 'or incomplete; download the model again') from None
            digest.update(json.dumps([sorted(shapes.items()), stats]).encode())
        elif path.endswith(('.json', '.txt')) or osp.getsize(path) < (1 << 20):
            digest.update(open(path, 'rb').read())
        else:
            digest.update(file_sha256(path).encode())
    return 'weights:' + digest.hexdigest()[:24]


#: a weights file (or a sharded one's index) in a component folder
_WEIGHTS = re.compile(r'\.(safetensors|bin|ckpt|pt|pth|msgpack|h5|onnx)$|\.index(\.[^.]+)?\.json$')
#: the ones a pipeline loads without a variant: ``NAME[-0000k-of-0000n].safetensors`` or
#: ``.bin`` and their ``.index.json`` (``NAME.fp16.safetensors`` is a variant)
_LOADED = re.compile(r'^[^.]+\.(safetensors|bin)(\.index\.json)?$')


def _pipeline_files(folder: str, files: Dict[str, str]) -> Dict[str, str]:
    """The files of ``files`` (relative path -> path) a diffusers pipeline at ``folder`` loads
    (see :func:`model_fingerprint`); all of them where there is no readable model_index.json."""
    try:
        with open(osp.join(folder, 'model_index.json'), encoding='utf-8') as f:
            index = json.load(f)
        parts = {k for k, v in index.items() if not k.startswith('_') and isinstance(v, list)
                 and v and v[0] is not None}
    except (OSError, ValueError, AttributeError):
        return files
    kept = {rel: p for rel, p in files.items()
            if rel == 'model_index.json' or ('/' in rel and rel.split('/')[0] in parts)}
    for part in parts:  # of its weights: safetensors if there are, else .bin; no variants
        weights = [r for r in kept if r.startswith(part + '/') and _WEIGHTS.search(r)]
        loaded = [r for r in weights if _LOADED.match(osp.basename(r))]
        safe = any('.safetensors' in r for r in loaded)
        loaded = [r for r in loaded if safe == ('.safetensors' in r)]
        for rel in weights if loaded else ():  # none loaded as named: keep them all
            if rel not in loaded:
                del kept[rel]
    return kept


_HF_CACHE = re.compile(r'models--([^/]+)--([^/]+)/snapshots/[^/]+(?:/(.*))?$')


def encoder_id(path_or_id: str, subfolder: Optional[str] = None) -> str:
    """A canonical name for a transformers encoder: ``'owner/repo[/subfolder]'`` or an
    absolute folder.

    A folder inside the Hugging Face cache (``.../models--owner--repo/snapshots/<rev>/...``) maps
    back to its hub id, so a file fitted with the hub id names the cached copy the same way.
    """
    full = osp.join(path_or_id, subfolder) if subfolder else path_or_id
    if osp.isdir(full):
        full = osp.abspath(full).replace(os.sep, '/')
        match = _HF_CACHE.search(full)
        if match:
            owner, repo, rest = match.groups()
            return '/'.join(p for p in (owner, repo, rest) if p)
    return full.rstrip('/')
