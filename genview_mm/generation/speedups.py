"""Speed settings of a loaded unCLIP pipeline: channels_last, fused QKV projections, the empty
prompt encoded once, and torch.compile of the UNet and the VAE decoder.

None of them changes what is computed, only how: the outputs equal the plain pipeline's to
float rounding (the tolerances are in tests/generation/test_generator_fast_path.py).
"""
import logging
from typing import Any, Optional, Tuple

import torch

logger = logging.getLogger(__name__)


def resolve_auto(flag: Optional[bool], device: torch.device) -> bool:
    """``None`` means "on CUDA only" (where they pay off); a bool is taken as given."""
    return device.type == 'cuda' if flag is None else bool(flag)


def apply_layout(pipe: Any, channels_last: bool = False, fuse_qkv: bool = False) -> None:
    """UNet and VAE in channels_last memory format; their attention QKV projections fused into
    one matmul (diffusers' ``fuse_qkv_projections``) where the model supports it."""
    if channels_last:
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)
    if fuse_qkv:
        for name in ('unet', 'vae'):
            model = getattr(pipe, name)
            fuse = getattr(model, 'fuse_qkv_projections', None)
            if fuse is None:
                logger.warning('%s has no fuse_qkv_projections in this diffusers: not fused',
                               name)
                continue
            fuse()


def compile_models(pipe: Any, mode: Optional[str] = None, backend: str = 'inductor') -> None:
    """torch.compile the UNet and the VAE decoder in place (``nn.Module.compile``); the
    pipeline keeps its modules, configs and dtypes. Shapes must stay fixed (see
    :class:`~.call_batches.CallBatches`) or each new batch size compiles again."""
    pipe.unet.compile(mode=mode, backend=backend, dynamic=False)
    pipe.vae.decoder.compile(mode=mode, backend=backend, dynamic=False)


def encode_empty_prompt(pipe: Any, prompt: str,
                        guidance: bool) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The prompt's text embeddings (1, T, D) and, with classifier-free guidance, those of
    the empty negative prompt, computed once with the pipeline's own ``encode_prompt``."""
    with torch.no_grad():
        pos, neg = pipe.encode_prompt(prompt=[prompt], device=pipe.device,
                                      num_images_per_prompt=1,
                                      do_classifier_free_guidance=guidance,
                                      negative_prompt=None)
    return pos, (neg if guidance else None)
