"""Generated images kept as tensors on the pipeline's device: VAE decode, resize, uint8, and
the CLIP pixels of the outputs (for ``clip_sim``) without a PIL round trip.

Why: diffusers' ``output_type='pil'`` copies every 768 px image to the host, converts it to PIL
(~17 ms) and the resize to 512 px runs there too (~5 ms), all on the main thread. Here the
decoded batch stays on the device until it is uint8 at the output size, and the CLIP pixels
of the outputs (for ``clip_sim``) come from the same tensors. :func:`to_pil` turns a view
(PIL, or uint8 array / tensor) into the PIL image that gets encoded.

Exactness (tested on the tiny pipeline): without a resize the uint8 pixels equal diffusers'
PIL path exactly (same ``(x / 2 + 0.5).clamp(0, 1)``, float32 ``* 255``, round). The resize is
torch's antialiased bicubic, the same kernel as PIL's (a = -0.5, support scaled when
downsampling), in PIL's order of the two passes, rounded and clipped to uint8 between them
(:func:`pil_height_first`). PIL computes in fixed point, so a pixel may still differ by a level
or two: measured on random noise, 768 -> 512 px differs by at most 1 (0.002 on average),
upscaling by at most 2 (``MAX_RESIZE_DIFF``, bounded by a test).
"""
from typing import Any, Optional, Sequence

import PIL
import torch
import torch.nn.functional as F

MAX_RESIZE_DIFF = 2  # max |uint8| difference to PIL's bicubic resize (a test bounds it)
#: Pillow 13 chose the order of its two passes by the shape (before: always the width first)
_PILLOW_PICKS_ORDER = int(PIL.__version__.split('.')[0]) >= 13


def decode_latents(pipe: Any, latents: torch.Tensor) -> torch.Tensor:
    """Latents -> images in [0, 1] (B, 3, H, W), on the device, as the pipeline decodes them
    (``vae.decode(latents / scaling_factor)``, then ``(x / 2 + 0.5).clamp(0, 1)``)."""
    vae = pipe.vae
    with torch.no_grad():
        images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor,
                            return_dict=False)[0]
    return (images / 2 + 0.5).clamp(0, 1)


def to_uint8(images: torch.Tensor, size: Optional[int] = None) -> torch.Tensor:
    """Images in [0, 1] (B, 3, H, W) -> uint8 (B, 3, size, size) on the same device.

    They are quantised as diffusers quantises them for PIL (float32, ``* 255``, round); if
    ``size`` differs they are resized as PIL resizes: antialiased bicubic (PIL's kernel), one
    axis at a time in PIL's order, rounded and clipped to uint8 after each pass.
    """
    out = (images.float() * 255).round()
    height, width = out.shape[-2:]
    if size:
        between = (size, width) if pil_height_first(height, width, size, size) else \
            (height, size)
        for hw in (between, (size, size)):
            if tuple(out.shape[-2:]) != hw:
                out = _resize(out, hw)
    return out.clamp(0, 255).to(torch.uint8)


def pil_height_first(height: int, width: int, out_height: int, out_width: int) -> bool:
    """Whether the installed Pillow resizes ``height x width`` to ``out_height x out_width``
    height first: Pillow >= 13 does when the height shrinks by more than twice the pixels the
    width shrinks by (found by comparing both orders with its output over random shapes);
    older Pillow always resizes the width first. The order matters: the first pass is clipped
    to uint8, so bicubic overshoot on noisy content is cut at different places."""
    return (_PILLOW_PICKS_ORDER and out_height < height
            and height - out_height > 2 * (width - out_width))


def _resize(x: torch.Tensor, hw: tuple) -> torch.Tensor:
    return F.interpolate(x, size=hw, mode='bicubic', align_corners=False,
                         antialias=True).round().clamp(0, 255)


def to_hwc_cpu(images: torch.Tensor) -> Sequence[torch.Tensor]:
    """uint8 (B, 3, H, W) on any device -> a list of uint8 (H, W, 3) CPU tensors (one copy)."""
    return list(images.permute(0, 2, 3, 1).contiguous().cpu().unbind(0))


def clip_pixels(images: torch.Tensor, processor: Any) -> torch.Tensor:
    """CLIP pixel values of uint8 (B, 3, H, W) images by the pipeline's own image processor.

    transformers 5's ``CLIPImageProcessor`` (torchvision backend) takes the tensors on their
    device and runs the same operations it runs on PIL input (which it turns into the same
    uint8 tensors first), so the pixels equal the PIL path's exactly (tested). A processor
    without that backend gets PIL images (one host round trip).
    """
    if getattr(processor, 'backend', None) == 'torchvision':
        return processor(images=images, return_tensors='pt',
                         device=images.device)['pixel_values'].float()
    from PIL import Image
    pil = [Image.fromarray(a) for a in images.permute(0, 2, 3, 1).cpu().numpy()]
    return processor(images=pil, return_tensors='pt')['pixel_values'].float()


def to_pil(image: Any):
    """A PIL RGB image from a PIL image or a uint8 HWC/CHW array or tensor (any device)."""
    import numpy as np
    from PIL import Image
    if isinstance(image, Image.Image):
        return image.convert('RGB')
    array = np.asarray(image.detach().cpu() if hasattr(image, 'detach') else image)
    if array.dtype != np.uint8 or array.ndim != 3:
        raise ValueError(f'a view must be a PIL image or a uint8 HWC/CHW array, got '
                         f'{array.dtype} of shape {array.shape}')
    if array.shape[-1] not in (1, 3) and array.shape[0] in (1, 3):
        array = array.transpose(1, 2, 0)
    return Image.fromarray(np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else
                                                array)).convert('RGB')
