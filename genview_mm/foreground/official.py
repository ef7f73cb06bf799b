"""Import the authors' released PCA vectors as :class:`ForegroundPCA` files.

The official repository ships ``tools/clip_pca/pca_results/<model>/eigenvecters/pca_vectors.npy``
(float32, shape (D, 1), unit norm): D = 1280 for the generator's OpenCLIP ViT-H/14
``laion2b_s32b_b79k`` (with ``mean_vectors.npy`` of shape (D,)), D = 1024 for the scorer's
ConvNeXt-Base-W ``laion2B-s13B-b82K-augreg`` (no mean). Their projection is ``tokens @ v``
without mean subtraction, so the imported file has ``center=False`` (the mean, when given, is
kept for the record). Their foreground threshold is not stored with the vector: give it
(``alpha``, the value the authors' fit printed) or fit it on sample images with their 200-bin
histogram rule. The scorer needs no threshold (it uses soft masks).
"""
import os.path as osp
from typing import Callable, Optional

import numpy as np
import torch

from .encoder_identity import file_sha256
from .fit import alpha_histogram
from .pca import ForegroundPCA, ForegroundPCAError

MASK_TYPES = ('gt', 'lt')
#: how far from 1 the norm of an imported direction may be (the official vectors are unit norm
#: in float32: off by ~1e-6; a mean vector or another array is off by far more)
UNIT_NORM_TOL = 1e-3
#: the released ``pca_vectors.npy`` files by sha256 (official repository, commit 38a6a78):
#: (what it is, the architecture signature of its encoder, how to import it, the timm weights
#: tag it was fitted with or None). The width check alone would take the 1024-d one for any
#: 1024-d encoder (a CLIP ViT-L/14); the architecture alone, for ConvNeXt-Base weights of
#: another training (``convnext_base.clip_laion2b``, ``.fb_in22k``).
OFFICIAL_VECTORS = {
    'b3da42f1fa1770630c1c026458a842c11aa56a75672b72636206c957a5559c81': (
        'ViT-H/14 (laion2b_s32b_b79k)', 'clip-vit:d1280-l32-p14',
        "the generator's encoder (--encoder <Stable unCLIP 2.1 folder>)", None),
    'f5ce0e99116aeca7baaa70b60ce59ae4e6c361fb1a939789147fe8bbfdb12e95': (
        'ConvNeXt-Base-W (laion2B-s13B-b82K-augreg)', 'timm:convnext_base',
        "the scorer's encoder (--timm-model convnext_base.clip_laion2b_augreg)",
        'clip_laion2b_augreg'),
}
#: the input side the authors' scripts fitted both vectors at
OFFICIAL_INPUT_SIZE = 224
#: the timm name of the scorer's encoder (the ConvNeXt vector's weights)
OFFICIAL_TIMM = 'convnext_base.clip_laion2b_augreg'


def _hub_model(name: str) -> str:
    """A timm name's model (and tag), without its hub repo's owner or revision:
    ``'hf-hub:timm/convnext_base.x@refs/pr/1'`` -> ``'convnext_base.x'``."""
    return name.split('@', 1)[0].rsplit('/', 1)[-1]


def check_official_encoder(vector: str, encoder, arch: Optional[str]) -> None:
    """Refuse a released vector (known by its sha256) for an encoder of another architecture
    (``arch``, its signature; None: unknown, not checked), for timm weights of another tag
    (a name without one: the tag of timm's default weights it loaded; weights from a file are
    not checked) or at another input side than
    the authors' :data:`OFFICIAL_INPUT_SIZE`."""
    known = OFFICIAL_VECTORS.get(file_sha256(vector))
    if not known:
        return
    what, signature, use, tag = known
    if arch and arch.startswith('timm:hf-hub:'):  # 'timm:hf-hub:timm/convnext_base' (its repo;
        arch = 'timm:' + _hub_model(arch)          # a revision may hold '/': '@refs/pr/1')
    if arch and arch.startswith('timm:local-dir:'):  # a folder's name: not an architecture
        arch = None
    if arch and arch != signature and not arch.startswith(signature + '-'):
        raise ForegroundPCAError(
            f'{vector!r} is the official {what} vector, but {encoder.name!r} is {arch}, not '
            f'{signature}: import it for {use}')
    name = _hub_model(str(encoder.name))  # its model and tag
    # a name without a tag loads timm's default weights (convnext_base: fb_in22k_ft_in1k),
    # which the encoder names (``pretrained_tag``; None for weights from a file)
    used = name.split('.', 1)[1] if '.' in name else getattr(encoder, 'pretrained_tag', None)
    if tag and arch and used and used != tag:
        has = 'has others' if '.' in name else f"loads timm's {used!r} weights"
        raise ForegroundPCAError(
            f'{vector!r} is the official {what} vector, fitted on the {tag!r} weights; '
            f'{encoder.name!r} {has}: import it for {use}')
    if encoder.input_size != OFFICIAL_INPUT_SIZE:
        raise ForegroundPCAError(
            f'{vector!r} is the official {what} vector, fitted at {OFFICIAL_INPUT_SIZE} px; '
            f'this encoder takes {encoder.input_size} px: import it with --input-size '
            f'{OFFICIAL_INPUT_SIZE} (the scorer then runs at that size, as in the paper)')


def load_vector(path: str, what: str = 'PCA vector') -> torch.Tensor:
    """A (D,) float32 tensor from a ``.npy`` file of shape (D,) or (D, 1)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path!r}')
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        why = 'is empty' if osp.getsize(path) == 0 else f'is not a .npy array ({exc})'
        raise ForegroundPCAError(f'{path!r} {why}: give the {what} file of the official '
                                 'release (pca_results/<model>/eigenvecters/)') from exc
    if not isinstance(array, np.ndarray):  # an NpzFile
        array.close()
        raise ForegroundPCAError(f'{path!r} is a zip archive (an .npz, or a .pth such as a PCA '
                                 f'file this project wrote), not a .npy array: give the {what} '
                                 'file of the official release, or save it alone with np.save')
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    elif array.ndim == 2 and 1 < array.shape[1] < array.shape[0]:  # extract_features_pca.py
        raise ForegroundPCAError(  # with n_components > 1: one component per column
            f'{path!r} holds {array.shape[1]} principal components (shape {array.shape}); the '
            f'{what} is the first alone: keep its first column, e.g. '
            f'np.save(NEW, np.load(OLD)[:, :1]), and import that')
    if array.ndim != 1 or array.size < 2 or not np.issubdtype(array.dtype, np.floating):
        raise ForegroundPCAError(f'{path!r}: expected a float {what} of shape (D,) or (D, 1), '
                                 f'got {array.dtype} {array.shape}')
    if not np.isfinite(array).all():
        raise ForegroundPCAError(f'{path!r}: the {what} has non-finite entries')
    return torch.from_numpy(array.astype(np.float32))


def import_official_pca(vector: str, encoder, mean: Optional[str] = None,
                        alpha: Optional[float] = None,
                        fit_batches: Optional[Callable] = None,
                        mask_type: str = 'gt') -> ForegroundPCA:
    """Turn an official ``pca_vectors.npy`` into a :class:`ForegroundPCA` for ``encoder``.

    Args:
        vector (str): the official ``pca_vectors.npy``.
        encoder: the patch encoder the vector belongs to (its token width must equal the
            vector's length; its name, grid, input size and weights fingerprint are recorded).
        mean (str, optional): the official ``mean_vectors.npy``, kept for the record.
        alpha (float, optional): the foreground threshold (official ``--fg-thre``); finite.
        fit_batches (Callable, optional): ``() -> iterable of (B, N, D) tokens`` of sample
            images; the threshold is then fitted with the official histogram rule.
        mask_type (str): the official ``--mask-type``: ``'gt'`` (foreground above the
            threshold) or ``'lt'`` (at or below, ``tokens @ v <= t``: the direction and
            threshold are negated and the comparison made inclusive). Defaults to 'gt'.

    Returns:
        ForegroundPCA: ``center=False``; ``threshold_rule`` 'given', 'histogram' or 'none'.

    Raises:
        ForegroundPCAError: the vector's length is not the encoder's token width, or its norm
            is 0 or further than :data:`UNIT_NORM_TOL` from 1 (a mean vector given as the
            direction).
            An alpha that is not finite (nan: no image would have foreground) too.
        ValueError: both alpha and images, or images of which none could be read.
    """
    if mask_type not in MASK_TYPES:
        raise ValueError(f'mask_type must be one of {MASK_TYPES}, got {mask_type!r}')
    if alpha is not None and fit_batches is not None:
        raise ValueError('give the threshold (alpha) or images to fit it on, not both')
    direction = load_vector(vector)
    if direction.numel() != int(encoder.dim):
        raise ForegroundPCAError(
            f'{vector!r} has {direction.numel()} entries, but {encoder.name!r} gives '
            f'{encoder.dim}-d tokens: it is the vector of another encoder (ViT-H/14: 1280, '
            'ConvNeXt-Base-W: 1024). Import it for the encoder it was fitted for.')
    identity = encoder.identity() if hasattr(encoder, 'identity') else None
    check_official_encoder(vector, encoder, getattr(identity, 'arch', None))
    norm = float(direction.double().norm())
    if norm == 0:
        raise ForegroundPCAError(
            f'{vector!r} is all zeros: as a PCA direction every score would be 0 (uniform '
            'weights). Give the official pca_vectors.npy.')
    if abs(norm - 1) > UNIT_NORM_TOL:
        raise ForegroundPCAError(
            f'{vector!r} has norm {norm:.4g}, not 1 as the official pca_vectors.npy: is it '
            'mean_vectors.npy? Give pca_vectors.npy as the vector and the mean with --mean.')
    mean_t = torch.zeros_like(direction) if mean is None else load_vector(mean, 'mean vector')
    if mean_t.shape != direction.shape:
        raise ForegroundPCAError(f'{mean!r} has {mean_t.numel()} entries, the vector '
                                 f'{direction.numel()}')
    sign = 1.0 if mask_type == 'gt' else -1.0
    pca = ForegroundPCA(
        direction=direction * sign, mean=mean_t, alpha=None if alpha is None else alpha * sign,
        threshold_rule='given', encoder=encoder.name,
        grid=encoder.grid, input_size=encoder.input_size, fg_fraction=0.0, num_images=0,
        sign_rule='+1' if sign > 0 else '-1', center=False,
        encoder_arch=getattr(identity, 'arch', None),
        fingerprint=getattr(identity, 'fingerprint', None),
        source=f'official:{osp.basename(vector)}', inclusive=mask_type == 'lt')
    if fit_batches is not None:
        scores = [pca.scores(t.float()).cpu() for t in fit_batches()]
        if not scores:  # every image failed to load
            raise ValueError('none of the images to fit the threshold on could be read: check '
                             'them (the warnings above name them), or give the threshold '
                             'itself with --alpha')
        scores = torch.cat(scores)
        # the official threshold is fitted on tokens @ v whatever the mask type (then 'lt' keeps
        # tokens @ v <= it); the rule does not commute with the negation 'lt' made above
        pca.alpha, pca.threshold_rule = sign * alpha_histogram(scores * sign), 'histogram'
        fg = scores >= pca.alpha if pca.inclusive else scores > pca.alpha
        pca.fg_fraction = float(fg.double().mean())
        pca.num_images = int(scores.shape[0])  # the images read, not those listed
    return pca


def describe_import(pca: ForegroundPCA) -> str:
    """One line for the tool's output."""
    alpha = 'none (scorer only)' if pca.alpha is None else f'{pca.alpha:.4f}'
    if pca.inclusive and pca.alpha is not None:  # stored negated: the user's is -alpha
        alpha += f' (of -v: the threshold {-pca.alpha:.4f} of tokens @ v with --mask-type lt)'
    return (f'encoder={pca.encoder} grid={pca.grid} input={pca.input_size}px dim={pca.dim} '
            f'alpha={alpha} rule={pca.threshold_rule} source={pca.source}')

