"""The scorer's fast path: what makes a frozen encoder score pairs at GPU speed, exact first.

In order of exactness (arXiv:2403.12003 Sec. 3.3 scores are computed as before):

1. :func:`cast_autocast_weights`: Conv/Linear weights stored in the autocast dtype. Autocast casts
   them to that dtype at every call anyway, so the outputs are bit-identical.
2. channels_last memory format (other kernels; same maths, within fp16 rounding).
3. :class:`FixedBatchRunner`: ``torch.compile`` of encoder + pair math at the step's fixed batch
   (smaller batches padded, larger ones eager) and CUDA-graph replay (GPU only).

Every switch accepts ``'auto'`` (on for CUDA, off elsewhere), True or False; what cannot run on
the device falls back to eager with one log line (:func:`resolve_switch`).
"""
import logging
from typing import Callable, Dict, Optional, Tuple, Union

import torch
from mmengine.logging import print_log
from torch import nn

Switch = Union[bool, str]
#: modules whose weight and bias autocast casts to its dtype at every call
AUTOCAST_CAST_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
Scores = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def log_once(seen: set, message: str, level: int = logging.INFO) -> None:
    """Log ``message`` through MMEngine's current logger the first time it is seen."""
    if message not in seen:
        seen.add(message)
        print_log(message, logger='current', level=level)


def check_switch(name: str, value: Switch) -> Switch:
    """``value`` if it is True, False or ``'auto'``; else a ValueError naming ``name``."""
    if value not in (True, False, 'auto'):
        raise ValueError(f"PairQualityScorer({name}=...) must be True, False or 'auto', "
                         f'got {value!r}')
    return value


def resolve_switch(name: str, value: Switch, device: torch.device, seen: set,
                   cuda_only: bool = False) -> bool:
    """Whether switch ``name`` is on for ``device``: ``'auto'`` means on for CUDA only; True
    for a CUDA-only feature on another device is turned off with a log line."""
    if value == 'auto':
        return device.type == 'cuda'
    if value and cuda_only and device.type != 'cuda':
        log_once(seen, f'PairQualityScorer: {name}=True needs a CUDA device; scoring on '
                 f'{device.type} without it (same numbers).')
        return False
    return bool(value)


def resolve_graph(value: Switch, device: torch.device, pairs: int, seen: set,
                  max_images: int) -> bool:
    """Whether to replay CUDA graphs: ``'auto'`` means on CUDA for calls of at most
    ``max_images`` images (2 per pair); True elsewhere than CUDA is turned off with a log line."""
    if value == 'auto':
        return device.type == 'cuda' and 2 * pairs <= max_images
    return resolve_switch('cuda_graph', value, device, seen, cuda_only=True)


def cast_autocast_weights(module: nn.Module, dtype: torch.dtype,
                          originals: Optional[Dict[Tuple[str, str], torch.Tensor]] = None) -> int:
    """Store the weight and bias of every Conv/Linear of ``module`` in ``dtype``, in place.

    Under ``torch.autocast(dtype=dtype)`` these layers cast their weights to ``dtype`` at every
    call, so this only removes the casts: outputs are bit-identical. Other parameters (norms,
    layer scales, embeddings) run in float32 under autocast and are left alone.

    Args:
        module (nn.Module): the frozen encoder.
        dtype (torch.dtype): the autocast dtype.
        originals (dict, optional): gets a CPU copy of each tensor before its first cast, by
            (layer name, 'weight' or 'bias'), for :func:`restore_weights`.

    Returns:
        int: the number of tensors cast.
    """
    count = 0
    for layer_name, layer in module.named_modules():
        if not isinstance(layer, AUTOCAST_CAST_MODULES):
            continue
        for name in ('weight', 'bias'):
            param = getattr(layer, name, None)
            if param is not None and param.is_floating_point() and param.dtype != dtype:
                if originals is not None and (layer_name, name) not in originals:
                    originals[layer_name, name] = param.data.to('cpu', copy=True)
                param.data = param.data.to(dtype)
                count += 1
    return count


def restore_weights(module: nn.Module, originals: Dict[Tuple[str, str], torch.Tensor]) -> int:
    """Put back the tensors :func:`cast_autocast_weights` kept in ``originals`` (on the device
    of the module's tensor): the encoder as loaded, for a device that runs without autocast
    (its fp16 weights failed there on a dtype mismatch). Returns the number restored."""
    layers = dict(module.named_modules())
    for (layer_name, name), tensor in originals.items():
        param = getattr(layers[layer_name], name)
        param.data = tensor.to(param.device, copy=True)
    return len(originals)


def pad_rows(x: torch.Tensor, rows: int) -> torch.Tensor:
    """``x`` with its last row repeated up to ``rows`` rows."""
    extra = rows - x.size(0)
    return x if extra <= 0 else torch.cat([x, x[-1:].expand(extra, *x.shape[1:])])


class GraphedCall:
    """A CUDA graph of ``fn`` at the shape of its first input, replayed for later inputs.

    Args:
        fn (Callable): ``(x) -> tuple of tensors``, free of host syncs.
        example (torch.Tensor): a CUDA input of the shape to capture.
    """

    def __init__(self, fn: Callable[[torch.Tensor], Scores], example: torch.Tensor) -> None:
        self.static_in = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up outside the capture (cuDNN/cuBLAS workspaces)
            for _ in range(2):
                fn(self.static_in)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = fn(self.static_in)

    def __call__(self, x: torch.Tensor) -> Scores:
        self.static_in.copy_(x)
        self.graph.replay()
        return tuple(t.clone() for t in self.static_out)


class FixedBatchRunner:
    """Runs ``fn(x) -> scores`` of a batch of pairs, compiled and/or graphed at one batch size.

    The first call fixes the number of pairs ``N``. Later calls with fewer pairs are padded to
    ``N`` (each pair is scored on its own, so the padding changes no row) and the padding is
    cut from the scores; calls with more pairs run ``fn`` eagerly (logged once).

    Args:
        fn (Callable): ``(x) -> (s_f, s_b, q)``; ``x`` holds the first views of all pairs, then
            the second views, (2N, 3, S, S).
        compile (bool): ``torch.compile`` ``fn`` (``dynamic=False``). A failure to compile is
            logged and ``fn`` runs eagerly from then on.
        cuda_graph (bool): replay a CUDA graph (with compile: inductor's ``reduce-overhead``
            mode; without: :class:`GraphedCall`). The caller turns it off off-GPU.
    """

    def __init__(self, fn: Callable[[torch.Tensor], Scores], compile: bool = False,
                 cuda_graph: bool = False) -> None:
        self.fn, self.compile, self.cuda_graph = fn, compile, cuda_graph
        self.pairs: Optional[int] = None
        self.fast: Optional[Callable[[torch.Tensor], Scores]] = None
        self.graphs: Dict[tuple, GraphedCall] = {}
        self.seen: set = set()

    @property
    def active(self) -> bool:
        """Whether anything beyond an eager call is on."""
        return self.compile or self.cuda_graph

    def _build(self) -> Callable[[torch.Tensor], Scores]:
        if not self.compile:
            return self._graphed if self.cuda_graph else self.fn
        mode = 'reduce-overhead' if self.cuda_graph else None
        return torch.compile(self.fn, dynamic=False, mode=mode)

    def _graphed(self, x: torch.Tensor) -> Scores:
        key = (tuple(x.shape), x.dtype, x.device)
        if key not in self.graphs:
            self.graphs[key] = GraphedCall(self.fn, x)
        return self.graphs[key](x)

    def __call__(self, x: torch.Tensor) -> Scores:
        """Scores of the ``x.size(0) // 2`` pairs in ``x`` (first views, then second views)."""
        if not self.active:
            return self.fn(x)
        n = x.size(0) // 2
        if self.pairs is None:
            self.pairs, self.fast = n, self._build()
        if n > self.pairs:
            log_once(self.seen, f'PairQualityScorer: {n} pairs, more than the {self.pairs} it '
                     'was compiled for; scoring them eagerly.')
            return self.fn(x)
        if n < self.pairs:
            x = torch.cat([pad_rows(x[:n], self.pairs), pad_rows(x[n:], self.pairs)])
        try:
            scores = self.fast(x)
        except Exception as exc:  # noqa: BLE001  (inductor/graph capture errors vary)
            if self.fast is self.fn:
                raise
            log_once(self.seen, f'PairQualityScorer: compile/CUDA graph failed '
                     f'({type(exc).__name__}: {exc}); scoring eagerly from now on.',
                     logging.WARNING)
            self.compile = self.cuda_graph = False
            self.fast = self.fn
            scores = self.fn(x)
        return tuple(t[:n].clone() for t in scores)  # graph outputs are overwritten later
