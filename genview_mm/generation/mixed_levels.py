"""How the samples of one ``generate`` call become Stable unCLIP calls: one call for images at
different noise levels, and the cut into calls (a size limit; a fixed batch for compiled models,
the tail padded and the padded rows dropped; the limit halved on CUDA out-of-memory). Every
sample has its own seed (its own ``torch.Generator``), so neither the cut nor the padding
changes a sample's image (tested: padded rows leave the real rows' pixels as they are).

Why this exists: ``StableUnCLIPImg2ImgPipeline`` takes one ``noise_level`` per call, while
GenView picks a level per image (arXiv:2403.12003, Sec. 3.2); one call per level leaves batches
half empty. The pipeline's own ``noise_image_embeddings`` is called once per level on that
level's rows, so every sample gets exactly what a call of its own would give (tested against
per-level and per-image calls).
"""
import logging
from typing import Any, Callable, List, Optional, Tuple

import torch

logger = logging.getLogger(__name__)


def per_sample_noising(noise_fn: Callable, levels: List[int]) -> Callable:
    """Wrap the pipeline's ``noise_image_embeddings`` so row ``k`` is noised at ``levels[k]``.

    It calls the pipeline's own method once per distinct level on that level's rows (with those
    rows' generators), so each sample gets exactly the noise and level embedding it would get in
    a call of its own.
    """
    def noise_image_embeddings(image_embeds, noise_level, noise=None, generator=None):
        out = None
        for level in sorted(set(levels)):
            rows = [k for k, lv in enumerate(levels) if lv == level]
            gens = [generator[k] for k in rows] if isinstance(generator, list) else generator
            part = noise_fn(image_embeds=image_embeds[rows], noise_level=level,
                            noise=None if noise is None else noise[rows], generator=gens)
            if out is None:
                out = part.new_empty((image_embeds.shape[0], ) + tuple(part.shape[1:]))
            out[rows] = part
        return out
    return noise_image_embeddings


def call_mixed_levels(pipe: Any, embeds: torch.Tensor, levels: List[int], seeds: List[int],
                      prompt: str = '', output_type: str = 'pil',
                      prompt_embeds: Optional[Tuple[torch.Tensor, Optional[torch.Tensor]]] = None,
                      **call_kwargs) -> Any:
    """One pipeline call in which sample ``k`` uses ``levels[k]`` and a CPU ``torch.Generator``
    seeded with ``seeds[k]``.

    Args:
        pipe: the ``StableUnCLIPImg2ImgPipeline``.
        embeds (Tensor): (B, P) CLIP image embeddings; levels / seeds: one per sample.
        prompt (str): the text prompt (ignored with ``prompt_embeds``).
        output_type (str): ``'pil'`` (PIL images) or ``'latent'`` (the final latents, decoded
            by the caller). Defaults to 'pil'.
        prompt_embeds (tuple, optional): (prompt, negative prompt) text embeddings of one
            sample, (1, T, D) each (the negative one None without guidance), expanded to the
            batch: the text encoder does not run again. Defaults to None (encode ``prompt``).
        call_kwargs: go to the pipeline (``num_inference_steps``, ``guidance_scale``,
            ``height``, ``width``).

    Returns:
        list of PIL images, or a latent tensor (B, C, h, w).
    """
    n = len(seeds)
    gens = [torch.Generator('cpu').manual_seed(s) for s in seeds]
    if prompt_embeds is None:
        text = dict(prompt=[prompt] * n)
    else:
        pos, neg = prompt_embeds
        text = dict(prompt_embeds=pos.expand(n, -1, -1),
                    negative_prompt_embeds=None if neg is None else neg.expand(n, -1, -1))
    patched = len(set(levels)) > 1
    own = vars(pipe).get('noise_image_embeddings')  # one the caller set on this pipeline
    if patched:  # the pipeline takes one noise_level per call: noise each level's rows apart
        pipe.noise_image_embeddings = per_sample_noising(pipe.noise_image_embeddings, levels)
    try:
        return pipe(image_embeds=embeds, noise_level=int(levels[0]), generator=gens,
                    output_type=output_type, **text, **call_kwargs).images
    finally:
        if patched and own is not None:
            pipe.noise_image_embeddings = own
        elif patched:
            del pipe.noise_image_embeddings  # back to the class method


PAD_SEED = 0  # seed of padding rows (their images are dropped)


class CallBatches:
    """Splits samples into pipeline calls and adapts the call size to the device's memory.

    Args:
        max_batch_size (int, optional): most samples per call; None: no limit.
        fixed (bool): pad every call to ``max_batch_size`` (a compiled model then sees one
            shape). Needs ``max_batch_size``.
    """

    def __init__(self, max_batch_size: Optional[int] = None, fixed: bool = False) -> None:
        if max_batch_size is not None and max_batch_size < 1:
            raise ValueError(f'max_batch_size must be >= 1, got {max_batch_size}')
        if fixed and max_batch_size is None:
            raise ValueError('compile=True needs max_batch_size (every pipeline call is padded '
                             'to it, so the compiled model sees one batch shape): set it')
        self.limit = max_batch_size
        self.fixed = fixed

    def run(self, call: Callable, embeds: torch.Tensor, levels: List[int],
            seeds: List[int]) -> List:
        """``call(embeds, levels, seeds)`` over chunks of at most ``self.limit`` samples;
        returns the per-sample outputs (a list, or a tensor's rows) in order."""
        n = len(seeds)
        if self.limit is not None and n > self.limit:
            out: List = []
            while len(out) < n:  # the limit may halve on the way: each chunk reads it anew
                start, stop = len(out), len(out) + self.limit
                out.extend(self.run(call, embeds[start:stop], levels[start:stop],
                                    seeds[start:stop]))
            return out
        pad = self.limit - n if self.fixed else 0
        if pad:  # repeat the last row under a seed of its own; its output is dropped
            embeds = torch.cat([embeds, embeds[-1:].expand(pad, *embeds.shape[1:])])
            levels, seeds = list(levels) + [levels[-1]] * pad, list(seeds) + [PAD_SEED] * pad
        out_of_memory = False
        try:
            result = call(embeds, levels, seeds)
        except RuntimeError as exc:  # torch.OutOfMemoryError, or a library's plain one
            if len(seeds) == 1 or not _out_of_memory(exc):
                raise
            out_of_memory = True
        if out_of_memory:  # retried out here: the error's traceback held the failed call's
            self._halve(len(seeds))  # tensors, so the smaller call ran beside them
            return self.run(call, embeds[:n], levels[:n], seeds[:n])
        return list(result[:n])

    def _halve(self, size: int) -> None:
        """Lower the limit to half (rounded up) the call that ran out of memory, and say so."""
        self.limit = (size + 1) // 2
        logger.warning('CUDA out of memory in a pipeline call of %d samples: continuing with '
                       'calls of %d (start there: --max-pipeline-batch %d, max_batch_size=%d '
                       'in Python)', size, self.limit, self.limit, self.limit)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device out-of-memory error (``torch.OutOfMemoryError`` or a
    library's plain ``RuntimeError('... out of memory ...')``)."""
    return isinstance(exc, torch.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and 'out of memory' in str(exc))
