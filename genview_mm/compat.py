"""The one place where genview_mm adapts upstream OpenMMLab code to today's torch/transformers.

Applied once, at ``import genview_mm`` (before anything imports ``mmpretrain.models``):

1. **mmpretrain 1.2.0 under transformers >= 4.56.** ``mmpretrain.utils.dependency.WITH_MULTIMODAL``
   turns true when transformers and pycocotools are installed, and the BLIP/BLIP2 modules then
   import helpers that transformers removed, so ``import mmpretrain`` itself fails. We load
   ``mmpretrain.utils.dependency`` on its own (without running ``mmpretrain/__init__``) and set
   the flag to False; mmpretrain then registers placeholders for its multimodal models and
   everything else works. The multimodal models (BLIP, Flamingo, ...) are unusable as a result.
2. **MMEngine checkpoints under torch >= 2.6.** ``torch.load`` defaults to ``weights_only=True``
   and refuses the few non-tensor types MMEngine writes into its checkpoints (``HistoryBuffer``
   in the message hub, numpy arrays and scalars). We allow-list exactly those types with
   ``torch.serialization.add_safe_globals``; ``weights_only`` stays on, so a checkpoint carrying
   any other pickled object is still refused. ``HistoryBuffer`` pickles its statistic methods
   through the builtin ``getattr``: instead of allowing ``getattr`` (which would let a crafted
   checkpoint walk from any allowed class to module globals) we register a replacement that only
   resolves ``HistoryBuffer.<min|max|current|mean>``.
"""
import importlib.util
import os.path as osp
import sys
import warnings
from typing import Any, List

import numpy as np
import torch

_HISTORY_BUFFER_STATS = ('min', 'max', 'current', 'mean')
_applied = False


def _version_tuple(version: str) -> tuple:
    parts = []
    for p in version.split('.')[:3]:
        digits = ''.join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _transformers_breaks_mmpretrain() -> bool:
    try:
        from importlib.metadata import PackageNotFoundError, version
        return _version_tuple(version('transformers')) >= (4, 56)
    except PackageNotFoundError:
        return False


def disable_mmpretrain_multimodal() -> bool:
    """Set ``mmpretrain.utils.dependency.WITH_MULTIMODAL = False`` before mmpretrain is imported.

    Returns:
        bool: True if the flag is (now) False, False if mmpretrain is not installed.
    """
    name = 'mmpretrain.utils.dependency'
    if name in sys.modules:
        if 'mmpretrain.models' in sys.modules and sys.modules[name].WITH_MULTIMODAL:
            warnings.warn('mmpretrain.models was imported before genview_mm; import genview_mm '
                          'first (or add it to custom_imports) so that mmpretrain imports under '
                          'transformers>=4.56.')
        sys.modules[name].WITH_MULTIMODAL = False
        return True
    spec = importlib.util.find_spec('mmpretrain')
    if spec is None or not spec.submodule_search_locations:
        return False
    path = osp.join(list(spec.submodule_search_locations)[0], 'utils', 'dependency.py')
    dep_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(dep_spec)
    sys.modules[name] = module
    try:
        dep_spec.loader.exec_module(module)
    except Exception:
        del sys.modules[name]
        raise
    module.WITH_MULTIMODAL = False
    return True


def _safe_history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling: only HistoryBuffer statistics."""
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_STATS:
        return getattr(HistoryBuffer, name)
    raise torch.serialization.pickle.UnpicklingError(
        f'genview_mm refuses getattr({obj!r}, {name!r}) in a checkpoint: only '
        f'HistoryBuffer.{{{",".join(_HISTORY_BUFFER_STATS)}}} is allowed with weights_only=True.')


def checkpoint_safe_globals() -> List[Any]:
    """The globals MMEngine checkpoints need under ``torch.load(weights_only=True)``."""
    from mmengine.logging import HistoryBuffer
    safe: List[Any] = [HistoryBuffer, (_safe_history_buffer_getattr, 'builtins.getattr'),
                       np.ndarray, np.dtype]
    core = getattr(np, '_core', None) or np.core
    safe += [core.multiarray._reconstruct, core.multiarray.scalar]
    # numpy >= 1.25 pickles dtypes as instances of numpy.dtypes.<Name>DType classes.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return safe


def allow_mmengine_checkpoints() -> None:
    """Allow-list MMEngine's checkpoint types for ``weights_only`` loading (torch >= 2.4)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:
        add(checkpoint_safe_globals())


def apply() -> None:
    """Apply every fix once; safe to call repeatedly."""
    global _applied
    if _applied:
        return
    if _transformers_breaks_mmpretrain():
        disable_mmpretrain_multimodal()
    allow_mmengine_checkpoints()
    _applied = True
