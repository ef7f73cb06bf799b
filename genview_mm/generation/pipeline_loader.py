"""Loading and preparing the diffusers StableUnCLIPImg2ImgPipeline (diffusers is imported here
only)."""
import os.path as osp
from typing import Any, Optional

import torch

_DTYPES = {'float16': torch.float16, 'fp16': torch.float16, 'bfloat16': torch.bfloat16,
           'bf16': torch.bfloat16, 'float32': torch.float32, 'fp32': torch.float32}


def resolve_dtype(torch_dtype: Optional[str], device: torch.device) -> torch.dtype:
    """float16 on CUDA and float32 elsewhere unless ``torch_dtype`` names one."""
    if torch_dtype is None:
        return torch.float16 if device.type == 'cuda' else torch.float32
    if isinstance(torch_dtype, torch.dtype):
        return torch_dtype
    if torch_dtype not in _DTYPES:
        raise ValueError(f'torch_dtype must be one of {sorted(_DTYPES)}, got {torch_dtype!r}')
    return _DTYPES[torch_dtype]


def load_unclip_pipeline(pretrained: str, device: torch.device,
                         torch_dtype: Optional[str] = None) -> Any:
    """``StableUnCLIPImg2ImgPipeline.from_pretrained(pretrained)`` with a clear error."""
    from diffusers import StableUnCLIPImg2ImgPipeline
    dtype = resolve_dtype(torch_dtype, torch.device(device))
    looks_local = pretrained.startswith(('/', '.', '~')) or osp.exists(pretrained)
    if looks_local and not osp.isdir(osp.expanduser(pretrained)):
        raise FileNotFoundError(
            f'unCLIP pipeline folder not found: {pretrained!r}. Pass a folder saved with '
            "pipeline.save_pretrained(...) or a hub id such as "
            "'stabilityai/stable-diffusion-2-1-unclip'.")
    try:
        return StableUnCLIPImg2ImgPipeline.from_pretrained(osp.expanduser(pretrained),
                                                           dtype=dtype)
    except (OSError, ValueError) as exc:
        raise OSError(f'Cannot load a StableUnCLIPImg2ImgPipeline from {pretrained!r}: {exc}. '
                      'Pass a local folder saved with save_pretrained or a reachable hub id '
                      '(set HF_HOME / download it first on offline nodes).') from exc


def prepare_pipeline(pipe: Any, device: torch.device, scheduler: Optional[str] = None) -> Any:
    """Move to ``device``, optionally swap the scheduler, silence the per-call progress bar."""
    if scheduler is not None:
        import diffusers
        cls = getattr(diffusers, scheduler, None)
        if cls is None or not hasattr(cls, 'from_config'):
            raise ValueError(f'unknown diffusers scheduler {scheduler!r}')
        pipe.scheduler = cls.from_config(pipe.scheduler.config)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
