"""The ``genview_mm`` registry scope.

genview_mm registers its components into MMPretrain's registries (it never shadows an upstream
name). This module only gives the scope name ``genview_mm`` a place in MMEngine's registry tree:
when a downstream config inherits ``_base_ = 'genview_mm::<config>.py'``, MMEngine tags the
typed dicts that come from our configs with ``_scope_='genview_mm'``, imports
``genview_mm.registry`` and looks for registries of that scope. Each registry below is an empty
child of MMPretrain's, so every lookup falls through to MMPretrain (and on to MMEngine).
"""
import mmpretrain.registry as mmpretrain_registry
from mmengine.registry import Registry

SCOPE = 'genview_mm'
_NAMES = ('RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS', 'OPTIMIZERS',
          'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'DATASETS',
          'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS',
          'BATCH_AUGMENTS', 'TASK_UTILS', 'METRICS', 'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS')


def _child(name: str) -> Registry:
    parent = getattr(mmpretrain_registry, name)
    existing = parent._children.get(SCOPE)
    return existing if existing is not None else Registry(parent.name, parent=parent, scope=SCOPE)


globals().update({name: _child(name) for name in _NAMES})
__all__ = list(_NAMES)
