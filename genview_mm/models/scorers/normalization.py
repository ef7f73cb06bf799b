"""Convert images from the SSL model's normalisation to an encoder's (pure function)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn


def ssl_normalisation(data_preprocessor: Optional[nn.Module], mean: Optional[Sequence[float]],
                      std: Optional[Sequence[float]], input_order: str = 'auto'
                      ) -> Tuple[Optional[List[float]], Optional[List[float]], bool]:
    """The SSL model's mean, std (0-255) and whether its inputs are BGR.

    Args:
        data_preprocessor (nn.Module, optional): the SSL model's preprocessor, read for its
            mean/std and channel conversion.
        mean (Sequence[float], optional): a mean that overrides the preprocessor's.
        std (Sequence[float], optional): a std that overrides the preprocessor's.
        input_order (str): ``'auto'`` (from the preprocessor), ``'rgb'`` or ``'bgr'``.

    Returns:
        Tuple: ``(mean, std, bgr)``; mean and std None for raw 0-255 pixels.
    """
    bgr = input_order == 'bgr'
    if data_preprocessor is not None:
        if input_order == 'auto':
            bgr = not getattr(data_preprocessor, '_channel_conversion', True)
        if mean is None and getattr(data_preprocessor, '_enable_normalize', False):
            mean = data_preprocessor.mean.flatten().tolist()
            std = data_preprocessor.std.flatten().tolist()
    return _three(mean, 'mean'), _three(std, 'std'), bgr


def _three(values: Optional[Sequence[float]], name: str) -> Optional[List[float]]:
    """A mean or std for the three channels (MMEngine takes one value for all of them)."""
    if values is None:
        return None
    values = [float(v) for v in values]
    if len(values) not in (1, 3):
        raise ValueError(f'the SSL {name} of {len(values)} values: give 1 or 3 (the '
                         "data_preprocessor's, or the scorer's own)")
    return values * 3 if len(values) == 1 else values


def to_encoder_pixels(x: torch.Tensor, src_mean: Optional[Sequence[float]],
                      src_std: Optional[Sequence[float]], dst_mean: Sequence[float],
                      dst_std: Sequence[float], bgr: bool = False,
                      size: Optional[int] = None) -> torch.Tensor:
    """Undo the SSL normalisation, switch to RGB, apply the encoder's and resize.

    Args:
        x (torch.Tensor): (B, 3, H, W) images as the SSL model receives them,
            ``(raw - src_mean) / src_std`` with ``raw`` in [0, 255].
        src_mean (Sequence[float], optional): SSL mean in 0-255 units, in ``x``'s channel order;
            None if ``x`` is not normalised (raw 0-255 pixels). Each of the four may also be a
            float32 tensor of 3 values made once by the caller.
        src_std (Sequence[float], optional): SSL std in 0-255 units; None as above.
        dst_mean (Sequence[float]): encoder mean in 0-1 units, RGB (e.g. CLIP's).
        dst_std (Sequence[float]): encoder std in 0-1 units, RGB.
        bgr (bool): ``x`` is in BGR order (SSL preprocessor without RGB conversion).
            Defaults to False.
        size (int, optional): resize to ``size`` x ``size`` (bilinear, antialiased) when the
            input differs. Defaults to None (no resize).

    Returns:
        torch.Tensor: (B, 3, S, S) float32 encoder input.
    """
    if x.dim() != 4 or x.size(1) != 3:
        raise ValueError(f'expected (B, 3, H, W) images, got shape {tuple(x.shape)}')
    x = x.float()

    def col(v: Union[Sequence[float], torch.Tensor]) -> torch.Tensor:
        if isinstance(v, torch.Tensor):  # made once by the caller: no copy per call
            return v.to(device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
        return torch.as_tensor(list(v), dtype=torch.float32, device=x.device).view(1, 3, 1, 1)

    raw = x if src_mean is None else x * col(src_std) + col(src_mean)
    if bgr:
        raw = raw.flip(1)
    out = (raw / 255.0 - col(dst_mean)) / col(dst_std)
    if size is not None and tuple(out.shape[-2:]) != (size, size):
        out = F.interpolate(out, size=(size, size), mode='bilinear', align_corners=False,
                            antialias=True)
    return out
