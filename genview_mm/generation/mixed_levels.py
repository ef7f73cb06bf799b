"""One Stable unCLIP call for images at different noise levels."""
from typing import Callable, List


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
