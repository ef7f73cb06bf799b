"""A transformers CLIP vision tower as a frozen patch encoder."""
import copy
import json
import os.path as osp
from typing import Optional, Sequence, Tuple

import torch
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from genview_mm.foreground.encoder_identity import encoder_id

from .base import CLIP_MEAN, CLIP_STD, PatchEncoderBase
from .weights_source import WeightsSource, hub_source, looks_like_path


def clip_arch(config) -> str:
    """Architecture signature of a CLIP vision config, e.g. ``'clip-vit:d1280-l32-p14-s224'``."""
    return (f'clip-vit:d{config.hidden_size}-l{config.num_hidden_layers}-p{config.patch_size}'
            f'-s{config.image_size}')


@MODELS.register_module()
class CLIPPatchEncoder(PatchEncoderBase):
    """Patch tokens of a ``transformers`` CLIP vision tower: after the final LayerNorm
    (``post_layernorm``), without the CLS token and without the projection.

    Build it from a hub id or folder (``pretrained``) or wrap a loaded model (``model``, e.g.
    the ``image_encoder`` of a Stable unCLIP pipeline, which then is not copied)::

        MODELS.build(dict(type='CLIPPatchEncoder', pretrained='openai/clip-vit-base-patch32'))

    Args:
        pretrained (str, optional): hub id or local folder of a ``CLIPVisionModel(WithProjection)``
            (or of a full CLIP model). Defaults to None.
        subfolder (str, optional): subfolder holding it, e.g. ``'image_encoder'`` of a diffusers
            pipeline. Defaults to None.
        torch_dtype (torch.dtype, optional): dtype to load the weights in. Defaults to None
            (float32, whatever dtype they were saved in).
        model (nn.Module, optional): an already loaded CLIP vision model. Defaults to None.
        name (str, optional): canonical id; defaults to :func:`encoder_id` of ``pretrained``.
        processor (optional): the ``CLIPImageProcessor`` to preprocess PIL images with; loaded
            from ``subfolder`` or a sibling ``feature_extractor`` folder when None.
        mean (Sequence[float], optional): pixel mean (0-1, RGB), also given to a copy of the
            processor; defaults to the processor's or CLIP's.
        std (Sequence[float], optional): pixel std; likewise.
    """

    def __init__(self, pretrained: Optional[str] = None, subfolder: Optional[str] = None,
                 torch_dtype: Optional[torch.dtype] = None, model: Optional[nn.Module] = None,
                 name: Optional[str] = None, processor=None,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        if pretrained is not None and looks_like_path(pretrained):  # as weights_source reads it
            pretrained = osp.expanduser(pretrained)
        if model is None:
            if pretrained is None:
                raise ValueError('CLIPPatchEncoder needs `pretrained` (hub id or folder) or a '
                                 'loaded `model`')
            model = _load_vision_model(pretrained, subfolder, torch_dtype)
            processor = processor or load_processor(pretrained, subfolder)
        if processor is not None and (mean or std):  # the processor normalises: the values
            processor = copy.deepcopy(processor)     # given were ignored there (the fit and
            if mean:                                 # the scorer normalised apart)
                processor.image_mean = [float(v) for v in mean]
            if std:
                processor.image_std = [float(v) for v in std]
        self.model = model
        self.processor = processor
        self.name = name or (encoder_id(pretrained, subfolder) if pretrained else
                             str(getattr(model.config, '_name_or_path', '') or 'clip-vision'))
        config = model.config
        self.arch = clip_arch(config)
        self.input_size = int(config.image_size)
        side = self.input_size // int(config.patch_size)
        self.grid: Tuple[int, int] = (side, side)
        self.dim = int(config.hidden_size)
        stats = (getattr(processor, 'image_mean', None), getattr(processor, 'image_std', None))
        self.mean = tuple(float(v) for v in (mean or stats[0] or CLIP_MEAN))
        self.std = tuple(float(v) for v in (std or stats[1] or CLIP_STD))
        self.freeze()

    @classmethod
    def from_pretrained(cls, path_or_id: str, subfolder: Optional[str] = None,
                        torch_dtype: Optional[torch.dtype] = None,
                        name: Optional[str] = None) -> 'CLIPPatchEncoder':
        """Load from a hub id or folder (see the class arguments)."""
        return cls(pretrained=path_or_id, subfolder=subfolder, torch_dtype=torch_dtype,
                   name=name)

    @classmethod
    def weights_source(cls, pretrained: str, subfolder: Optional[str] = None,
                       **kwargs) -> WeightsSource:
        """Where the weights of ``CLIPPatchEncoder(pretrained, subfolder)`` come from, without
        loading them: a local folder (``'folder'``, whether or not it holds a model), the
        Hugging Face cache or the hub; with the input size its ``config.json`` gives.

        Args:
            pretrained (str): hub id or local folder, as the class takes it.
            subfolder (str, optional): subfolder holding the model. Defaults to None.
            **kwargs: the other arguments of the class (ignored).

        Returns:
            WeightsSource: the source.
        """
        config = f'{subfolder}/config.json' if subfolder else 'config.json'
        if looks_like_path(pretrained):
            folder = osp.expanduser(pretrained)
            folder = osp.join(folder, subfolder) if subfolder else folder
            return WeightsSource('folder', folder, files=('config.json',),
                                 **_config_shape(osp.join(folder, 'config.json')))
        source = hub_source(pretrained, [config])
        if source.location:  # the cached config.json
            source = source._replace(**_config_shape(source.location))
        return source

    def weights(self) -> nn.Module:
        return self.model

    @torch.no_grad()
    def encode(self, pixel_values: Tensor) -> Tuple[Tensor, Tensor]:
        """Patch tokens (B, N, D) and projected image embeddings (B, P) from one pass."""
        vision = self.model.vision_model
        hidden = vision(pixel_values=pixel_values.to(self.device, self.dtype)).last_hidden_state
        normed = vision.post_layernorm(hidden)
        proj = getattr(self.model, 'visual_projection', None)
        embeds = proj(normed[:, 0]) if proj is not None else normed[:, 0]
        return normed[:, 1:], embeds

    def forward(self, pixel_values: Tensor) -> Tensor:
        """(B, 3, S, S) -> (B, N, D) patch tokens."""
        return self.encode(pixel_values)[0]

    def image_embeds(self, pixel_values: Tensor) -> Tensor:
        """Projected CLIP image embedding (B, P)."""
        return self.encode(pixel_values)[1]


def _config_shape(config_file: str) -> dict:
    """The vision tower's ``input_size`` and ``tokens`` (width, grid) that a (CLIP or CLIP
    vision) ``config.json`` gives, as :class:`WeightsSource` fields; a file that is not JSON is
    a ValueError naming it."""
    if not osp.isfile(config_file):
        return {}
    try:
        with open(config_file, encoding='utf-8') as f:
            config = json.load(f)
    except ValueError as exc:
        raise ValueError(f'{config_file} cannot be read ({exc}): the model folder is damaged; '
                         'copy it again') from None
    vision = config.get('vision_config') or config
    size, patch, width = (vision.get(k) for k in ('image_size', 'patch_size', 'hidden_size'))
    shape = dict(input_size=int(size) if size is not None else None)
    if None not in (size, patch, width):
        side = int(size) // int(patch)
        shape['tokens'] = (int(width), (side, side))
    return shape


def _dtype_kwarg() -> str:
    """The ``from_pretrained`` argument naming the dtype: ``dtype`` from transformers 4.56
    (``torch_dtype`` deprecated), ``torch_dtype`` before (setup.py allows 4.40)."""
    import transformers
    from packaging.version import Version
    return 'dtype' if Version(transformers.__version__).release >= (4, 56) else 'torch_dtype'


def _load_vision_model(path_or_id: str, subfolder: Optional[str],
                       torch_dtype: Optional[torch.dtype]) -> nn.Module:
    from safetensors import SafetensorError
    from transformers import AutoConfig, CLIPConfig, CLIPVisionModelWithProjection
    kwargs = {'subfolder': subfolder} if subfolder else {}
    where = f'{path_or_id!r}' + (f' (subfolder {subfolder!r})' if subfolder else '')
    try:
        config = AutoConfig.from_pretrained(path_or_id, **kwargs)
        if isinstance(config, CLIPConfig):  # a whole CLIP model: its projection is top-level
            vision = config.vision_config  # (its vision_config says 512 whatever it is)
            vision.projection_dim = config.projection_dim
            kwargs['config'] = vision
        # float32 by default: transformers 5 loads the dtype the weights were saved in, and
        # a model saved in fp16 failed on CPU (float pixels, half weights)
        # (under the name this transformers takes: 'dtype' from 4.56, 'torch_dtype' before,
        # where 'dtype' reached the model's __init__, a TypeError on every load)
        kwargs[_dtype_kwarg()] = torch_dtype or torch.float32
        model, info = CLIPVisionModelWithProjection.from_pretrained(
            path_or_id, output_loading_info=True, **kwargs)
    except SafetensorError as exc:  # a cut download or copy (not an OSError nor ValueError)
        raise ValueError(f'Cannot load a CLIP vision encoder from {where}: its weights file is '
                         f'damaged or incomplete ({exc}); download or copy the model '
                         'again') from None
    except OSError as exc:
        raise OSError(f'Cannot load a CLIP vision encoder from {where}: {exc}. Pass a local '
                      'folder holding config.json + weights, or a hub id that is in the '
                      'Hugging Face cache (hf download ID) or reachable.') from exc
    except ValueError as exc:  # transformers' 'Unrecognized model ... model_type'
        pipeline = not subfolder and osp.isfile(osp.join(osp.expanduser(path_or_id),
                                                         'image_encoder', 'config.json'))
        raise ValueError(f'Cannot load a CLIP vision encoder from {where}: ' + (
            "it is a diffusers pipeline folder: pass subfolder='image_encoder' (tools: "
            '--subfolder image_encoder)' if pipeline else
            f'{str(exc).splitlines()[0]}')) from exc
    # transformers fills what the files lack with random weights, and only logs it
    missing = [k for k in info.get('missing_keys', ())
               if not k.startswith('visual_projection.')]
    wrong = [k if isinstance(k, str) else k[0] for k in info.get('mismatched_keys', ())]
    if missing or wrong:
        raise ValueError(
            f'{where} is not a CLIP vision encoder whose weights fit its config: '
            f'{len(missing)} weights missing (e.g. {(missing or ["-"])[0]}), {len(wrong)} of '
            f'another shape (e.g. {(wrong or ["-"])[0]}); they would be random. Pass the folder '
            'of a CLIP (or CLIP vision) model saved with its weights.')
    if info.get('missing_keys'):  # a vision model without projection: no projected embedding
        model.visual_projection = None
    return model


def load_processor(path_or_id: str, subfolder: Optional[str]):
    """The CLIP image processor beside the model (in ``subfolder``, else in a sibling
    ``feature_extractor`` folder as in diffusers pipelines), or None; a local
    ``preprocessor_config.json`` that does not load is a ValueError (skipped, it would give way
    to other preprocessing without a word)."""
    from transformers import CLIPImageProcessor
    places = [(path_or_id, sub) for sub in ([subfolder] if subfolder else [None]) +
              ['feature_extractor']]
    if not subfolder and osp.isdir(path_or_id):  # a pipeline's image_encoder/ given itself:
        places.append((osp.dirname(osp.abspath(path_or_id)), 'feature_extractor'))  # sibling
    for where, sub in places:
        try:
            return CLIPImageProcessor.from_pretrained(where, **({'subfolder': sub} if sub else {}))
        except (OSError, ValueError, TypeError) as exc:
            config = osp.join(where, sub or '', 'preprocessor_config.json')
            if osp.isfile(config):
                raise ValueError(f'{config} cannot be read ({type(exc).__name__}: '
                                 f'{str(exc).splitlines()[0] if str(exc) else "no detail"}): '
                                 'copy the model folder again, or delete that file to use '
                                 "CLIP's own preprocessing") from None
    return None
