"""How the samples of one ``generate`` call are cut into pipeline calls: a size limit, a fixed
batch for compiled models (the tail padded, the padded rows dropped), and halving the limit on
CUDA out-of-memory.

Every sample carries its own seed (its own ``torch.Generator``), so neither the cut nor the
padding changes a sample's image (tested: padded rows leave the real rows' pixels as they are).
"""
import logging
from typing import Callable, List, Optional

import torch

logger = logging.getLogger(__name__)
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
            for start in range(0, n, self.limit):
                stop = start + self.limit
                out.extend(self.run(call, embeds[start:stop], levels[start:stop],
                                    seeds[start:stop]))
            return out
        pad = self.limit - n if self.fixed else 0
        if pad:  # repeat the last row under a seed of its own; its output is dropped
            embeds = torch.cat([embeds, embeds[-1:].expand(pad, *embeds.shape[1:])])
            levels, seeds = list(levels) + [levels[-1]] * pad, list(seeds) + [PAD_SEED] * pad
        try:
            result = call(embeds, levels, seeds)
        except torch.OutOfMemoryError:
            size = len(seeds)
            if size == 1:
                raise
            self._halve(size)
            return self.run(call, embeds[:n], levels[:n], seeds[:n])
        return list(result[:n])

    def _halve(self, size: int) -> None:
        """Lower the limit to half the call that ran out of memory, and say so once."""
        self.limit = max(1, size // 2)
        logger.warning('CUDA out of memory in a pipeline call of %d samples: continuing with '
                       'calls of %d (set max_batch_size=%d to start there)', size, self.limit,
                       self.limit)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
