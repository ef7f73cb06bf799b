"""Foreground estimation from CLIP patch tokens (GenView, arXiv:2403.12003, Sec. 3.2).

``ForegroundPCA`` holds a fitted direction/threshold (fit with ``tools/fit_foreground_pca.py``);
``CLIPPatchEncoder`` turns images into the patch tokens it scores.
"""
from .encoders import CLIP_MEAN, CLIP_STD, CLIPPatchEncoder, clip_preprocess, encoder_id
from .pca import ForegroundPCA, ForegroundPCAError

__all__ = ['CLIPPatchEncoder', 'clip_preprocess', 'ForegroundPCA', 'ForegroundPCAError',
           'encoder_id', 'CLIP_MEAN', 'CLIP_STD']
