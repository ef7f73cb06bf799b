"""Scoring on a CUDA side stream while the SSL forward runs on the main stream (opt-in,
``PairQualityScorer(overlap=True)``).

The scorer's kernels are queued on a side stream; the main stream waits for them only where the
weights are first needed (the head's loss). Elsewhere than CUDA the scores are computed in line:
the same numbers, said once in the log.
"""
import contextlib
from typing import Callable, Dict, Iterator, Optional

import torch
from torch import nn

from .fast_path import log_once

_SEEN: set = set()
_STREAMS: Dict[torch.device, 'torch.cuda.Stream'] = {}


class PendingScores:
    """Scores being computed, on a side stream on CUDA (in line elsewhere).

    Args:
        scorer (nn.Module): the pair scorer, ``scorer(view1, view2, data_preprocessor)``.
        view1 (torch.Tensor): (N, 3, H, W) first views.
        view2 (torch.Tensor): (N, 3, H, W) second views.
        data_preprocessor (nn.Module, optional): the SSL model's preprocessor.
    """

    def __init__(self, scorer: nn.Module, view1: torch.Tensor, view2: torch.Tensor,
                 data_preprocessor: Optional[nn.Module] = None) -> None:
        device = self.device = view1.device
        self.event = None
        if device.type != 'cuda':
            log_once(getattr(scorer, '_seen', _SEEN), 'PairQualityScorer: overlap=True needs a '
                     f'CUDA device; scoring on {device.type} in line (same numbers).')
            self.scores = scorer(view1, view2, data_preprocessor)
            return
        side = _STREAMS.setdefault(device, torch.cuda.Stream(device))
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            self.scores = scorer(view1, view2, data_preprocessor)
        for view in (view1, view2):  # the main stream may free them before the side is done
            view.record_stream(side)
        self.event = side.record_event()

    def wait(self):
        """The scores, once the current stream has waited for them."""
        if self.event is not None:
            main = torch.cuda.current_stream(self.device)
            main.wait_event(self.event)
            for t in self.scores:  # allocated on the side stream, used on the main one
                t.record_stream(main)
            self.event = None
        return self.scores


@contextlib.contextmanager
def deferred_head_loss(head: nn.Module, before_first: Callable[[], torch.Tensor]
                       ) -> Iterator[None]:
    """Inside the block, ``head.loss`` first calls ``before_first()`` (once) for the row
    weights and runs inside ``head.sample_weights(rows)``.

    Args:
        head (nn.Module): a ``QualityDrivenContrastiveHead``.
        before_first (Callable): returns the (R,) row weights; called at the first loss call.
    """
    rows = []

    def loss(*args, **kwargs):
        if not rows:
            rows.append(before_first())
        with head.sample_weights(rows[0]):
            return type(head).loss(head, *args, **kwargs)

    head.__dict__['loss'] = loss
    try:
        yield
    finally:
        head.__dict__.pop('loss', None)
