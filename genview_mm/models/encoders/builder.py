"""Build a patch encoder from what a config or a tool gives."""
from typing import Union

from torch import nn

REQUIRED = ('input_size', 'grid', 'dim', 'mean', 'std', 'name')


def build_patch_encoder(cfg: Union[str, dict, nn.Module]) -> nn.Module:
    """A frozen patch encoder from a hub id/folder, a config dict or a module.

    Args:
        cfg (str | dict | nn.Module): a string is a transformers CLIP id or folder
            (``CLIPPatchEncoder``); a dict is built with ``MODELS.build`` (``type`` defaults to
            ``'CLIPPatchEncoder'``); a module is used as it is (tests inject fakes).

    Returns:
        nn.Module: the encoder, without gradients and in eval mode.
    """
    from mmpretrain.registry import MODELS
    if isinstance(cfg, str):
        encoder = MODELS.build(dict(type='CLIPPatchEncoder', pretrained=cfg))
    elif isinstance(cfg, dict):
        encoder = MODELS.build(dict(dict(type='CLIPPatchEncoder'), **cfg))
    elif isinstance(cfg, nn.Module):
        encoder = cfg
    else:
        raise TypeError(f'encoder must be a str, dict or nn.Module, got {type(cfg).__name__}')
    missing = [a for a in REQUIRED if not hasattr(encoder, a)]
    if missing:
        raise AttributeError(f'patch encoder {type(encoder).__name__} lacks {missing}')
    return encoder.requires_grad_(False).eval()
