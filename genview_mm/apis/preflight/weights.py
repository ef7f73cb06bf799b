"""Read a model's weights fingerprint from its files, without loading the model."""
import glob
import math
import os.path as osp
from typing import Dict, List, Optional


def _read_head(files: List[str], key: str, count: int):
    """The first ``count`` elements (flattened) of tensor ``key`` in safetensors ``files``."""
    from safetensors import safe_open
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


def folder_fingerprint(folder: str) -> Optional[List[float]]:
    """The weights fingerprint of the CLIP vision tower in ``folder`` (``config.json`` +
    ``*.safetensors``), as :meth:`PatchEncoderBase.identity` would compute it after loading;
    None when the folder has no safetensors weights or another layout."""
    try:
        import torch
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        from genview_mm.foreground.encoder_identity import (
            FINGERPRINT_ELEMENTS,
            fingerprint_keys,
            tensor_statistic,
        )
        files = sorted(glob.glob(osp.join(folder, '*.safetensors')))
        if not files:
            return None
        with torch.device('meta'):
            model = CLIPVisionModelWithProjection(CLIPVisionConfig.from_pretrained(folder))
        shapes: Dict[str, tuple] = {k: tuple(v.shape) for k, v in model.state_dict().items()
                                    if v.is_floating_point()}
        values = []
        for key in fingerprint_keys(shapes):
            head = _read_head(files, key, FINGERPRINT_ELEMENTS)
            if head is None:
                return None
            values.append(tensor_statistic(head))
        return values
    except Exception:  # noqa: BLE001  (an unreadable folder just cannot be fingerprinted)
        return None
