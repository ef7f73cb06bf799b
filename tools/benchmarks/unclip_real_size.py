"""The Stable unCLIP 2.1 architecture from its published configs (``sd21_unclip_config.json``)
with random weights, for ``bench_generator.py --preset real-size``: no hub, no download.

``build_real_size(device='meta')`` builds every module's shapes without allocating weights
(cheap: the dry run and its test). The tokenizer is a 3-token vocabulary: the prompt is empty,
so only the start, end and padding tokens are ever encoded.
"""
import json
import os
import os.path as osp
import tempfile
from typing import Any, Dict

import torch

CONFIG_PATH = osp.join(osp.dirname(osp.abspath(__file__)), 'sd21_unclip_config.json')


def load_configs(path: str = CONFIG_PATH) -> Dict[str, Dict[str, Any]]:
    """The component configs (keys starting with '_' are notes)."""
    with open(path) as f:
        return {k: v for k, v in json.load(f).items() if not k.startswith('_')}


def _tokenizer():
    from transformers import CLIPTokenizer
    folder = tempfile.mkdtemp(prefix='unclip_tok_')
    with open(osp.join(folder, 'vocab.json'), 'w') as f:
        json.dump({'<|startoftext|>': 0, '!': 1, '<|endoftext|>': 2}, f)
    with open(osp.join(folder, 'merges.txt'), 'w') as f:
        f.write('#version: 0.2\n')
    tok = CLIPTokenizer(osp.join(folder, 'vocab.json'), osp.join(folder, 'merges.txt'),
                        model_max_length=77, pad_token='!')
    for name in os.listdir(folder):
        os.remove(osp.join(folder, name))
    os.rmdir(folder)
    return tok


def build_real_size(device: str = 'meta', seed: int = 0,
                    configs: Dict[str, Dict[str, Any]] = None) -> Any:
    """A ``StableUnCLIPImg2ImgPipeline`` of the published sizes, random weights, float32.

    Args:
        device (str): where the weights are created ('meta': shapes only, no memory).
        seed (int): torch seed of the random weights. Defaults to 0.
        configs (dict, optional): component configs; defaults to :func:`load_configs`.
    """
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableUnCLIPImg2ImgPipeline,
        UNet2DConditionModel,
    )
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import (
        StableUnCLIPImageNormalizer,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )
    cfg = configs or load_configs()
    torch.manual_seed(seed)
    with torch.device(device):
        parts = dict(
            unet=UNet2DConditionModel(**cfg['unet']),
            vae=AutoencoderKL(**cfg['vae']),
            image_encoder=CLIPVisionModelWithProjection(CLIPVisionConfig(**cfg['image_encoder'])),
            text_encoder=CLIPTextModel(CLIPTextConfig(**cfg['text_encoder'])),
            image_normalizer=StableUnCLIPImageNormalizer(**cfg['image_normalizer']))
    for module in parts.values():
        module.eval().requires_grad_(False)
    return StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(**cfg['feature_extractor']),
        image_noising_scheduler=DDPMScheduler(**cfg['image_noising_scheduler']),
        scheduler=DDIMScheduler(**cfg['scheduler']), tokenizer=_tokenizer(), **parts)


def scale_output_projections(pipe: Any, factor: float) -> int:
    """Multiply the weights of the residual branches' last layers (ResNet ``conv2``,
    attention ``to_out``, transformer ``proj_out``, feed-forward output) of the UNet and the
    VAE by ``factor``: random weights then keep fp16 activations finite. Returns the count."""
    count = 0
    for model in (pipe.unet, pipe.vae):
        for name, module in model.named_modules():
            last = name.rsplit('.', 1)[-1]
            parent = name.rsplit('.', 2)[-2] if name.count('.') >= 1 else ''
            if last in ('conv2', 'proj_out') or (parent, last) in (('to_out', '0'),
                                                                  ('net', '2')):
                weight = getattr(module, 'weight', None)
                if weight is not None and weight.dim() > 1:
                    with torch.no_grad():
                        weight.mul_(factor)
                    count += 1
    return count


def param_count(module: torch.nn.Module) -> int:
    """Number of parameters (works on the meta device)."""
    return sum(p.numel() for p in module.parameters())
