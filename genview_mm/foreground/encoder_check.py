"""Does a foreground PCA file fit the encoder in use? (pure rules, no model loading)

A file is accepted for an encoder when the token width, grid and input size agree and the encoder
is the same one: the same weights (fingerprints agree, whatever the path or hub id they were
loaded from), or, where a fingerprint is missing on one side, the same architecture and canonical
name. "Refit" is advised only when the encoder really differs.
"""
import os.path as osp
import shlex
from typing import Optional, Tuple

from ..utils.installation import tool_command
from .encoder_identity import EncoderIdentity, same_fingerprint
from .pca import ForegroundPCA, ForegroundPCAError


def same_encoder(pca: ForegroundPCA, identity) -> Tuple[bool, str]:
    """Whether ``identity`` (an :class:`EncoderIdentity`) is the
    encoder ``pca`` was fitted for, and why."""
    if pca.fingerprint and identity.fingerprint:
        if same_fingerprint(pca.fingerprint, identity.fingerprint):
            return True, 'same weights'
        return False, 'its weights differ'
    if pca.encoder_arch and identity.arch and pca.encoder_arch != identity.arch:
        return False, f'its architecture differs ({pca.encoder_arch} vs {identity.arch})'
    if pca.encoder == identity.name:
        return True, 'same name'
    return False, ('it has another name and its weights could not be compared (the file or '
                   'the encoder carries no fingerprint)')


def fits_encoder(pca: ForegroundPCA, identity: EncoderIdentity,
                 input_size: Optional[int] = None) -> Tuple[bool, str]:
    """Whether ``pca`` fits the encoder a config describes, without loading that encoder.

    Args:
        pca (ForegroundPCA): the loaded file.
        identity (EncoderIdentity): what the encoder is: its canonical name, and its
            architecture and weights fingerprint when they could be read without loading it.
        input_size (int, optional): the side the encoder takes, when known. Defaults to None.

    Returns:
        Tuple[bool, str]: whether it fits, and why: ``'input size'`` (it does not),
        ``'same name'``, ``'same weights'``, or :func:`same_encoder`'s reason.
    """
    if input_size is not None and pca.input_size != int(input_size):
        return False, 'input size'
    return same_encoder(pca, identity)  # by name only where the architectures agree


def describe_encoder(encoder) -> str:
    """One line naming an encoder module like :meth:`ForegroundPCA.describe`."""
    arch = getattr(encoder, 'arch', None)
    arch = f', {arch}' if arch else ''
    return (f'{encoder.name!r}{arch}, {encoder.dim}-d tokens, {encoder.grid[0]}x'
            f'{encoder.grid[1]} grid at {encoder.input_size} px')


def timm_weights_option(path: Optional[str]) -> str:
    """``' --timm-checkpoint PATH'`` (shell-quoted) for a timm encoder's weights file, '' for
    none: without it the PCA tools take timm's download."""
    return f' --timm-checkpoint {shlex.quote(path)}' if isinstance(path, str) and path else ''


def refit_command(encoder) -> str:
    """The command that fits a PCA file for ``encoder`` (run from the working folder; the
    encoder's folder shell-quoted: a path with a space split into two arguments)."""
    name, tool = encoder.name, tool_command('fit_foreground_pca')
    if getattr(encoder, 'arch', '') and str(encoder.arch).startswith('timm:'):
        weights = timm_weights_option(getattr(encoder, 'checkpoint_path', None))
        return (f'{tool} IMAGES --timm-model {shlex.quote(name)}{weights} --input-size '
                f'{encoder.input_size} --out PCA.pth')
    folder, sub = name.rsplit('/', 1) if '/' in name else ('', '')
    if sub == 'image_encoder' and not osp.isdir(name):  # a pipeline's by hub id: the tool
        return (f'{tool} IMAGES --encoder {shlex.quote(folder)} --subfolder image_encoder '
                '--out PCA.pth')  # takes the id, not 'id/image_encoder'
    return f'{tool} IMAGES --encoder {shlex.quote(name)} --out PCA.pth'


def check_pca_encoder(pca: ForegroundPCA, encoder, path: str = '<pca>',
                      role: str = 'encoder', check_identity: bool = True) -> None:
    """Raise :class:`ForegroundPCAError` unless ``pca`` fits ``encoder``.

    Args:
        pca (ForegroundPCA): the loaded file.
        encoder: a patch encoder (``name``, ``dim``, ``grid``, ``input_size``; ``identity()``
            when it can fingerprint its weights).
        path (str): the file's path, for messages. Defaults to '<pca>'.
        role (str): what the encoder is used as ('scorer encoder', 'generator encoder').
            Defaults to 'encoder'.
        check_identity (bool): also require the same encoder (not only the same shapes).
            Defaults to True.
    """
    shape_pca = (pca.dim, tuple(pca.grid), pca.input_size)
    shape_enc = (int(encoder.dim), tuple(encoder.grid), int(encoder.input_size))
    reason: Optional[str] = None
    if shape_pca != shape_enc:
        reason = 'token width, grid or input size differ'
    elif check_identity:
        identity = (encoder.identity() if hasattr(encoder, 'identity') else
                    EncoderIdentity(encoder.name, getattr(encoder, 'arch', None)))
        ok, why = same_encoder(pca, identity)
        reason = None if ok else why
    if reason is not None:
        raise ForegroundPCAError(
            f'{path!r} was fitted for {pca.describe()}; the {role} is '
            f'{describe_encoder(encoder)}: {reason}. Use the PCA file fitted for this encoder, '
            f'or make one: {refit_command(encoder)}')
