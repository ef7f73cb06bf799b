"""The identity of a CLIP vision tower saved in a folder, read without loading it: its
architecture from ``config.json`` and its weights fingerprint from the heads of a few
safetensors tensors, or of a ``pytorch_model.bin`` mapped from disk (what
:meth:`PatchEncoderBase.identity` computes after loading)."""
import glob
import math
import os.path as osp
from typing import Dict, List, Optional

import torch

from genview_mm.foreground.encoder_identity import (
    FINGERPRINT_ELEMENTS,
    EncoderIdentity,
    fingerprint_keys,
    tensor_statistic,
)

from .clip_encoder import clip_arch


def _read_head(files: List[str], key: str, count: int):
    """The first ``count`` elements (flattened) of tensor ``key`` in safetensors ``files`` (a
    dict: the tensors of a ``.bin`` file)."""
    from safetensors import safe_open
    if isinstance(files, dict):
        return files[key].reshape(-1)[:count] if key in files else None
    for path in files:
        with safe_open(path, framework='pt') as f:
            if key not in f.keys():
                continue
            sliced = f.get_slice(key)
            shape = sliced.get_shape()
            if len(shape) <= 1:
                return sliced[:count] if shape else f.get_tensor(key)
            rows = -(-count // max(1, math.prod(shape[1:])))
            return sliced[:rows]
    return None


def clip_folder_identity(folder: str, name: str) -> Optional[EncoderIdentity]:
    """The identity (``name``, architecture, weights fingerprint) of the CLIP vision tower in
    ``folder`` (``config.json`` + ``*.safetensors``, else ``pytorch_model.bin``, as
    transformers loads them), as the loaded encoder would report it; None when the folder has
    no weights or another layout.

    Args:
        folder (str): the model folder.
        name (str): the encoder's canonical name.

    Returns:
        EncoderIdentity, optional: the identity.
    """
    try:
        from safetensors import safe_open
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
        files = sorted(glob.glob(osp.join(folder, '*.safetensors')))
        stored = set()
        for path in files:  # headers only
            with safe_open(path, framework='pt') as f:
                stored.update(f.keys())
        if not files:  # an older save: mapped, not read (a ViT-H's 2.5 GB)
            binary = osp.join(folder, 'pytorch_model.bin')
            if not osp.isfile(binary):
                return None
            try:
                files = torch.load(binary, map_location='cpu', mmap=True, weights_only=True)
            except RuntimeError:  # a legacy (not zip) file cannot be mapped: read it
                files = torch.load(binary, map_location='cpu', weights_only=True)
            stored = set(files)
        config = CLIPVisionConfig.from_pretrained(folder)
        with torch.device('meta'):
            model = CLIPVisionModelWithProjection(config)
        def in_file(key: str) -> Optional[str]:  # a CLIPVisionModel folder keeps no
            short = key[len('vision_model.'):] if key.startswith('vision_model.') else None
            return key if key in stored else short if short in stored else None  # prefix

        shapes: Dict[str, tuple] = {  # a CLIPVisionModel folder has no projection, and the
            k: tuple(v.shape) for k, v in model.state_dict().items()  # loaded encoder drops
            if v.is_floating_point()  # it: its fingerprint samples the keys without it
            and (in_file(k) or not k.startswith('visual_projection.'))}
        values = []
        for key in fingerprint_keys(shapes):
            head = _read_head(files, in_file(key) or key, FINGERPRINT_ELEMENTS)
            if head is None:
                return None
            values.append(tensor_statistic(head))
        return EncoderIdentity(name, clip_arch(config), values)
    except Exception:  # noqa: BLE001  (an unreadable folder just cannot be identified)
        return None
