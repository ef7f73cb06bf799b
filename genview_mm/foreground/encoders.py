"""A frozen CLIP vision encoder that returns patch tokens (no CLS, after the final LayerNorm)."""
import os
import os.path as osp
import re
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_HF_CACHE = re.compile(r'models--([^/]+)--([^/]+)/snapshots/[^/]+(?:/(.*))?$')


def encoder_id(path_or_id: str, subfolder: Optional[str] = None) -> str:
    """A stable id for an encoder: ``'owner/repo[/subfolder]'`` or an absolute local path.

    A folder inside the Hugging Face cache (``.../models--owner--repo/snapshots/<rev>/...``)
    maps back to its hub id, so a PCA fitted from the hub id matches the cached copy.
    """
    full = osp.join(path_or_id, subfolder) if subfolder else path_or_id
    if osp.isdir(full):
        full = osp.abspath(full).replace(os.sep, '/')
        match = _HF_CACHE.search(full)
        if match:
            owner, repo, rest = match.groups()
            return '/'.join(p for p in (owner, repo, rest) if p)
    return full.rstrip('/')


class PatchEncoderBase(nn.Module):
    """What every frozen patch encoder shares: the device/dtype of its weights and CLIP-style
    preprocessing (resize the short side, centre crop, normalise with ``self.mean/std``).
    Subclasses set ``input_size``, ``mean`` and ``std``."""

    input_size: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def preprocess(self, images: List) -> Tensor:
        """PIL images -> normalised pixel values (B, 3, S, S) on the encoder's device."""
        x = clip_preprocess(images, self.input_size, self.mean, self.std)
        return x.to(self.device, self.dtype)


class CLIPPatchEncoder(PatchEncoderBase):
    """Frozen wrapper of a ``transformers`` CLIP vision model giving normalised patch tokens.

    Args:
        model (nn.Module): a ``CLIPVisionModel`` or ``CLIPVisionModelWithProjection``.
        name (str): encoder id recorded in PCA files and manifests.
        mean (Sequence[float], optional): CLIP pixel mean. Defaults to CLIP's.
        std (Sequence[float], optional): CLIP pixel std. Defaults to CLIP's.
    """

    def __init__(self, model: nn.Module, name: str, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        self.model = model
        self.name = name
        config = model.config
        self.input_size = int(config.image_size)
        side = self.input_size // int(config.patch_size)
        self.grid: Tuple[int, int] = (side, side)
        self.dim = int(config.hidden_size)
        self.mean = tuple(float(v) for v in (mean or CLIP_MEAN))
        self.std = tuple(float(v) for v in (std or CLIP_STD))
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> 'CLIPPatchEncoder':
        """Always stays in eval mode (the encoder is frozen)."""
        return super().train(False)

    @classmethod
    def from_pretrained(cls, path_or_id: str, subfolder: Optional[str] = None,
                        torch_dtype: Optional[torch.dtype] = None,
                        name: Optional[str] = None) -> 'CLIPPatchEncoder':
        """Load the vision model (and its image processor's mean/std) from a path or hub id.

        The processor is looked up in ``subfolder``, then in a sibling ``feature_extractor``
        folder (the diffusers layout), else CLIP's defaults are used.
        """
        from transformers import CLIPVisionModelWithProjection
        kwargs = {'subfolder': subfolder} if subfolder else {}
        if torch_dtype is not None:
            kwargs['dtype'] = torch_dtype
        try:
            model = CLIPVisionModelWithProjection.from_pretrained(path_or_id, **kwargs)
        except OSError as exc:
            where = f'{path_or_id!r}' + (f' (subfolder {subfolder!r})' if subfolder else '')
            raise OSError(f'Cannot load a CLIP vision encoder from {where}: {exc}. Pass a local '
                          'folder holding config.json + weights, or a reachable hub id.') from exc
        mean, std = _processor_stats(path_or_id, subfolder)
        return cls(model, name or encoder_id(path_or_id, subfolder), mean, std)

    @torch.no_grad()
    def encode(self, pixel_values: Tensor) -> Tuple[Tensor, Tensor]:
        """Patch tokens (B, N, D) and projected image embeddings (B, P) from one pass."""
        vision = self.model.vision_model
        hidden = vision(pixel_values=pixel_values.to(self.device, self.dtype)).last_hidden_state
        normed = vision.post_layernorm(hidden)
        pooled = normed[:, 0]
        proj = getattr(self.model, 'visual_projection', None)
        embeds = proj(pooled) if proj is not None else pooled
        return normed[:, 1:], embeds

    def forward(self, pixel_values: Tensor) -> Tensor:
        """Patch tokens after ``post_layernorm``, no CLS, no projection: (B,3,S,S) -> (B,N,D)."""
        return self.encode(pixel_values)[0]

    def image_embeds(self, pixel_values: Tensor) -> Tensor:
        """Projected CLIP image embedding (B, P)."""
        return self.encode(pixel_values)[1]

def clip_preprocess(images: List, size: int, mean: Sequence[float],
                    std: Sequence[float]) -> Tensor:
    """PIL images -> float32 CPU tensor (B, 3, size, size): resize the short side to ``size``
    (bicubic), centre crop, scale to [0, 1], normalise with ``mean``/``std``."""
    import numpy as np
    from PIL import Image
    arrays = []
    for img in images:
        img = img.convert('RGB')
        w, h = img.size
        scale = size / min(w, h)
        nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
        img = img.resize((nw, nh), Image.BICUBIC)
        left, top = (nw - size) // 2, (nh - size) // 2
        arrays.append(np.asarray(img.crop((left, top, left + size, top + size))))
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
    mean_t = torch.tensor(tuple(mean)).view(1, 3, 1, 1)
    std_t = torch.tensor(tuple(std)).view(1, 3, 1, 1)
    return (x - mean_t) / std_t


def _processor_stats(path_or_id: str, subfolder: Optional[str]):
    """(mean, std) of the CLIP image processor next to the model, or (None, None)."""
    from transformers import CLIPImageProcessor
    candidates = [subfolder] if subfolder else [None]
    candidates.append('feature_extractor')
    for sub in candidates:
        try:
            kwargs = {'subfolder': sub} if sub else {}
            proc = CLIPImageProcessor.from_pretrained(path_or_id, **kwargs)
            return tuple(proc.image_mean), tuple(proc.image_std)
        except (OSError, ValueError, TypeError):
            continue
    return None, None
