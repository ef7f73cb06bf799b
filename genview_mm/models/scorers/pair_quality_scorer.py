"""Frozen-encoder pair-quality scorer of GenView (arXiv:2403.12003, Sec. 3.3)."""
from typing import NamedTuple, Optional, Sequence, Union

import torch
from mmpretrain.registry import MODELS
from torch import nn

from genview_mm.foreground import ForegroundPCA, check_pca_encoder

from ..encoders import OFFICIAL_SCORER, build_patch_encoder
from .fast_path import (
    FixedBatchRunner,
    Scores,
    Switch,
    cast_autocast_weights,
    check_switch,
    resolve_graph,
    resolve_switch,
    restore_weights,
)
from .normalization import ssl_normalisation, to_encoder_pixels
from .pair_scores import pair_quality

#: the paper's scorer encoder: OpenCLIP ConvNeXt-Base-W laion2B-s13B-b82K-augreg at 224 px
OFFICIAL_ENCODER = dict(type='TimmPatchEncoder', model_name=OFFICIAL_SCORER, input_size=224)
#: ``cuda_graph='auto'`` replays CUDA graphs up to this many images per call (2 per pair): the
#: graph keeps its activation memory, and larger batches gain little from fewer launches
GRAPH_MAX_IMAGES = 128


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
    under autocast on GPU, once on both views. Views are converted from the SSL model's
    normalisation to the encoder's here, so the SSL config keeps its own mean/std.

    The PCA file must have been fitted (or imported) for this encoder: same token width, grid
    and input size, and the same weights (see :func:`genview_mm.foreground.check_pca_encoder`);
    otherwise the scorer refuses to build and names both.

    Speed (:mod:`.fast_path`; each switch is True, False or ``'auto'`` = on for CUDA only):
    ``cast_weights`` changes no score, ``channels_last`` only the rounding (bit-identical on
    CPU for the ConvNeXt scorer, not for every encoder), ``cuda_graph`` replays the same
    kernels; ``compile`` rounds differently (its largest errors against float32 were
    0.97-1.04x the official path's on CPU, 1.05-1.19x at 32 pairs and 0.85x at 512 on an H200,
    so it is opt-in: the accuracy rule asks for no more than the official error;
    docs/benchmarks.md). ``compile`` and ``cuda_graph`` fix the batch at the
    first call.

    Args:
        pca_path (str): PCA file for this encoder (``tools/fit_foreground_pca.py`` or
            ``tools/import_official_pca.py``).
        encoder (str | dict | nn.Module, optional): transformers CLIP id/folder, a patch
            encoder config (``dict(type='TimmPatchEncoder', model_name=...)``) or a built
            module (then cast and moved in place). Defaults to None: the paper's scorer,
            :data:`OFFICIAL_ENCODER` (7x7x1024 tokens at 224 px).
        input_order (str): ``'auto'`` (RGB if the data preprocessor converts to RGB),
            ``'rgb'`` or ``'bgr'``. Defaults to ``'auto'``.
        mean (Sequence[float], optional): SSL mean (0-255) overriding the preprocessor's.
        std (Sequence[float], optional): SSL std (0-255) overriding the preprocessor's.
        autocast_dtype (str | torch.dtype): autocast dtype (``'bfloat16'`` also works in
            config files). Defaults to torch.float16.
        check_encoder (bool): require the PCA file to be for this very encoder (weights
            fingerprint or name); shapes are always checked. Defaults to True.
        autocast (bool | str): run the encoder under autocast; ``'auto'``: on CUDA only (CPU
            autocast needs ``autocast_dtype='bfloat16'`` to be fast). Defaults to ``'auto'``.
        cast_weights (bool): under autocast, store Conv/Linear weights in ``autocast_dtype``
            (bit-identical scores, no casts per call). Defaults to True.
        channels_last (bool | str): encoder and input in channels_last. Defaults to ``'auto'``.
        compile (bool | str): ``torch.compile`` encoder + pair math at the first call's batch
            (opt-in, see above; ``bench_scorer.py --mode scorer --set compile=True`` prints
            its error beside the official path's). Defaults to False.
        cuda_graph (bool | str): replay a CUDA graph; ``'auto'``: on CUDA up to
            :data:`GRAPH_MAX_IMAGES` images per call. Defaults to ``'auto'``.
        overlap (bool): score on a CUDA side stream while the SSL forward runs (read by the
            algorithm; on CPU the same numbers, in line). Defaults to False.
    """

    def __init__(self, pca_path: str, encoder: Union[str, dict, nn.Module, None] = None,
                 input_order: str = 'auto', mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 autocast_dtype: Union[str, torch.dtype] = torch.float16,
                 check_encoder: bool = True, autocast: Switch = 'auto',
                 cast_weights: bool = True, channels_last: Switch = 'auto',
                 compile: Switch = False, cuda_graph: Switch = 'auto',
                 overlap: bool = False) -> None:
        super().__init__()
        if input_order not in ('auto', 'rgb', 'bgr'):
            raise ValueError(f"input_order must be 'auto', 'rgb' or 'bgr', got {input_order!r}")
        self.input_order = input_order
        if (mean is None) != (std is None) or any(v is not None and len(v) != 3
                                                  for v in (mean, std)):
            raise ValueError(f'mean and std go together, 3 values each (0-255), got mean={mean!r}'
                             f', std={std!r}')
        self.ssl_mean, self.ssl_std = mean, std
        self.autocast_dtype = {'float16': torch.float16, 'bfloat16': torch.bfloat16}.get(
            autocast_dtype, autocast_dtype)
        if self.autocast_dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"autocast_dtype must be 'float16' or 'bfloat16', got "
                             f'{autocast_dtype!r}')
        for name, value in (('cast_weights', cast_weights), ('overlap', overlap)):
            if not isinstance(value, bool):
                raise ValueError(f'{name} must be True or False, got {value!r}')
        self.switches = dict(autocast=check_switch('autocast', autocast),
                             channels_last=check_switch('channels_last', channels_last),
                             compile=check_switch('compile', compile),
                             cuda_graph=check_switch('cuda_graph', cuda_graph))
        self.cast_weights, self.overlap = cast_weights, overlap
        # the arguments and the PCA file first: a typo is not reported after gigabytes load
        pca = ForegroundPCA.load(pca_path).require_scorer_direction()
        enc = build_patch_encoder(OFFICIAL_ENCODER if encoder is None else encoder)
        check_pca_encoder(pca, enc, pca_path, 'scorer encoder', check_identity=check_encoder)
        # Plain attributes (not submodules/buffers): nothing of the encoder is trained or saved.
        self.__dict__['_encoder'] = enc
        self.__dict__['_direction'] = pca.direction.detach().float().clone()
        self.__dict__['_plan'] = None  # (device, settings, runner), made at the first call
        self.__dict__['_originals'] = {}  # cast_autocast_weights' copies, for restore_weights
        # the SSL normalisation read from a preprocessor, and its per-device tensors: reading a
        # preprocessor's buffers, or making tensors from floats, syncs a GPU at every step
        self.__dict__['_ssl_norm'] = None  # (data_preprocessor, (mean, std, bgr))
        self.__dict__['_columns'] = {}
        self._seen: set = set()

    @property
    def encoder(self) -> nn.Module:
        """The frozen encoder (not a submodule)."""
        return self.__dict__['_encoder']

    def plan(self, device: torch.device, pairs: int) -> dict:
        """The speed settings in force on ``device`` (fixed at the first call on it).

        Args:
            device (torch.device): where the views are.
            pairs (int): pairs of the first call (``cuda_graph='auto'`` reads it).

        Returns:
            dict: ``autocast``, ``cast_weights``, ``channels_last``, ``compile`` and
            ``cuda_graph``, each a bool.
        """
        current = self.__dict__['_plan']
        if current is not None and current[0] == device:
            return current[1]
        sw, seen = self.switches, self._seen
        amp = resolve_switch('autocast', sw['autocast'], device, seen)
        graph = resolve_graph(sw['cuda_graph'], device, pairs, seen, GRAPH_MAX_IMAGES)
        settings = dict(autocast=amp, cast_weights=amp and self.cast_weights,
                        channels_last=resolve_switch('channels_last', sw['channels_last'],
                                                     device, seen),
                        compile=resolve_switch('compile', sw['compile'], device, seen),
                        cuda_graph=graph)
        enc = self.encoder.to(device).eval()
        originals = self.__dict__['_originals']  # the weights before any cast, on the CPU
        if settings['cast_weights']:
            cast_autocast_weights(enc, self.autocast_dtype, originals)
        elif originals:  # cast for autocast on another device: as loaded again (not rounded)
            restore_weights(enc, originals)
            originals.clear()
        if settings['channels_last']:
            enc.to(memory_format=torch.channels_last)
        self.__dict__['_direction'] = self.__dict__['_direction'].to(device)
        runner = FixedBatchRunner(self._score, settings['compile'], settings['cuda_graph'])
        self.__dict__['_plan'] = (device, settings, runner)
        return settings

    def speed_settings(self) -> Optional[dict]:
        """The settings in force after any fallback (compile or graph capture failed), or None
        before the first call."""
        current = self.__dict__['_plan']
        if current is None:
            return None
        runner = current[2]
        return dict(current[1], compile=runner.compile, cuda_graph=runner.cuda_graph)

    def _ssl_normalisation(self, data_preprocessor: Optional[nn.Module]):
        """:func:`ssl_normalisation` of ``data_preprocessor``, read once per preprocessor."""
        cached = self.__dict__['_ssl_norm']
        if cached is None or cached[0] is not data_preprocessor:
            cached = (data_preprocessor, ssl_normalisation(data_preprocessor, self.ssl_mean,
                                                           self.ssl_std, self.input_order))
            self.__dict__['_ssl_norm'] = cached
        return cached[1]

    def _column_tensors(self, device: torch.device, *values: Optional[Sequence[float]]):
        """``values`` (3 floats each, or None) as (1, 3, 1, 1) float32 tensors on ``device``,
        made once per device and values."""
        key = (device, *(None if v is None else tuple(v) for v in values))
        columns = self.__dict__['_columns']
        if key not in columns:
            columns[key] = [None if v is None else torch.tensor(
                list(v), dtype=torch.float32, device=device).view(1, 3, 1, 1) for v in values]
        return columns[key]

    def _pixels(self, views: torch.Tensor, data_preprocessor: Optional[nn.Module],
                pairs: int) -> torch.Tensor:
        """SSL-normalised views -> float32 encoder pixels, in the plan's memory format."""
        settings = self.plan(views.device, pairs)
        enc = self.encoder
        mean, std, bgr = self._ssl_normalisation(data_preprocessor)
        columns = self._column_tensors(views.device, mean, std, enc.mean, enc.std)
        with torch.autocast(device_type=views.device.type, enabled=False):
            x = to_encoder_pixels(views, *columns, bgr, enc.input_size)
        return x.contiguous(memory_format=torch.channels_last) if settings[
            'channels_last'] else x

    def _tokens(self, x: torch.Tensor) -> torch.Tensor:
        amp = self.__dict__['_plan'][1]['autocast']
        with torch.autocast(device_type=x.device.type, dtype=self.autocast_dtype, enabled=amp,
                            cache_enabled=False):
            return self.encoder(x).float()

    def _score(self, x: torch.Tensor) -> Scores:
        """Encoder + fp32 pair math on (2N, 3, S, S) pixels: first views, then second."""
        n = x.size(0) // 2
        tokens = self._tokens(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return pair_quality(tokens[:n], tokens[n:], self.__dict__['_direction'])

    @torch.no_grad()
    def encode(self, views: torch.Tensor,
               data_preprocessor: Optional[nn.Module] = None) -> torch.Tensor:
        """(B, 3, H, W) SSL-normalised views -> (B, N, D) float32 patch tokens (eager)."""
        return self._tokens(self._pixels(views, data_preprocessor, views.size(0) // 2))

    @torch.no_grad()
    def forward(self, view1: torch.Tensor, view2: torch.Tensor,
                data_preprocessor: Optional[nn.Module] = None) -> PairScores:
        """Score the pairs ``(view1[i], view2[i])``.

        Args:
            view1 (torch.Tensor): (N, 3, H, W) first views, as the SSL model receives them.
            view2 (torch.Tensor): (N, 3, H2, W2) second views (resized apart if other size).
            data_preprocessor (nn.Module, optional): the SSL model's preprocessor, read for its
                mean/std and channel order. Defaults to None (raw 0-255 RGB unless overridden).

        Returns:
            PairScores: ``s_f``, ``s_b`` and ``q`` on ``view1``'s device.

        Raises:
            ValueError: the views hold different numbers of images (the batch is split in the
                middle: the pairs would be mixed up).
        """
        n = view1.size(0)
        if view2.size(0) != n:
            raise ValueError(f'view1 has {n} images and view2 {view2.size(0)}: the scorer takes '
                             'one pair per row, view1[i] with view2[i]')
        if view1.shape[-2:] == view2.shape[-2:]:
            x = self._pixels(torch.cat([view1, view2.to(view1.dtype)]), data_preprocessor, n)
        else:  # two pipelines cropping to other sizes: each resized to the encoder's input
            x = torch.cat([self._pixels(v, data_preprocessor, n) for v in (view1, view2)])
        scores = self.__dict__['_plan'][2](x)
        return PairScores(*(t.float().to(view1.device) for t in scores))
