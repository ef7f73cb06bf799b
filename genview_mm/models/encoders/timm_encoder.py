"""A timm image model's last feature map as a frozen patch encoder."""
import logging
import os.path as osp
import sys
from typing import Optional

import torch
from mmengine.logging import print_log
from mmpretrain.registry import MODELS
from torch import nn

from genview_mm.foreground.encoder_identity import EncoderIdentity, weights_fingerprint

from .base import CLIP_MEAN, CLIP_STD, PatchEncoderBase
from .weights_source import HUB_WEIGHT_FILES, WeightsSource, hub_source

#: the pair scorer of the paper: OpenCLIP ConvNeXt-Base-W ``laion2B-s13B-b82K-augreg``, whose
#: image tower timm names ``convnext_base.clip_laion2b_augreg`` (``convnext_base.clip_laion2b``
#: is the non-augreg network), used at 224 px (7x7x1024 tokens)
OFFICIAL_SCORER = 'convnext_base.clip_laion2b_augreg'


@MODELS.register_module()
class TimmPatchEncoder(PatchEncoderBase):
    """Frozen timm model whose ``forward_features`` map (B, C, h, w) becomes (B, h*w, C) tokens.

    For a ConvNeXt that is the stem, the stages and ``norm_pre``, as the official GenView scorer
    takes them.

    Args:
        model_name (str): timm model name, e.g. :data:`OFFICIAL_SCORER`.
        pretrained (bool): load timm's pretrained weights (hub or cache). Defaults to True.
        input_size (int, optional): input side; defaults to the model's ``pretrained_cfg``
            (the paper's scorer: 224 -> 7x7 tokens).
        checkpoint_path (str, optional): local weights file instead of timm's download.
            Defaults to None.
        **kwargs: passed to ``timm.create_model``.
    """

    @classmethod
    def file_identity(cls, model_name: str, path: str, **kwargs) -> EncoderIdentity:
        """The identity (name, architecture, weights fingerprint) the encoder reports with the
        weights file ``path``, without building it (the file's tensors put into a meta-device
        model); a file that does not fit ``model_name`` is the ValueError the encoder raises."""
        import timm
        with torch.device('meta'):
            model = timm.create_model(model_name, pretrained=False, num_classes=0, **kwargs)
        cls._load(model, path, assign=True)
        return EncoderIdentity(model_name, _arch(model_name),
                               weights_fingerprint(model.state_dict()))

    @staticmethod
    def _load(model: nn.Module, path: str, assign: bool = False) -> None:
        """The weights of ``path`` into timm ``model``, without the classifier this headless
        tower lacks (a full timm checkpoint has one); any other missing or extra key is a
        ValueError. A file in another layout that timm's own loader converts (OpenCLIP's
        ``open_clip_pytorch_model.bin``: ``visual.trunk.*``) goes through the model's
        ``checkpoint_filter_fn`` as it would."""
        from timm.models import load_state_dict
        classifier = (getattr(model, 'pretrained_cfg', None) or {}).get('classifier')
        try:
            state = load_state_dict(path)
        except Exception as exc:  # noqa: BLE001  (a truncated file said '[Errno 22]' alone; the
            # unpickler raises IndexError, struct.error, ... on other damage)
            raise ValueError(f'{path} cannot be read as weights ({type(exc).__name__}: '
                             f'{str(exc).splitlines()[0] if str(exc) else "no detail"}): it is '
                             'truncated or not a weights file; copy or download it again') from None
        convert = getattr(sys.modules.get(type(model).__module__), 'checkpoint_filter_fn', None)
        if convert is not None:
            try:
                state = convert(state, model)
            except (KeyError, ValueError, RuntimeError, AttributeError):
                pass  # not a layout it knows (another model's file): the key check names it
        state = {k: v for k, v in state.items()
                 if not (classifier and k.startswith(classifier + '.'))}
        try:
            missing, extra = model.load_state_dict(state, strict=False, assign=assign)
        except RuntimeError as exc:  # the same names at other sizes: a wider model's file
            sizes = [line.strip() for line in str(exc).splitlines() if 'size mismatch' in line]
            more = f' (and {len(sizes) - 1} more)' if len(sizes) > 1 else ''
            raise ValueError(f'{path} does not hold the weights of this timm model: '
                             f'{(sizes or str(exc).splitlines())[0]}{more}: pass the file saved '
                             'from the model_name given') from None
        if missing or extra:
            raise ValueError(f'{path} does not hold the weights of this timm model: missing '
                             f'{list(missing)[:5]}, unexpected {list(extra)[:5]} (of '
                             f'{len(missing)} and {len(extra)}): pass the file saved from the '
                             'model_name given')

    def __init__(self, model_name: str, pretrained: bool = True,
                 input_size: Optional[int] = None, checkpoint_path: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__()
        try:
            import timm
        except ImportError as e:
            raise ImportError('TimmPatchEncoder needs timm: pip install timm') from e
        if checkpoint_path and not osp.isfile(checkpoint_path):  # (timm's error has no message)
            raise FileNotFoundError(
                f'TimmPatchEncoder: checkpoint_path {checkpoint_path!r} ({model_name} weights) '
                'is not a file: give the local weights file of that model (in a GenView config: '
                '--cfg-options model.scorer.encoder.checkpoint_path=FILE), or leave '
                "checkpoint_path unset to load timm's pretrained weights (Hugging Face cache or "
                'hub)')
        _check_name(timm, model_name)  # timm's RuntimeError: a traceback from the tools
        from safetensors import SafetensorError
        # a local file replaces the download (timm would still fetch with pretrained=True)
        try:
            self.model = timm.create_model(model_name,
                                           pretrained=pretrained and not checkpoint_path,
                                           num_classes=0, **kwargs)
        except SafetensorError as exc:  # the cached download cut short (not an OSError)
            repo = self.weights_source(model_name).repo or model_name
            raise ValueError(
                f'TimmPatchEncoder: the pretrained weights of {model_name} in the Hugging Face '
                f'cache are damaged or incomplete ({exc}): download them again (hf download '
                f'{repo} --force-download), or give the local file: checkpoint_path=FILE (tools: '
                '--timm-checkpoint FILE)') from None
        except OSError as exc:  # hub weights neither cached nor reachable (offline nodes)
            repo = self.weights_source(model_name).repo or model_name
            raise OSError(
                f'TimmPatchEncoder: cannot get the pretrained weights of {model_name} ({exc}). '
                f'Download them where there is internet (hf download {repo}; copy '
                '~/.cache/huggingface to offline nodes, or set HF_HOME), or give the local file: '
                'checkpoint_path=FILE (tools: --timm-checkpoint FILE)') from exc
        cfg = getattr(self.model, 'pretrained_cfg', None) or {}
        if checkpoint_path:
            self._load(self.model, checkpoint_path)
        self.input_size = int(input_size or cfg.get('input_size', (3, 224, 224))[-1])
        self.mean = tuple(float(v) for v in cfg.get('mean', CLIP_MEAN))
        self.std = tuple(float(v) for v in cfg.get('std', CLIP_STD))
        if checkpoint_path and not {':', '.'} & set(model_name) and cfg.get('tag'):
            print_log(  # the file's weights may want others (CLIP's for the authors' scorer)
                f"TimmPatchEncoder: {model_name!r} names no pretrained tag, so the weights of "
                f"{checkpoint_path} get the input mean and std of timm's default tag "
                f"{cfg['tag']!r} ({self.mean}, {self.std}): if the file holds other weights, "
                f"name their tag ({model_name}.TAG; the authors' scorer: "
                'convnext_base.clip_laion2b_augreg)', logger='current', level=logging.WARNING)
        self.name = model_name
        self.checkpoint_path = checkpoint_path  # the refit command names it
        self.arch = _arch(model_name)
        #: the tag of timm's pretrained weights loaded (``convnext_base`` alone: its default,
        #: ``fb_in22k_ft_in1k``); None for weights from a file or random ones
        self.pretrained_tag = cfg.get('tag') if pretrained and not checkpoint_path else None
        self.freeze()
        with torch.no_grad():
            fmap = self.model.forward_features(torch.zeros(1, 3, self.input_size,
                                                           self.input_size))
        channels = getattr(self.model, 'num_features', None)
        if fmap.ndim != 4 or (channels is not None and fmap.shape[1] != channels):
            raise ValueError(  # a (B, h, w, C) map read as (B, C, h, w) gave wrong tokens
                f'TimmPatchEncoder needs a model whose forward_features gives a (B, C, h, w) '
                f'map, as ConvNeXt does; {model_name} gives shape {tuple(fmap.shape)} '
                f'({channels} features): use a convolutional model, or CLIPPatchEncoder for a '
                'CLIP ViT')
        self.dim, self.grid = int(fmap.shape[1]), (int(fmap.shape[2]), int(fmap.shape[3]))

    @classmethod
    def weights_source(cls, model_name: str, pretrained: bool = True,
                       input_size: Optional[int] = None, checkpoint_path: Optional[str] = None,
                       **kwargs) -> WeightsSource:
        """Where the weights of ``TimmPatchEncoder(model_name, ...)`` come from, without
        loading them: ``checkpoint_path`` (``'file'``), none (``'random'``), the Hugging Face
        cache or hub repository of timm's pretrained config, or timm's own download; with the
        input size the encoder will take and its token width and grid there (the model run
        on the meta device; None where that fails).

        Args:
            model_name (str): timm model name.
            pretrained (bool): load pretrained weights. Defaults to True.
            input_size (int, optional): input side; defaults to the pretrained config's.
            checkpoint_path (str, optional): local weights file. Defaults to None.
            **kwargs: the other arguments of the class (``timm.create_model``'s).

        Returns:
            WeightsSource: the source.
        """
        import timm
        from timm.models import get_pretrained_cfg
        _check_name(timm, model_name)
        try:
            cfg = get_pretrained_cfg(model_name)
        except RuntimeError:  # 'Invalid pretrained tag'
            arch, _, tag = model_name.partition('.')
            raise ValueError(f'TimmPatchEncoder: {model_name!r}: {arch} has no pretrained tag '
                             f"{tag} (timm.list_pretrained('{arch}.*') lists its tags)") from None
        # unknown without a pretrained config here (local-dir:, hf-hub: read theirs on load)
        size = input_size or (cfg.input_size[-1] if cfg is not None else None)
        tokens = None
        try:  # the shapes alone, as the encoder measures them (a PCA file of other tokens)
            with torch.device('meta'):
                model = timm.create_model(model_name, pretrained=False, num_classes=0, **kwargs)
                fmap = model.forward_features(torch.zeros(1, 3, size, size)) if size else None
            if fmap is not None and fmap.ndim == 4 and fmap.shape[1] == getattr(
                    model, 'num_features', fmap.shape[1]):  # not a channels-last map (swin)
                tokens = (int(fmap.shape[1]), (int(fmap.shape[2]), int(fmap.shape[3])))
        except Exception:  # noqa: BLE001  (a model that cannot run there: not compared)
            pass
        repo = getattr(cfg, 'hf_hub_id', None) if cfg is not None else None
        if checkpoint_path or not pretrained or not repo:
            kind = 'file' if checkpoint_path else 'random' if not pretrained else 'download'
            return WeightsSource(kind, checkpoint_path, input_size=size, tokens=tokens)
        filename = getattr(cfg, 'hf_hub_filename', None)
        return hub_source(repo, [filename] if filename else HUB_WEIGHT_FILES, size)._replace(
            tokens=tokens)

    def weights(self) -> nn.Module:
        return self.model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) encoder-normalised pixels -> (B, h*w, C) tokens (row-major)."""
        return self.model.forward_features(pixel_values).flatten(2).transpose(1, 2)


def _arch(model_name: str) -> str:
    """The architecture signature of a timm model name (its pretrained tag dropped)."""
    return 'timm:' + model_name.split('.')[0]


def _check_name(timm, model_name: str) -> None:
    """ValueError unless timm knows ``model_name`` (a name with a source, ``hf-hub:`` or
    ``local-dir:``, is timm's to resolve: ``is_model`` says no to it)."""
    if ':' not in model_name and not timm.is_model(model_name):
        raise ValueError(f'TimmPatchEncoder: {model_name!r} is not a timm model '
                         "(timm.list_models('NAME*') lists the names)")
