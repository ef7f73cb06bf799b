"""Foreground estimation from patch tokens (GenView, arXiv:2403.12003, Sec. 3.2).

``ForegroundPCA`` holds a fitted direction and threshold (``tools/fit_foreground_pca.py`` fits
one, ``tools/import_official_pca.py`` imports the authors' vectors); ``check_pca_encoder`` says
whether a file fits the encoder in use, by the encoder's identity (:mod:`.encoder_identity`).
The encoders themselves live in :mod:`genview_mm.models.encoders`, above this package.
"""
from .encoder_check import check_pca_encoder, fits_encoder, same_encoder
from .encoder_identity import EncoderIdentity, encoder_id, same_fingerprint, weights_fingerprint
from .pca import THRESHOLD_RULES, ForegroundPCA, ForegroundPCAError

__all__ = ['ForegroundPCA', 'ForegroundPCAError', 'THRESHOLD_RULES', 'check_pca_encoder',
           'fits_encoder', 'same_encoder', 'EncoderIdentity', 'encoder_id', 'same_fingerprint',
           'weights_fingerprint']
