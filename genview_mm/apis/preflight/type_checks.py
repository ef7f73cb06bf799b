"""The preflight check that every ``type`` a run builds is one the runner can build, asked of
MMEngine's registries the way ``build_from_cfg`` asks them: in the dict's scope (its
``_scope_``, else the config's ``default_scope``, ``mmengine`` without one), then the
registries above; a scoped name or an import path (``'torch.nn.ReLU'``) as ``Registry.get``
reads it. A misspelt type passed the preflight and stopped ``tools/train.py`` with a traceback
once the runner built it. Checked: only what the run builds (a test builds no optimizer).
"""
import difflib
import importlib
import re
import sys
from typing import Dict, Iterator, List, Optional, Sequence, Set, Tuple

from mmengine import registry as mm_registry
from mmengine.registry import Registry

from ...utils.config_keys import dotted_get
from .checklist import BROKEN, NOTE, Check
from .fixes import fix_lines

#: config keys whose ``type`` is a function or class of ``mmcv.ops`` looked up by name, not in a
#: registry (MMDetection's NMS settings and RoI extractors)
MMCV_OPS_KEYS = ('nms', 'roi_layer')
#: the config keys every run builds from (hooks, the model, the visualiser: Runner.__init__)
COMMON_KEYS = ('model', 'default_hooks', 'custom_hooks', 'visualizer', 'log_processor')
#: and those of training (with the validation's ``val_*`` when it validates); a test builds
#: ``test_*`` and no optimizer. ``model_wrapper_cfg`` is built by distributed runs only: a name
#: there no registry holds is a note.
TRAIN_KEYS = ('optim_wrapper', 'param_scheduler')
#: a dict built outside the one that holds it, in the config's default scope (the optimizer:
#: by the optimizer wrapper constructor, after the wrapper's build)
DETACHED = ('optim_wrapper.optimizer', )
#: transforms whose settings name another library's classes (albumentations')
OTHER_LIBRARIES = ('Albu', )
#: config keys whose value is a type name: ``runner_type`` (``RUNNERS.build``, before any
#: default scope is set) and the optimizer wrapper's constructor (``build_optim_wrapper``, in
#: the default scope)
NAME_KEYS = ('runner_type', 'optim_wrapper.constructor')
#: looked up by the runner in MMEngine's root registries whatever the default scope
#: (``FUNCTIONS.get``, ``RUNNERS.build``: a dotless name registered only in a package's
#: registry is not found there; its scoped name is)
ROOT_LOOKUP = re.compile(r'(train|val|test)_dataloader\.(collate_fn|worker_init_fn)$|runner_type$|'
                         r'strategy$')  # FlexibleRunner's, built before its default scope


def runner_keys(loops: Sequence[str]) -> List[str]:
    """The config keys a run of ``loops`` (``'train'``, ``'val'``, ``'test'``) builds from."""
    keys = list(COMMON_KEYS) + [f'{loop}_{part}' for loop in loops
                                for part in ('dataloader', 'cfg', 'evaluator')]
    return keys + list(TRAIN_KEYS if 'train' in loops else ()) + ['model_wrapper_cfg']


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
        if ROOT_LOOKUP.match(key):  # a strategy is built by STRATEGIES.build: _scope_ holds
            scope = (node.get('_scope_') if key == 'strategy' else None) or 'mmengine'
        else:
            scope = node.get('_scope_') or (None if key in DETACHED else scope)
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
    """Whether a registry of ``scope`` (or one above it) holds ``name``, ``name`` is a scoped
    name (``'mmdet.X'``) or an import path (``'torch.nn.ReLU'``) of a class or function, or an
    ``mmcv.ops`` name (MMDetection's NMS settings and RoI layers)."""
    for root in roots or root_registries():
        node = _scope_registry(root, scope)
        if '.' not in name:  # looked up, not imported ('this' would run an import)
            while node is not None:
                node.import_from_location()
                if name in node.module_dict:
                    return True
                node = node.parent
            continue
        try:  # as the runner: a scope's registry, its parents, then an import path
            if callable(node.get(name)):  # not a module ('timm')
                return True
        except Exception:  # noqa: BLE001  `get` raises what the import path's import raises
            pass
    return name in mmcv_ops_names()


def mmcv_ops_names() -> Set[str]:
    """The names of ``mmcv.ops`` (none where mmcv has no compiled ops, e.g. mmcv-lite)."""
    try:
        import mmcv.ops
    except ImportError:
        return set()
    return set(dir(mmcv.ops))


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
_REGISTRY_BUILT = (r'model(\.[^.]+)?', r'model(\.\w+)*\.loss(_\w+)?(\.\d+)?',  # heads' losses
                   r'(model\.)?data_preprocessor(\.batch_augments(\.augments)?(\.\d+)?)?',
                   r'(train|val|test)_cfg', r'optim_wrapper(\.optimizer)?',
                   r'visualizer(\.vis_backends\.\d+)?', r'log_processor',
                   r'(val|test)_evaluator(\.\d+|\.metrics\.\d+)?', r'param_scheduler(\.\d+)?',
                   _LOADER,
                   _LOADER + r'\.pipeline\.\d+',
                   r'(train|val|test)_dataloader\.(sampler|batch_sampler|collate_fn|'
                   r'worker_init_fn)',
                   r'(default_hooks\.[^.]+|custom_hooks\.\d+)', r'strategy',
                   *map(re.escape, NAME_KEYS))


def _value(cfg, dotted: str):
    """:func:`~genview_mm.utils.config_keys.dotted_get`, None where a part is missing."""
    try:
        return dotted_get(cfg, dotted)
    except KeyError:
        return None


def _import_scope(scope: str) -> None:
    """Import ``scope``'s registry module, as ``switch_scope_and_registry`` does (failures only
    leave its registries out, as there)."""
    try:
        importlib.import_module(f'{scope}.registry')
    except (ImportError, AttributeError, TypeError, ValueError):
        pass


def check_types(cfg, loops: Sequence[str] = ('train', 'val')) -> List[Check]:
    """A check per config key of a run of ``loops`` whose ``type`` no registry of its scope
    holds: BROKEN where the runner builds it from a registry (:func:`built_by_a_registry`), else
    a NOTE. The scope: a dict's ``_scope_``, else the config's ``default_scope`` (``mmengine``
    without one, as ``Runner.from_cfg``); a ``default_scope`` no registry has is one BROKEN
    check."""
    # absent: mmengine, as Runner.from_cfg; None written: no default scope, each module builds
    # its parts from its own package's registries (any scope's names may do)
    default = cfg.get('default_scope', 'mmengine')
    if default is not None and not isinstance(default, str):
        return [Check('config default_scope', BROKEN, f'{default!r} is not a scope name',
                      fix_lines('unknown_scope', close='', scopes='mmpretrain, mmdet'))]
    model = cfg.get('model') if hasattr(cfg.get('model'), 'get') else {}
    tops = [(top, None) for top in runner_keys(loops)]
    if 'data_preprocessor' not in model:  # the runner puts the top-level one into the model
        tops.append(('data_preprocessor', model.get('_scope_')))
    if str(cfg.get('runner_type')).endswith('FlexibleRunner'):  # only it builds a strategy
        tops.append(('strategy', None))
    walked = [hit for top, within in tops for hit in iter_types(cfg.get(top), top, within)]
    # where default_scope would help: no _scope_ on the way and none set (scope mmengine)
    unscoped = {key for key, _, scope in walked if not (isinstance(scope, str) and scope)
                and 'default_scope' not in cfg}
    found = [(key, name, scope if isinstance(scope, str) and scope else default)
             for key, name, scope in walked]
    found += [(key, name, 'mmengine' if ROOT_LOOKUP.match(key) else default or 'mmengine')
              for key in NAME_KEYS for name in [_value(cfg, key)]
              if isinstance(name, str) and (key == 'runner_type' or 'train' in loops)]
    for scope in {scope for _, _, scope in found if scope} | ({default} - {None}):
        _import_scope(scope)
    roots, broken, notes = root_registries(), [], []
    scopes = all_scopes(roots)
    if default is not None and default not in scopes:
        close = difflib.get_close_matches(default, scopes, n=1, cutoff=0.6)
        scoped = all('.' in name for _, name, _ in found)  # the runner only warns then
        return [Check('config default_scope', NOTE if scoped else BROKEN,
                      f'{default!r} is the scope of no registry, so no unscoped type name can '
                      'be found', fix_lines('unknown_scope', close=(
                          f' (close: {close[0]})' if close else ''), scopes=', '.join(
                          s for s in scopes if s not in ('mmengine', 'genview_mm'))))]
    for key, name, scope in found:
        if any(is_buildable(name, s, roots) for s in ([scope] if scope else scopes)):
            continue
        bare = name.rsplit('.', 1)[-1]
        ops = key.rsplit('.', 1)[-1] in MMCV_OPS_KEYS
        names = mmcv_ops_names() if ops else {n for s in ([scope] if scope else scopes)
                                              for n in registered_names(s, roots)}
        close = difflib.get_close_matches(bare, names, n=3, cutoff=0.6 if ops else 0.75)
        where = ('is no operation of mmcv.ops' if ops else
                 'resolves to nothing (a scoped name or an import path)' if '.' in name else
                 "is not in MMEngine's root registry, where the runner looks it up (one of a "
                 "package: 'scope.name')" if ROOT_LOOKUP.match(key) else
                 f'is in no registry of scope {scope!r}' if scope else
                 'is in no registry (the config sets default_scope=None)')
        if scope and '.' not in name and not ops:  # registered in another package's scope
            other = [s for s in scopes if s != scope and is_buildable(name, s, roots)]
            where += (f" (it is in scope {other[0]!r}: write '{other[0]}.{name}'" + (
                f' or set default_scope = {other[0]!r}' if key in unscoped else '') +
                ')') if other else ''
        certain = built_by_a_registry(key)
        label = key if key in NAME_KEYS else f'{key}.type'
        (broken if certain else notes).append(Check(
            f'config type [{label}]', BROKEN if certain else NOTE,
            f'{name!r} {where}: ' + (
                'the runner cannot build it (a typo, or a module of yours that is not imported)'
                if certain else 'if the module above builds it from a registry, the runner '
                'stops there (a typo?); some read a name of their own here'),
            fix_lines('unknown_op' if ops else 'unknown_type', key=label, close=(
                ' (close: ' + ', '.join(sorted(close)) + ')') if close else '')))
    return broken + notes
