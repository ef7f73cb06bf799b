"""Frozen patch encoders shared by view generation (foreground ratios) and pair scoring.

Registered in MMPretrain's ``MODELS``: ``CLIPPatchEncoder`` (a transformers CLIP vision tower) and
``TimmPatchEncoder`` (a timm model's last feature map, e.g. the paper's ConvNeXt scorer).
"""
from genview_mm.foreground.encoder_identity import (
                   EncoderIdentity,
                   encoder_id,
                   same_fingerprint,
                   weights_fingerprint,
)

from .base import CLIP_MEAN, CLIP_STD, PatchEncoderBase, clip_preprocess
from .builder import build_patch_encoder
from .clip_encoder import CLIPPatchEncoder
from .timm_encoder import OFFICIAL_SCORER, TimmPatchEncoder

__all__ = ['CLIP_MEAN', 'CLIP_STD', 'EncoderIdentity', 'PatchEncoderBase', 'clip_preprocess',
           'same_fingerprint', 'weights_fingerprint', 'build_patch_encoder', 'CLIPPatchEncoder',
           'encoder_id', 'OFFICIAL_SCORER', 'TimmPatchEncoder']
