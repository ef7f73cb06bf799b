"""Pluggable frozen patch encoders for the pair-quality scorer.

An encoder is an ``nn.Module`` with attributes ``input_size`` (int), ``grid`` ((h, w)), ``dim``
(int), ``mean``/``std`` (RGB 3-tuples, 0-1 units), ``name`` (str) whose ``forward`` maps
encoder-normalised (B, 3, S, S) pixels to (B, N, D) patch tokens. Two are built in:

* ``'CLIPPatchEncoder'``: a transformers CLIP vision tower (default, e.g. CLIP ViT-B/32).
* ``'TimmPatchEncoder'``: a timm image model's final feature map, e.g. the LAION-2B CLIP
  ConvNeXt-Base-W image tower ``convnext_base.clip_laion2b`` used by the official GenView code.
"""
from typing import Callable, Dict, Optional, Tuple, Union

import torch
from torch import nn

from genview_mm.foreground.encoders import CLIP_MEAN, CLIP_STD, PatchEncoderBase

PATCH_ENCODERS: Dict[str, Callable[..., nn.Module]] = {}


def register_patch_encoder(name: str) -> Callable:
    """Decorator registering an encoder builder under ``name``."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in PATCH_ENCODERS:
            raise KeyError(f'patch encoder {name!r} is already registered')
        PATCH_ENCODERS[name] = builder
        return builder

    return wrap


@register_patch_encoder('CLIPPatchEncoder')
def build_clip_patch_encoder(path: str, subfolder: Optional[str] = None,
                             torch_dtype: Optional[torch.dtype] = None) -> nn.Module:
    """A transformers CLIP vision tower (hub id or local folder)."""
    from genview_mm.foreground import CLIPPatchEncoder
    return CLIPPatchEncoder.from_pretrained(path, subfolder=subfolder, torch_dtype=torch_dtype)


class TimmPatchEncoder(PatchEncoderBase):
    """Frozen timm model whose last feature map (B, C, h, w) becomes (B, h*w, C) tokens.

    Args:
        model_name (str): timm model name, e.g. ``'convnext_base.clip_laion2b'``.
        pretrained (bool): load timm's pretrained weights. Defaults to True.
        input_size (int, optional): encoder input side; defaults to the model's
            ``pretrained_cfg`` size (the official GenView scorer used 224 -> 7x7).
        checkpoint_path (str, optional): local weights file for timm. Defaults to None.
        **kwargs: passed to ``timm.create_model``.
    """

    def __init__(self, model_name: str, pretrained: bool = True,
                 input_size: Optional[int] = None, checkpoint_path: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__()
        try:
            import timm
        except ImportError as e:
            raise ImportError('TimmPatchEncoder needs timm: pip install timm') from e
        extra = dict(checkpoint_path=checkpoint_path) if checkpoint_path else {}
        self.model = timm.create_model(model_name, pretrained=pretrained, num_classes=0,
                                       **extra, **kwargs)
        cfg = getattr(self.model, 'pretrained_cfg', None) or {}
        self.input_size = int(input_size or cfg.get('input_size', (3, 224, 224))[-1])
        self.mean: Tuple[float, ...] = tuple(cfg.get('mean', CLIP_MEAN))
        self.std: Tuple[float, ...] = tuple(cfg.get('std', CLIP_STD))
        self.name = model_name
        self.requires_grad_(False).eval()
        with torch.no_grad():
            fmap = self.model.forward_features(torch.zeros(1, 3, self.input_size,
                                                           self.input_size))
        self.dim, self.grid = int(fmap.shape[1]), (int(fmap.shape[2]), int(fmap.shape[3]))

    def train(self, mode: bool = True) -> 'TimmPatchEncoder':
        """Stay in eval mode: the encoder is frozen."""
        return super().train(False)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) encoder-normalised pixels -> (B, h*w, C) tokens."""
        fmap = self.model.forward_features(pixel_values)
        return fmap.flatten(2).transpose(1, 2)


@register_patch_encoder('TimmPatchEncoder')
def build_timm_patch_encoder(**kwargs) -> nn.Module:
    """See :class:`TimmPatchEncoder`."""
    return TimmPatchEncoder(**kwargs)


def build_patch_encoder(cfg: Union[str, dict, nn.Module]) -> nn.Module:
    """Build a frozen encoder from a hub id/path, a ``dict(type=..., **kwargs)`` or a module.

    Args:
        cfg (str | dict | nn.Module): a string is a transformers CLIP id or folder; a dict names
            a builder in :data:`PATCH_ENCODERS`; a module is used as is (tests inject fakes).

    Returns:
        nn.Module: the encoder, frozen and in eval mode.
    """
    if isinstance(cfg, str):
        encoder = PATCH_ENCODERS['CLIPPatchEncoder'](cfg)
    elif isinstance(cfg, dict):
        cfg = dict(cfg)
        kind = cfg.pop('type', 'CLIPPatchEncoder')
        if kind not in PATCH_ENCODERS:
            raise KeyError(f'unknown patch encoder {kind!r}; registered: {sorted(PATCH_ENCODERS)}')
        encoder = PATCH_ENCODERS[kind](**cfg)
    elif isinstance(cfg, nn.Module):
        encoder = cfg
    else:
        raise TypeError(f'encoder must be a str, dict or nn.Module, got {type(cfg).__name__}')
    for attr in ('input_size', 'grid', 'dim', 'mean', 'std', 'name'):
        if not hasattr(encoder, attr):
            raise AttributeError(f'patch encoder {type(encoder).__name__} lacks {attr!r}')
    return encoder.requires_grad_(False).eval()
