"""Frozen-encoder pair-quality scorer of GenView (method doc section 3)."""
from typing import Dict, NamedTuple, Optional, Sequence, Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from .normalization import to_encoder_pixels
from .pair_scores import pair_quality
from .patch_encoders import build_patch_encoder
from .quality_weights import quality_weights


class PairScores(NamedTuple):
    """Scores of a batch of positive pairs, all (N,) and without gradient.

    Attributes:
        s_f (torch.Tensor): foreground cosine similarities.
        s_b (torch.Tensor): background cosine similarities.
        q (torch.Tensor): qualities ``s_f - s_b``.
        weights (torch.Tensor): loss weights ``N * softmax(gamma * q)``.
        num_nonfinite (int): non-finite qualities (the batch then got uniform weights).
    """
    s_f: torch.Tensor
    s_b: torch.Tensor
    q: torch.Tensor
    weights: torch.Tensor
    num_nonfinite: int

    def log_vars(self, prefix: str = 'genview_') -> Dict[str, torch.Tensor]:
        """Telemetry for the loss dict (keys contain no 'loss', so MMEngine logs but never sums
        them): mean/std/min/max of w, means of s_f and s_b, the non-finite count."""
        w = self.weights.float()
        std = w.std(unbiased=False) if w.numel() > 0 else w.new_zeros(())
        stats = dict(w_mean=w.mean(), w_std=std, w_min=w.min(), w_max=w.max(),
                     sf=self.s_f.float().mean(), sb=self.s_b.float().mean(),
                     nonfinite=w.new_tensor(float(self.num_nonfinite)))
        return {prefix + k: v.detach() for k, v in stats.items()}


@MODELS.register_module()
class PairQualityScorer(nn.Module):
    """Scores positive pairs with a frozen patch encoder and a foreground PCA direction.

    The encoder is kept out of the module tree (not in ``state_dict``, the optimizer or DDP)
    and moved lazily to the inputs' device; it runs without gradients, in eval mode and
    under autocast on GPU. Views are converted from the SSL model's normalisation to the
    encoder's here, so the SSL config keeps its own mean/std.

    Args:
        pca_path (str): PCA file fitted for this encoder with ``tools/fit_foreground_pca.py``.
        encoder (str | dict | nn.Module): transformers CLIP id/folder, or
            ``dict(type='TimmPatchEncoder', model_name=...)``, or a built module.
            Defaults to ``'openai/clip-vit-base-patch32'`` (7x7 grid at 224 px).
        gamma (float): weight-rule temperature. Defaults to 1.0.
        normalize (str): ``'global'`` (over all ranks; independent of the GPU count) or
            ``'local'`` (per GPU, as the official code). Defaults to ``'global'``.
        input_order (str): ``'auto'`` (RGB if the data preprocessor converts to RGB),
            ``'rgb'`` or ``'bgr'``. Defaults to ``'auto'``.
        mean (Sequence[float], optional): SSL mean (0-255) overriding the preprocessor's.
        std (Sequence[float], optional): SSL std (0-255) overriding the preprocessor's.
        autocast_dtype (str | torch.dtype): autocast dtype on GPU (``'bfloat16'`` also works in
            config files). Defaults to torch.float16.
    """

    def __init__(self, pca_path: str,
                 encoder: Union[str, dict, nn.Module] = 'openai/clip-vit-base-patch32',
                 gamma: float = 1.0, normalize: str = 'global', input_order: str = 'auto',
                 mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                 autocast_dtype: Union[str, torch.dtype] = torch.float16) -> None:
        super().__init__()
        from genview_mm.foreground import ForegroundPCA
        if normalize not in ('local', 'global'):
            raise ValueError(f"normalize must be 'local' or 'global', got {normalize!r}")
        if input_order not in ('auto', 'rgb', 'bgr'):
            raise ValueError(f"input_order must be 'auto', 'rgb' or 'bgr', got {input_order!r}")
        enc = build_patch_encoder(encoder)
        pca = ForegroundPCA.load(pca_path, encoder=enc.name, dim=enc.dim)
        # Plain attributes (not submodules/buffers): nothing of the encoder is trained or saved.
        self.__dict__['_encoder'] = enc
        self.__dict__['_direction'] = pca.direction.detach().float().clone()
        self.gamma, self.normalize, self.input_order = float(gamma), normalize, input_order
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
        """Score the pairs ``(view1[i], view2[i])`` and derive their loss weights.

        Args:
            view1 (torch.Tensor): (N, 3, H, W) first views, as the SSL model receives them.
            view2 (torch.Tensor): (N, 3, H, W) second views.
            data_preprocessor (nn.Module, optional): the SSL model's preprocessor, read for its
                mean/std and channel order. Defaults to None (raw 0-255 RGB unless overridden).

        Returns:
            PairScores: ``s_f``, ``s_b``, ``q``, ``weights`` and the non-finite count.
        """
        n = view1.size(0)
        tokens = self.encode(torch.cat([view1, view2.to(view1.dtype)]), data_preprocessor)
        u = self.__dict__['_direction'].to(tokens.device)
        with torch.autocast(device_type=tokens.device.type, enabled=False):  # fp32 math
            s_f, s_b, q = pair_quality(tokens[:n], tokens[n:], u)
        w, bad = quality_weights(q, self.gamma, self.normalize)
        return PairScores(s_f, s_b, q, w.to(view1.device), bad)
