"""Frozen-encoder pair-quality scorer of GenView (arXiv:2403.12003, Sec. 3.3)."""
import warnings
from typing import NamedTuple, Optional, Sequence, Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from ..encoders import OFFICIAL_SCORER, build_patch_encoder
from .normalization import to_encoder_pixels
from .pair_scores import pair_quality

#: the paper's scorer encoder: OpenCLIP ConvNeXt-Base-W laion2B-s13B-b82K-augreg at 224 px
OFFICIAL_ENCODER = dict(type='TimmPatchEncoder', model_name=OFFICIAL_SCORER, input_size=224)


class PairScores(NamedTuple):
    """Scores of a batch of positive pairs, all (N,) float32 and without gradient.

    Attributes:
        s_f (torch.Tensor): foreground cosine similarities.
        s_b (torch.Tensor): background cosine similarities.
        q (torch.Tensor): qualities ``s_f - s_b`` in [-2, 2].
    """
    s_f: torch.Tensor
    s_b: torch.Tensor
    q: torch.Tensor


@MODELS.register_module()
class PairQualityScorer(nn.Module):
    """Scores positive pairs with a frozen patch encoder and a foreground PCA direction.

    It only scores: the algorithm (:class:`~genview_mm.models.selfsup.GenViewMixin`) turns
    the qualities into loss weights with :func:`quality_weights`.

    The encoder is kept out of the module tree (not in ``state_dict``, the optimizer or DDP)
    and moved lazily to the inputs' device; it runs without gradients, in eval mode and
    under autocast on GPU. Views are converted from the SSL model's normalisation to the
    encoder's here, so the SSL config keeps its own mean/std.

    The PCA file must have been fitted (or imported) for this encoder: same token width, grid
    and input size, and the same weights (see :func:`genview_mm.foreground.check_pca_encoder`);
    otherwise the scorer refuses to build and names both.

    Args:
        pca_path (str): PCA file for this encoder (``tools/fit_foreground_pca.py`` or
            ``tools/import_official_pca.py``).
        encoder (str | dict | nn.Module, optional): transformers CLIP id/folder, a patch
            encoder config (``dict(type='TimmPatchEncoder', model_name=...)``) or a built
            module. Defaults to None: the paper's scorer, :data:`OFFICIAL_ENCODER` (7x7x1024
            tokens at 224 px).
        input_order (str): ``'auto'`` (RGB if the data preprocessor converts to RGB),
            ``'rgb'`` or ``'bgr'``. Defaults to ``'auto'``.
        mean (Sequence[float], optional): SSL mean (0-255) overriding the preprocessor's.
        std (Sequence[float], optional): SSL std (0-255) overriding the preprocessor's.
        autocast_dtype (str | torch.dtype): autocast dtype on GPU (``'bfloat16'`` also works in
            config files). Defaults to torch.float16.
        check_encoder (bool): require the PCA file to be for this very encoder (weights
            fingerprint or name); shapes are always checked. Defaults to True.
        **legacy: ``gamma`` and ``normalize`` are accepted with a deprecation warning and
            passed on to the algorithm (they are ``model.gamma`` / ``model.normalize`` now).
    """

    def __init__(self, pca_path: str, encoder: Union[str, dict, nn.Module, None] = None,
                 input_order: str = 'auto', mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 autocast_dtype: Union[str, torch.dtype] = torch.float16,
                 check_encoder: bool = True, **legacy) -> None:
        super().__init__()
        from genview_mm.foreground import ForegroundPCA, check_pca_encoder
        unknown = sorted(set(legacy) - {'gamma', 'normalize'})
        if unknown:
            raise TypeError(f'PairQualityScorer got unexpected arguments {unknown}')
        if legacy:
            warnings.warn(f'PairQualityScorer({", ".join(sorted(legacy))}=...) is deprecated: '
                          'the weight rule belongs to the algorithm, set model.gamma / '
                          'model.normalize instead.', DeprecationWarning)
        self.legacy_weighting = dict(legacy)
        if input_order not in ('auto', 'rgb', 'bgr'):
            raise ValueError(f"input_order must be 'auto', 'rgb' or 'bgr', got {input_order!r}")
        enc = build_patch_encoder(OFFICIAL_ENCODER if encoder is None else encoder)
        pca = ForegroundPCA.load(pca_path)
        check_pca_encoder(pca, enc, pca_path, 'scorer encoder', check_identity=check_encoder)
        # Plain attributes (not submodules/buffers): nothing of the encoder is trained or saved.
        self.__dict__['_encoder'] = enc
        self.__dict__['_direction'] = pca.direction.detach().float().clone()
        self.input_order = input_order
        self.ssl_mean, self.ssl_std = mean, std
        self.autocast_dtype = (getattr(torch, autocast_dtype) if isinstance(autocast_dtype, str)
                               else autocast_dtype)

    @property
    def encoder(self) -> nn.Module:
        """The frozen encoder (not a submodule)."""
        return self.__dict__['_encoder']

    def _ssl_normalisation(self, data_preprocessor: Optional[nn.Module]):
        mean, std = self.ssl_mean, self.ssl_std
        bgr = self.input_order == 'bgr'
        if data_preprocessor is not None:
            if self.input_order == 'auto':
                bgr = not getattr(data_preprocessor, '_channel_conversion', True)
            if mean is None and getattr(data_preprocessor, '_enable_normalize', False):
                mean = data_preprocessor.mean.flatten().tolist()
                std = data_preprocessor.std.flatten().tolist()
        return mean, std, bgr

    @torch.no_grad()
    def encode(self, views: torch.Tensor,
               data_preprocessor: Optional[nn.Module] = None) -> torch.Tensor:
        """(B, 3, H, W) SSL-normalised views -> (B, N, D) float32 patch tokens."""
        enc = self.encoder
        device = views.device
        if next(iter(enc.parameters()), torch.empty(0)).device != device:
            enc.to(device)
        enc.eval()
        mean, std, bgr = self._ssl_normalisation(data_preprocessor)
        with torch.autocast(device_type=device.type, enabled=False):
            x = to_encoder_pixels(views, mean, std, enc.mean, enc.std, bgr, enc.input_size)
        with torch.autocast(device_type=device.type, dtype=self.autocast_dtype,
                            enabled=device.type == 'cuda'):
            tokens = enc(x)
        return tokens.float()

    @torch.no_grad()
    def forward(self, view1: torch.Tensor, view2: torch.Tensor,
                data_preprocessor: Optional[nn.Module] = None) -> PairScores:
        """Score the pairs ``(view1[i], view2[i])``.

        Args:
            view1 (torch.Tensor): (N, 3, H, W) first views, as the SSL model receives them.
            view2 (torch.Tensor): (N, 3, H, W) second views.
            data_preprocessor (nn.Module, optional): the SSL model's preprocessor, read for its
                mean/std and channel order. Defaults to None (raw 0-255 RGB unless overridden).

        Returns:
            PairScores: ``s_f``, ``s_b`` and ``q`` on ``view1``'s device.
        """
        n = view1.size(0)
        tokens = self.encode(torch.cat([view1, view2.to(view1.dtype)]), data_preprocessor)
        u = self.__dict__['_direction'].to(tokens.device)
        with torch.autocast(device_type=tokens.device.type, enabled=False):  # fp32 math
            s_f, s_b, q = pair_quality(tokens[:n], tokens[n:], u)
        return PairScores(*(t.float().to(view1.device) for t in (s_f, s_b, q)))
