"""AdaptiveNoiseGenerator: GenView's adaptive-noise image variations (arXiv:2403.12003, Sec. 3.2).

For each image: CLIP patch tokens and image embedding from the unCLIP pipeline's own feature
extractor and image encoder (one pass, :mod:`.analysis`), foreground ratio p from a
:class:`ForegroundPCA`, noise level l = rule(p), then
``StableUnCLIPImg2ImgPipeline(image_embeds=..., noise_level=l)``. A batch goes to the pipeline
in one call with each sample at its own level (:mod:`.mixed_levels`), and every sample has its
own ``torch.Generator`` seeded from (base seed, image key, variation), so an image's output
does not depend on the batch or shard it is processed in.

The GPU fast path (each part a constructor option, each tested against the plain path on the
tiny pipeline): outputs kept as tensors, resized and made uint8 on the device
(``output='tensor'``, :mod:`.device_images`); the prompt encoded once; channels_last and fused
QKV (:mod:`.pipeline_loader`); ``compile=True`` at a fixed, padded batch and the call size
halved on CUDA out-of-memory (:mod:`.mixed_levels`).
"""
import math
import numbers
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from mmpretrain.registry import MODELS

from ..foreground import ForegroundPCA, check_pca_encoder
from ..models.encoders import CLIPPatchEncoder, encoder_id
from .analysis import analysis_size, analyze_pixels
from .device_images import clip_pixels, decode_latents, to_hwc_cpu, to_uint8
from .mixed_levels import CallBatches, call_mixed_levels
from .noise import DEFAULT_BINS, DEFAULT_LEVELS, check_noise_level, validate_noise_rule
from .pipeline_loader import (
    apply_layout,
    compile_models,
    encode_empty_prompt,
    load_unclip_pipeline,
    local_folder,
    native_size,
    prepare_pipeline,
    resolve_auto,
    resolve_dtype,
    scheduler_class,
)
from .seeding import image_seed

DEFAULT_PRETRAINED = 'stabilityai/stable-diffusion-2-1-unclip'


@dataclass
class GeneratedView:
    """One generated image and its provenance."""

    image: Any  # PIL.Image.Image, or a uint8 (H, W, 3) CPU tensor with output='tensor'
    key: str
    variation: int
    noise_level: int
    fg_ratio: float
    seed: int
    clip_sim: Optional[float]


def as_training_decodes(image: Any) -> Any:
    """A PIL ``image`` as training's OpenCV decoder reads its file: turned by its EXIF
    orientation, 16-bit samples kept by their high byte (PIL's RGB conversion clipped them to
    white; a 32-bit ``'I'`` image counts as 16-bit when a value exceeds 255, as a 16-bit PNG
    opens so) and an alpha channel dropped (the CLIP processor would lay the image on white);
    RGB. Anything else is returned as it is."""
    from PIL import Image, ImageOps
    if not isinstance(image, Image.Image):
        return image
    if image.getexif().get(0x0112, 1) != 1:  # an Orientation tag (load_image's images have none)
        image = ImageOps.exif_transpose(image)
    if image.mode.startswith('I;16') or image.mode == 'I':
        import numpy as np
        array = np.asarray(image).astype(np.int64)
        if image.mode != 'I' or array.max(initial=0) > 255:
            image = Image.fromarray((np.clip(array, 0, 65535) >> 8).astype(np.uint8), 'L')
    return image if image.mode == 'RGB' else image.convert('RGB')


@MODELS.register_module()
class AdaptiveNoiseGenerator:
    """Generate views with a noise level adapted to each image's foreground ratio.

    Args:
        pca (ForegroundPCA | str): fitted foreground PCA of the pipeline's image encoder, or
            the path of its file (``tools/fit_foreground_pca.py``).
        pipeline (optional): a built ``StableUnCLIPImg2ImgPipeline``; if None it is loaded
            lazily with ``from_pretrained(pretrained, torch_dtype=...)`` on first use.
        pretrained (str): local folder or hub id of the pipeline. Defaults to
            'stabilityai/stable-diffusion-2-1-unclip'.
        device (str, optional): defaults to 'cuda' if available else 'cpu'.
        torch_dtype (str, optional): 'float16', 'bfloat16' or 'float32'; defaults to float16
            on CUDA and float32 on CPU. Only used when loading.
        scheduler (str, optional): name of a diffusers scheduler class to replace the
            pipeline's (built from its config), e.g. 'DDIMScheduler'. Defaults to None (keep).
        num_inference_steps (int): Defaults to 20.
        guidance_scale (float): Defaults to 10.0.
        prompt (str): text prompt. Defaults to '' (empty).
        height (int, optional) / width (int, optional): generation size; None: the
            pipeline's native size.
        output_size (int, optional): returned images are resized to this square size.
            Defaults to 512; None keeps the generated size.
        noise_bins / noise_levels: the noise rule (see :mod:`.noise`).
        base_seed (int): base of the per-image seeds. Defaults to 0.
        num_variations (int): generated images per source image. Defaults to 1.
        max_batch_size (int, optional): split the samples of one :meth:`generate` call into
            pipeline calls of at most this many. Defaults to None (no split). On CUDA
            out-of-memory the call size is halved (and logged) for the rest of the run.
        output (str): what :meth:`generate` returns by default: ``'pil'`` (PIL images, through
            diffusers' PIL conversion and PIL's resize) or ``'tensor'`` (uint8 (H, W, 3) CPU
            tensors decoded, resized and quantised on the device); ``'auto'``: tensor on
            CUDA, PIL elsewhere. Defaults to 'pil'.
        cache_prompt_embeds (bool): encode the prompt (and the empty negative prompt) once
            and pass the embeddings to every call. Defaults to True.
        channels_last (bool, optional): UNet and VAE in channels_last. None (default): on
            CUDA only.
        fuse_qkv (bool, optional): fuse the attention QKV projections of the UNet and VAE
            (diffusers' ``fuse_qkv_projections``). None (default): on CUDA only.
        compile (bool): torch.compile the UNet and the VAE decoder; every pipeline call is
            padded to ``max_batch_size`` (required) so they compile once. Defaults to False.
        compile_mode (str, optional) / compile_backend (str): passed to torch.compile.
            Defaults to None / 'inductor'.
        check_encoder (bool): require the PCA file to be for this pipeline's encoder (same
            weights fingerprint, or same architecture and name); token width, grid and input
            size are always checked. Defaults to True.
        name (str, optional): generator id written to manifests; defaults to the pipeline's
            path or hub id.
        host_threads (int): threads for the PIL output's per-image host work (the resize to
            ``output_size``, the CLIP pixels for ``clip_sim``), off the calling thread that
            runs the models; 0: on the calling thread. The same outputs either way. Defaults
            to 4.
    """

    def __init__(self, pca: Union[ForegroundPCA, str], pipeline: Any = None,
                 pretrained: str = DEFAULT_PRETRAINED, device: Optional[str] = None,
                 torch_dtype: Optional[str] = None, scheduler: Optional[str] = None,
                 num_inference_steps: int = 20, guidance_scale: float = 10.0, prompt: str = '',
                 height: Optional[int] = None, width: Optional[int] = None,
                 output_size: Optional[int] = 512, noise_bins: Sequence[float] = DEFAULT_BINS,
                 noise_levels: Sequence[int] = DEFAULT_LEVELS, base_seed: int = 0,
                 num_variations: int = 1, max_batch_size: Optional[int] = None,
                 check_encoder: bool = True, name: Optional[str] = None, output: str = 'pil',
                 cache_prompt_embeds: bool = True, channels_last: Optional[bool] = None,
                 fuse_qkv: Optional[bool] = None, compile: bool = False,
                 compile_mode: Optional[str] = None, compile_backend: str = 'inductor',
                 host_threads: int = 4) -> None:
        self.noise_bins, self.noise_levels = validate_noise_rule(noise_bins, noise_levels)
        for what, value, low in (('num_variations', num_variations, 1),
                                 ('num_inference_steps', num_inference_steps, 1),
                                 ('output_size', output_size, 1), ('base_seed', base_seed, None),
                                 ('host_threads', host_threads, 0)):
            if not (value is None and what == 'output_size') and (  # found only after a model
                    isinstance(value, bool) or not isinstance(value, numbers.Integral)  # load
                    or (low is not None and value < low)):              # or a whole diffusion
                raise ValueError(f'{what} must be an integer'
                                 + (f' >= {low}' if low is not None else '') + f', got {value!r}')
        for side, size in (('height', height), ('width', width)):  # the VAE's 8-pixel blocks
            if size is not None and (size < 8 or size % 8):
                raise ValueError(f'{side} must be a positive multiple of 8, got {size}')
        self.device = torch.device(device or ('cuda' if torch.cuda.is_available() else 'cpu'))
        self.output = _check_output(output, self.device)
        self.torch_dtype = torch_dtype
        self.pretrained = pretrained
        self.scheduler = scheduler or None  # '' is the pipeline's own, recorded as such
        if self.scheduler is not None:
            scheduler_class(self.scheduler)  # an unknown one refused now, not after the load
        self.num_inference_steps = num_inference_steps
        self.guidance_scale = guidance_scale
        self.prompt = prompt
        self.height, self.width, self.output_size = height, width, output_size
        self.base_seed = base_seed
        self.num_variations = num_variations
        self._batches = CallBatches(max_batch_size, fixed=compile)
        self.cache_prompt_embeds = cache_prompt_embeds
        self._prompt_embeds = None  # ((prompt, guidance), (prompt, negative prompt) embeddings)
        self.channels_last = resolve_auto(channels_last, self.device)
        self.fuse_qkv = resolve_auto(fuse_qkv, self.device)
        self.compile, self.compile_mode, self.compile_backend = (compile, compile_mode,
                                                                 compile_backend)
        self.check_encoder = check_encoder
        self.host_threads, self._host_pool = host_threads, None  # the pool made on first use
        self._pca_src = pca
        self._pca: Optional[ForegroundPCA] = pca if isinstance(pca, ForegroundPCA) else None
        self._pipe = pipeline
        self._encoder: Optional[CLIPPatchEncoder] = None
        self._name = name
        if pipeline is not None:
            self._setup(pipeline)

    def __getstate__(self) -> Dict[str, Any]:
        """A copy or pickle without the host thread pool (it cannot be pickled; the copy makes
        its own on first use)."""
        return dict(self.__dict__, _host_pool=None)

    @property
    def max_batch_size(self) -> Optional[int]:
        """The most samples per pipeline call now (halved on out-of-memory; set it when the
        generator is built)."""
        return self._batches.limit

    # ------------------------------------------------------------------ components
    @property
    def pipeline(self):
        """The diffusers pipeline, loaded on first use."""
        if self._pipe is None:
            self._setup(load_unclip_pipeline(self.pretrained, self.device, self.torch_dtype))
        return self._pipe

    def _setup(self, pipe) -> None:
        self._pipe = prepare_pipeline(pipe, self.device, self.scheduler)
        apply_layout(self._pipe, self.channels_last, self.fuse_qkv)
        if self.compile:
            compile_models(self._pipe, self.compile_mode, self.compile_backend)
        source = getattr(pipe, 'name_or_path', None) or self.pretrained
        self._name = self._name or str(source)
        # the pipeline's own image encoder and feature extractor: the same conditioning
        # pixels the pipeline would compute itself (no second copy of the weights)
        self._encoder = CLIPPatchEncoder(model=pipe.image_encoder,
                                         name=encoder_id(source, 'image_encoder'),
                                         processor=pipe.feature_extractor)

    @property
    def encoder(self) -> CLIPPatchEncoder:
        """The pipeline's own image encoder as a patch encoder (no second copy)."""
        self.pipeline  # noqa: B018  (load)
        return self._encoder

    @property
    def name(self) -> str:
        """Generator id for manifests."""
        return self._name or self.pretrained

    def pixel_settings(self) -> Dict[str, Any]:
        """The settings of this generator that decide its views' pixels (JSON types; the
        model aside, which a settings record names by its weights): dtype and output resolved
        for the device, the size None where it is the model's native one (found in its folder
        or cached snapshot, without loading it)."""
        native = native_size(local_folder(self.pretrained))
        dtype = resolve_dtype(self.torch_dtype, self.device)
        return dict(output=self.output, dtype=str(dtype).replace('torch.', ''),
                    scheduler=self.scheduler, steps=self.num_inference_steps,
                    guidance=float(self.guidance_scale),
                    prompt=self.prompt, seed=self.base_seed, noise_bins=list(self.noise_bins),
                    noise_levels=list(self.noise_levels),
                    gen_size=None if self.height == native else self.height,
                    output_size=self.output_size, num_variations=self.num_variations)

    @property
    def pca(self) -> ForegroundPCA:
        if self._pca is None:  # the threshold first: a file without one loads no pipeline
            self._pca = ForegroundPCA.load(self._pca_src).require_threshold()
        source = ('the given ForegroundPCA' if isinstance(self._pca_src, ForegroundPCA)
                  else str(self._pca_src))  # a path: str or os.PathLike
        check_pca_encoder(self._pca, self.encoder, source, 'generator encoder',
                          check_identity=self.check_encoder)
        return self._pca

    # ------------------------------------------------------------------ analysis
    def preprocess(self, images: List) -> torch.Tensor:
        """Pixel values of PIL ``images`` from the pipeline's own ``feature_extractor``, each
        read as training reads its file (:func:`as_training_decodes`: EXIF orientation, 16-bit
        samples, alpha)."""
        return self.encoder.preprocess([as_training_decodes(im) for im in images])

    def analyze(self, images: List, pixels: Optional[torch.Tensor] = None) -> Dict[str, Any]:
        """Foreground ratios, noise levels and CLIP image embeddings of PIL ``images`` (one
        encoder pass; see :mod:`.analysis`); ``pixels``: their :meth:`preprocess` if the
        caller has it (the runner preprocesses in its prefetch thread)."""
        pixels = self.preprocess(images) if pixels is None else pixels
        if not (pixels.is_floating_point() and pixels.dim() == 4 and
                tuple(pixels.shape[:2]) == (len(images), 3)):
            raise ValueError(f'pixels must be float (N, 3, S, S) for the {len(images)} images '
                             f'(the output of preprocess), got {tuple(pixels.shape)} '
                             f'{pixels.dtype}')
        return analyze_pixels(self.encoder, self.pca, pixels, self.noise_bins, self.noise_levels)

    # ------------------------------------------------------------------ generation
    def __call__(self, images: List, keys: Sequence[str]) -> List[GeneratedView]:
        return self.generate(images, keys)

    def generate(self, images: List, keys: Sequence[str], batching: str = 'mixed',
                 analysis: Optional[Dict[str, Any]] = None,
                 output: Optional[str] = None) -> List[GeneratedView]:
        """Generate ``num_variations`` views per image, returned in input order.

        Args:
            images: PIL images.
            keys: one stable id per image (e.g. its path relative to the dataset root); the
                per-image seed is derived from it.
            batching: ``'mixed'`` (default): one pipeline call per ``max_batch_size`` samples,
                each sample at its own noise level; ``'level'``: one call per noise level;
                ``'none'``: one call per sample (the official script's way; for benchmarks).
                All three give the same images (per-sample generators).
            analysis: :meth:`analyze` of these ``images`` if the caller already has it (the
                runner analyses each batch once, on pixels its prefetch thread made); None:
                analyse them now.
            output: ``'pil'``, ``'tensor'`` or ``'auto'`` (see the class arguments); None:
                the generator's ``output``.
        """
        if batching not in ('mixed', 'level', 'none'):
            raise ValueError(f"batching must be 'mixed', 'level' or 'none', got {batching!r}")
        output = _check_output(output or self.output, self.device)
        if len(images) != len(keys):
            raise ValueError(f'got {len(images)} images but {len(keys)} keys')
        names = [str(k) for k in keys]  # the seed reads a key as text: 1 and '1' share one
        if len(set(names)) != len(names):  # one key, one seed: two images would share it
            repeated = sorted({k for k in names if names.count(k) > 1})
            raise ValueError(f'duplicate keys in one call (each key seeds its image): '
                             f'{repeated[:5]}')
        if not images:
            return []
        info = self.analyze(images) if analysis is None else analysis
        if analysis_size(info) != len(images):
            raise ValueError(f'analysis describes {analysis_size(info)} images, got '
                             f'{len(images)}')
        samples = [(i, v) for i in range(len(images)) for v in range(self.num_variations)]
        seeds = [image_seed(keys[i], self.base_seed, v) for i, v in samples]
        given = [check_noise_level(level, f' for image {keys[i]!r}')  # an analysis passed in:
                 for i, level in enumerate(info['noise_level'])]    # diffusers checks row 0 only
        levels = [given[i] for i, _ in samples]
        groups: Dict[int, List[int]] = {}
        for s in range(len(samples)):
            key = {'mixed': 0, 'level': levels[s], 'none': -1 - s}[batching]
            groups.setdefault(key, []).append(s)
        outputs: List[Any] = [None] * len(samples)
        for members in groups.values():
            embeds = info['embeds'][[samples[s][0] for s in members]]
            images_out = self._batches.run(
                lambda e, lv, sd: self._run(e, lv, sd, output=output), embeds,
                [levels[s] for s in members], [seeds[s] for s in members])
            for s, img in zip(members, images_out):
                outputs[s] = img
        src_embeds = info['embeds'][[i for i, _ in samples]]
        if output == 'tensor':
            batch = torch.stack(outputs)
            sims = self._similarity_pixels(clip_pixels(batch, self.encoder.processor),
                                           src_embeds)
            outputs = to_hwc_cpu(batch)
        else:  # resized and preprocessed off this thread (the models' one), moved in one copy
            done = self._host_map(self._finish_pil, outputs)
            outputs = [im for im, _ in done]
            enc = self.encoder
            sims = self._similarity_pixels(
                torch.cat([px for _, px in done]).to(enc.device, enc.dtype), src_embeds)
        return [GeneratedView(outputs[s], keys[i], v, levels[s], float(info['fg_ratio'][i]),
                              seeds[s], sims[s])
                for s, (i, v) in enumerate(samples)]

    def _run(self, embeds: torch.Tensor, levels: List[int], seeds: List[int],
             output: str = 'pil') -> Any:
        """One pipeline call; sample ``k`` uses ``levels[k]`` and its own generator. Returns
        PIL images (``output='pil'``) or uint8 (B, 3, S, S) on the device ('tensor')."""
        pipe = self.pipeline
        text = None
        if self.cache_prompt_embeds:  # encoded anew if the prompt or guidance changed since
            key = (self.prompt, self.guidance_scale > 1.0)
            if self._prompt_embeds is None or self._prompt_embeds[0] != key:
                self._prompt_embeds = key, encode_empty_prompt(pipe, *key)
            text = self._prompt_embeds[1]
        out = call_mixed_levels(pipe, embeds, levels, seeds, prompt=self.prompt,
                                output_type='latent' if output == 'tensor' else 'pil',
                                prompt_embeds=text,
                                num_inference_steps=self.num_inference_steps,
                                guidance_scale=self.guidance_scale, height=self.height,
                                width=self.width)
        if output == 'tensor':
            return to_uint8(decode_latents(pipe, out), self.output_size)
        return out  # resized by _finish_pil

    def _finish_pil(self, image: Any) -> tuple:
        """A PIL output at ``output_size`` (PIL's bicubic) and its CLIP pixels (1, 3, S, S) on
        the CPU (the encoder's :meth:`preprocess` without the copy to its device)."""
        size = (self.output_size, self.output_size)
        if self.output_size and image.size != size:
            from PIL import Image
            image = image.resize(size, Image.BICUBIC)
        return image, self.encoder.pixel_transform()([image])

    def _host_map(self, fn, items: List) -> List:
        """``[fn(x) for x in items]`` on the ``host_threads`` pool (0, or one item: here)."""
        if self.host_threads < 1 or len(items) < 2:
            return [fn(x) for x in items]
        if self._host_pool is None:
            self._host_pool = ThreadPoolExecutor(self.host_threads, 'view-host')
        return list(self._host_pool.map(fn, items))

    def _similarity_pixels(self, pixels: torch.Tensor,
                           src_embeds: torch.Tensor) -> List[Optional[float]]:
        """Cosine similarity of each view to its source; None where it is not finite (an
        embedding that overflowed in fp16): unknown, as the manifest records it."""
        gen_embeds = self.encoder.image_embeds(pixels)
        sims = torch.nn.functional.cosine_similarity(gen_embeds.float(),
                                                     src_embeds.float().to(gen_embeds.device),
                                                     -1)
        return [s if math.isfinite(s) else None for s in sims.tolist()]


def _check_output(output: str, device: torch.device) -> str:
    """``'pil'`` or ``'tensor'``; ``'auto'``: tensor on CUDA, else PIL."""
    if output == 'auto':
        return 'tensor' if device.type == 'cuda' else 'pil'
    if output not in ('pil', 'tensor'):
        raise ValueError(f"output must be 'pil', 'tensor' or 'auto', got {output!r}")
    return output
