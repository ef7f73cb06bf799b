"""Loading and preparing the diffusers StableUnCLIPImg2ImgPipeline (diffusers is imported here
only): the device and scheduler, and the speed settings (channels_last, fused QKV projections,
the prompt encoded once, torch.compile of the UNet and the VAE decoder). None of the speed
settings changes what is computed, only how: the outputs equal the plain pipeline's to float
rounding (tests/generation/test_generator_fast_path.py states each tolerance).
"""
import inspect
import json
import logging
import os.path as osp
from typing import Any, Optional, Tuple

import torch

from ..models.encoders.weights_source import looks_like_path

logger = logging.getLogger(__name__)
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


def local_folder(pretrained: str) -> str:
    """The folder ``pretrained`` names: itself (``~`` expanded) if it is one, else the hub id's
    snapshot in the Hugging Face cache (what diffusers loads offline), else ``pretrained``."""
    folder = osp.expanduser(pretrained)
    if osp.isdir(folder):
        return folder
    try:
        from huggingface_hub import snapshot_download
        return snapshot_download(pretrained, local_files_only=True)
    except Exception:  # noqa: BLE001  not a hub id, or not in the cache
        return pretrained


def native_size(pretrained: str) -> Optional[int]:
    """The size a pipeline folder generates at by default (diffusers: the UNet's sample size
    times the VAE's scale factor, 768 for Stable unCLIP 2.1), read from its configs without
    loading it; None where they cannot be read (a hub id)."""
    folder = osp.expanduser(pretrained)
    try:
        with open(osp.join(folder, 'unet', 'config.json'), encoding='utf-8') as f:
            sample_size = json.load(f)['sample_size']
        with open(osp.join(folder, 'vae', 'config.json'), encoding='utf-8') as f:
            return int(sample_size) * 2 ** (len(json.load(f)['block_out_channels']) - 1)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_pipeline_folder(folder: str, cls: Any) -> None:
    """Raise OSError naming what ``folder`` lacks to be a saved ``cls`` pipeline (its
    model_index.json, or the component folders its ``__init__`` needs: e.g. a Stable Diffusion
    2.1 folder has no ``image_encoder``), before diffusers' error about a missing weights file."""
    index = osp.join(folder, 'model_index.json')
    try:
        with open(index, encoding='utf-8') as f:
            saved = json.load(f)
    except (OSError, ValueError) as exc:
        why = 'damaged' if isinstance(exc, ValueError) else exc.strerror or 'unreadable'
        raise OSError(f'{folder!r} is not a saved diffusers pipeline ({index}: {why}): pass the '
                      'folder of stabilityai/stable-diffusion-2-1-unclip saved with '
                      'save_pretrained') from None
    need = [n for n in inspect.signature(cls.__init__).parameters if n != 'self'
            and n not in getattr(cls, '_optional_components', [])]
    missing = [n for n in need if not osp.isdir(osp.join(folder, n))]
    if missing:
        raise OSError(f"{folder!r} holds a {saved.get('_class_name', 'pipeline')} without "
                      f"{', '.join(missing)}: {cls.__name__} needs them (e.g. "
                      "stabilityai/stable-diffusion-2-1-unclip saved with save_pretrained)")


def check_unclip_source(pretrained: str) -> None:
    """Raise FileNotFoundError or OSError unless ``pretrained`` is a hub id or a folder holding
    a saved Stable unCLIP pipeline (what :func:`load_unclip_pipeline` checks before loading)."""
    from diffusers import StableUnCLIPImg2ImgPipeline
    folder = osp.expanduser(pretrained)
    if not looks_like_path(pretrained):  # 'data/models/sd21' is no hub id (one '/' at most)
        return  # a hub id
    if not osp.isdir(folder):
        found = (f'{pretrained!r} is a file (a single-file checkpoint such as '
                 'sd21-unclip-h.ckpt?), not a diffusers pipeline folder' if osp.isfile(folder)
                 else f'unCLIP pipeline folder not found: {pretrained!r}')
        raise FileNotFoundError(
            f'{found}. Pass a folder saved with '
            "pipeline.save_pretrained(...) or a hub id such as "
            "'stabilityai/stable-diffusion-2-1-unclip'.")
    check_pipeline_folder(folder, StableUnCLIPImg2ImgPipeline)


def _dtype_kwarg() -> str:
    """The ``from_pretrained`` argument naming the dtype: ``dtype`` in diffusers that take it
    (the release with ``deprecation_utils._resolve_dtype``, ``torch_dtype`` deprecated),
    ``torch_dtype`` before (setup.py allows 0.30), where ``dtype`` was ignored with a warning:
    the pipeline loaded in float32 whatever ``--dtype`` said."""
    try:
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return 'torch_dtype'
    return 'dtype'


def load_unclip_pipeline(pretrained: str, device: torch.device,
                         torch_dtype: Optional[str] = None) -> Any:
    """``StableUnCLIPImg2ImgPipeline.from_pretrained(pretrained)`` with a clear error."""
    from diffusers import StableUnCLIPImg2ImgPipeline
    dtype = resolve_dtype(torch_dtype, torch.device(device))
    check_unclip_source(pretrained)
    try:
        return StableUnCLIPImg2ImgPipeline.from_pretrained(osp.expanduser(pretrained),
                                                           **{_dtype_kwarg(): dtype})
    except (OSError, ValueError) as exc:
        raise OSError(f'Cannot load a StableUnCLIPImg2ImgPipeline from {pretrained!r}: {exc}. '
                      'Pass a local folder saved with save_pretrained or a reachable hub id '
                      '(set HF_HOME / download it first on offline nodes).') from exc


def scheduler_class(name: str) -> type:
    """The diffusers scheduler class called ``name``; ValueError for another name (a model
    class such as UNet2DConditionModel has ``from_config`` too)."""
    import diffusers
    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        raise ValueError(f'unknown diffusers scheduler {name!r}: give the name of a scheduler '
                         'class, e.g. DDIMScheduler or EulerDiscreteScheduler')
    return cls


def prepare_pipeline(pipe: Any, device: torch.device, scheduler: Optional[str] = None) -> Any:
    """Move to ``device``, optionally swap the scheduler, silence the per-call progress bar."""
    if scheduler is not None:
        pipe.scheduler = scheduler_class(scheduler).from_config(pipe.scheduler.config)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe




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
    :class:`~.mixed_levels.CallBatches`) or each new batch size compiles again."""
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
