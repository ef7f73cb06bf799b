"""The preflight check that every ``type`` a config names is one the runner can build, asked of
MMEngine's registries the way ``build_from_cfg`` asks them: in the dict's scope (its
``_scope_``, else the config's ``default_scope``), then the registries above, then as an import
path (``'torch.nn.ReLU'``). A misspelt type passed the preflight and stopped ``tools/train.py``
with a traceback once the runner built it.
"""
import difflib
import importlib
import re
import sys
from typing import Dict, Iterator, List, Optional, Set, Tuple

from mmengine import registry as mm_registry
from mmengine.registry import Registry

from .checklist import BROKEN, NOTE, Check
from .fixes import fix_lines

#: config keys whose ``type`` is a function or class of ``mmcv.ops`` looked up by name, not in a
#: registry (MMDetection's NMS settings and RoI extractors)
MMCV_OPS_KEYS = ('nms', 'roi_layer')


#: the config keys the runner builds from (a top-level variable such as ``train_pipeline`` is
#: built where one of these holds it; an MMCV 1.x ``runner`` is read by no one)
RUNNER_KEYS = ('model', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
               'val_cfg', 'test_cfg', 'optim_wrapper', 'param_scheduler', 'default_hooks',
               'custom_hooks', 'val_evaluator', 'test_evaluator', 'visualizer', 'log_processor',
               'model_wrapper_cfg')
#: transforms whose settings name another library's classes (albumentations')
OTHER_LIBRARIES = ('Albu', )


def root_registries() -> List[Registry]:
    """The root registries: MMEngine's (models, datasets, transforms, hooks, ...) and those a
    package's ``registry`` module makes without a parent (MMPretrain's ``BATCH_AUGMENTS``)."""
    roots: Dict[int, Registry] = {}
    modules = [mm_registry] + [m for name, m in list(sys.modules.items())
                               if name.endswith('.registry') and m is not None]
    for module in modules:
        for reg in list(vars(module).values()):
            if isinstance(reg, Registry):
                while reg.parent is not None:
                    reg = reg.parent
                roots.setdefault(id(reg), reg)
    return list(roots.values())


def iter_types(node, key: str = '', scope: Optional[str] = None
               ) -> Iterator[Tuple[str, str, Optional[str]]]:
    """``(config key, type name, scope)`` of every dict in ``node`` whose ``type`` is a name
    (not inside :data:`OTHER_LIBRARIES`' transforms)."""
    if isinstance(node, dict):
        scope = node.get('_scope_') or scope
        if isinstance(node.get('type'), str):
            yield key, node['type'], scope
            if node['type'].rsplit('.', 1)[-1] in OTHER_LIBRARIES:
                return
        for k, v in node.items():
            yield from iter_types(v, f'{key}.{k}' if key else str(k), scope)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from iter_types(v, f'{key}.{i}', scope)


def is_buildable(name: str, scope: Optional[str],
                 roots: Optional[List[Registry]] = None) -> bool:
    """Whether some registry of ``scope`` (or one above it) holds ``name``, or it imports."""
    for root in roots or root_registries():
        try:  # as the runner: the registry of the scope, its parents, then an import path
            if _scope_registry(root, scope).get(name) is not None:
                return True
        except (RuntimeError, ImportError, KeyError, AttributeError, TypeError):
            pass  # `get` raises what an import path it tries raises: not there either
    import mmcv.ops  # MMDetection's NMS settings and RoI layers (not only under those keys)
    return hasattr(mmcv.ops, name)


def _find(registry: Registry, scope: Optional[str]) -> Optional[Registry]:
    if registry.scope == scope:
        return registry
    return next((found for child in registry.children.values()
                 for found in [_find(child, scope)] if found is not None), None)


def _scope_registry(root: Registry, scope: Optional[str]) -> Registry:
    """The registry of ``scope`` under ``root`` (``root`` where it has none), as
    ``switch_scope_and_registry`` picks it. Not ``or``: an empty registry is falsy, and one not
    imported yet is empty."""
    found = _find(root, scope)
    return root if found is None else found


def all_scopes(roots: List[Registry]) -> List[str]:
    """The scopes of the registries under ``roots`` (mmengine's first)."""
    scopes, todo = [], list(roots)
    while todo:
        reg = todo.pop(0)
        scopes += [reg.scope] if reg.scope not in scopes else []
        todo += reg.children.values()
    return scopes


def registered_names(scope: Optional[str], roots: List[Registry]) -> Set[str]:
    """The names a lookup in ``scope`` can reach (its registries and those above them)."""
    names: Set[str] = set()
    for root in roots:
        node = _scope_registry(root, scope)
        while node is not None:
            names.update(node.module_dict)
            node = node.parent
    return names


def built_by_a_registry(key: str) -> bool:
    """Whether the runner builds the dict at ``key`` from a registry, whatever the modules in it
    do: the model and its direct parts, the loops, the optimizer, datasets, their transforms and
    samplers, hooks, schedulers, metrics, the visualiser. Deeper dicts may be read by the module
    that holds them (MMDetection's FPG neck and cascade RPN take ``type`` names of their own)."""
    return any(re.fullmatch(p, key) for p in _REGISTRY_BUILT)


_LOADER = r'(train|val|test)_dataloader(\.dataset|\.datasets\.\d+)*'
_REGISTRY_BUILT = (r'model(\.[^.]+)?', r'(train|val|test)_cfg', r'optim_wrapper(\.optimizer)?',
                   r'visualizer(\.vis_backends\.\d+)?', r'log_processor', r'model_wrapper_cfg',
                   r'(val|test)_evaluator(\.\d+)?', r'param_scheduler(\.\d+)?', _LOADER,
                   _LOADER + r'\.pipeline\.\d+',
                   r'(train|val|test)_dataloader\.(sampler|batch_sampler|collate_fn)',
                   r'(default_hooks\.[^.]+|custom_hooks\.\d+)')


def check_types(cfg) -> List[Check]:
    """A check per config key whose ``type`` no registry of its scope holds: BROKEN where the
    runner builds it from a registry (:func:`built_by_a_registry`), else a NOTE."""
    default = cfg.get('default_scope')
    found = [(key, name, scope or default) for top in RUNNER_KEYS
             for key, name, scope in iter_types(cfg.get(top), top)]
    for scope in {scope for _, _, scope in found if scope}:
        try:  # where the scope's registries are made (build_from_cfg imports it too)
            importlib.import_module(f'{scope}.registry')
        except ImportError:
            pass
    roots, broken, notes = root_registries(), [], []
    for key, name, scope in found:
        # no default_scope: what the tool's own default scope will be is not known here, so any
        # scope's registries may hold it
        scopes = [scope] if scope else all_scopes(roots)
        if any(is_buildable(name, s, roots) for s in scopes):
            continue
        bare = name.rsplit('.', 1)[-1]
        ops = key.rsplit('.', 1)[-1] in MMCV_OPS_KEYS
        if ops:
            import mmcv.ops
        names = set(dir(mmcv.ops)) if ops else {
            n for s in scopes for n in registered_names(s, roots)}
        close = difflib.get_close_matches(bare, names, n=3, cutoff=0.75)
        where = ('is no operation of mmcv.ops' if ops else
                 f'is in no registry of scope {scope!r}' if scope else
                 'is in no registry of any scope (the config sets no default_scope)')
        certain = built_by_a_registry(key)
        (broken if certain else notes).append(Check(
            f'config type [{key}.type]', BROKEN if certain else NOTE,
            f'{name!r} {where}: ' + (
                'the runner cannot build it (a typo, or a module of yours that is not imported)'
                if certain else 'if the module above builds it from a registry, the runner '
                'stops there (a typo?); some read a name of their own here'),
            fix_lines('unknown_type', key=f'{key}.type', close=(
                ' (close: ' + ', '.join(sorted(close)) + ')') if close else '')))
    return broken + notes
