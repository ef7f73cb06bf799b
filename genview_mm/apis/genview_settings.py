"""The ``genview`` settings of a config, applied to its GenView pair transforms.

MMEngine merges a child config's dicts into its base's, but replaces lists whole, and a base's
variables are copied into its lists when the base is read. A setting inside the training
pipeline (a list) could therefore not be changed by one line in a child config. GenView's data
settings live in a top-level dict instead, which children merge like any other dict::

    _base_ = 'genview_mm::genview_mocov2_r50_in1k.py'
    genview = dict(manifest='/data/views/manifest.jsonl', prob=0.5)

and are written into every ``GenViewPairDataset`` of the config that does not set them itself
when the config is loaded (``tools/train.py``, ``tools/test.py``, ``tools/check_config.py`` do
this; a script of your own calls :func:`apply_genview_settings` after ``Config.fromfile``).
A value given to a ``GenViewPairDataset`` entry directly, or with ``--cfg-options
train_dataloader.dataset.pipeline.1.manifest=...``, wins.
"""
import copy
import difflib
import math
from typing import Any, Iterator

from ..utils.config_keys import type_name

#: the ``genview`` keys that are ``GenViewPairDataset`` arguments
PAIR_SETTINGS = ('manifest', 'prob', 'source_root', 'min_clip_sim')


class GenViewSettingError(ValueError):
    """A misspelt or unknown ``genview`` key, a ``genview`` that is not a dict, a setting of
    the wrong type or range, or a ``--cfg-options`` path split at its commas (the tools print
    it in one line and exit with status 2)."""


def iter_pair_transforms(node: Any) -> Iterator[dict]:
    """Every ``dict(type='GenViewPairDataset', ...)`` in a config tree."""
    if isinstance(node, dict):
        if type_name(node) == 'GenViewPairDataset':
            yield node
        for value in node.values():
            yield from iter_pair_transforms(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from iter_pair_transforms(value)


def apply_genview_settings(cfg) -> int:
    """Write ``cfg.genview``'s pair settings into the config's ``GenViewPairDataset`` entries.

    Args:
        cfg (mmengine.Config | dict): a loaded config (changed in place).

    Returns:
        int: the number of values written.

    Raises:
        GenViewSettingError: a top-level dict whose name looks like a misspelt ``genview``, or
            ``genview`` settings in a config without a ``GenViewPairDataset`` (either would be
            ignored), an unknown ``genview`` key, a ``prob`` outside [0, 1], a
            ``min_clip_sim`` that is not a number, or a train pipeline drawing generated views
            without ``GenViewPairHook`` in ``custom_hooks`` (:func:`check_pair_hook`).
    """
    misspelt = sorted(k for k, v in cfg.items() if k != 'genview' and isinstance(v, dict)
                      and difflib.get_close_matches(k.lower(), ['genview'], cutoff=0.8))
    if misspelt:  # MMEngine keeps any top-level key: these settings would be ignored silently
        raise GenViewSettingError(f'unknown top-level setting(s) {misspelt}: did you mean '
                                  "'genview'? (its settings would be ignored)")
    settings = {} if cfg.get('genview') is None else cfg.get('genview')
    if not isinstance(settings, dict):  # '--cfg-options genview=PATH' listed PATH's letters
        raise GenViewSettingError(
            f'genview must be a dict of {list(PAIR_SETTINGS)} or None, got {settings!r}: set '
            'one of them, e.g. --cfg-options genview.manifest=PATH')
    unknown = sorted(set(settings) - set(PAIR_SETTINGS))
    if unknown:
        raise GenViewSettingError(
            f'unknown genview setting(s) {unknown}; known: {list(PAIR_SETTINGS)} (the pair '
            'scorer is model.scorer, the weight rule model.gamma and model.normalize)')
    for key in PAIR_SETTINGS:
        check_setting(key, settings.get(key), f'genview.{key}')
    tree = cfg._cfg_dict if hasattr(cfg, '_cfg_dict') else cfg
    nodes = list(iter_pair_transforms(tree))
    loaders = [v for k, v in tree.items() if k.endswith('dataloader')]
    given = sorted(k for k in PAIR_SETTINGS if settings.get(k) is not None)
    if given and not any(True for _ in iter_pair_transforms(loaders)):  # a MultiView pipeline
        # in the loaders (a base's train_pipeline variable may still hold one, unused)
        raise GenViewSettingError(
            f'genview sets {given}, but no GenViewPairDataset is in the config, so they would '
            'be ignored and the run would be plain SSL: keep a GenViewPairDataset in the train '
            "pipeline (the GenView configs' train_pipeline), or set genview = None")
    written = 0
    for node in nodes:
        for key in PAIR_SETTINGS:
            if node.get(key) is None and settings.get(key) is not None:
                node[key] = settings[key]
                written += 1
        for key in PAIR_SETTINGS:
            check_setting(key, node.get(key), f'GenViewPairDataset {key}')
    check_pair_hook(tree)
    return written


def check_pair_hook(tree) -> None:
    """Refuse a train pipeline whose ``GenViewPairDataset`` draws generated views (prob > 0)
    when neither ``custom_hooks`` nor ``default_hooks`` has a ``GenViewPairHook``: the views'
    checks (coverage at the start, unreadable views and non-finite scores during training)
    would not run. MMEngine replaces a
    base's list with a child's, so ``custom_hooks = [dict(type='EMAHook')]`` in a child config
    dropped the hook, and a run whose views were gone trained as plain SSL to the end."""
    drawing = [n for n in iter_pair_transforms(tree.get('train_dataloader'))
               if n.get('prob') is None or n.get('prob') > 0]
    names = [_hook_name(h) for h in tree.get('custom_hooks') or []]
    if drawing and not any(_hook_name(h) == 'GenViewPairHook' for h in _hooks(tree)):
        raise GenViewSettingError(
            f'custom_hooks {names} has no GenViewPairHook, but the train pipeline draws '
            'generated views (GenViewPairDataset): the checks of the views would not run. A '
            "child config's custom_hooks replaces its base's list: start it with "
            "*_base_.custom_hooks, e.g. custom_hooks = [*_base_.custom_hooks, "
            "dict(type='EMAHook')], or set genview.prob=0 for plain MultiView pairs")


def _hooks(tree) -> list:
    """The hooks of ``custom_hooks`` and ``default_hooks`` (MMEngine registers both), as
    configured: dicts or hook objects."""
    default = tree.get('default_hooks') or {}
    return list(tree.get('custom_hooks') or []) + [
        h for h in (default.values() if hasattr(default, 'values') else ()) if h is not None]


def _hook_name(hook) -> str:
    return type_name(hook) if isinstance(hook, dict) else type(hook).__name__


def pair_hook_settings(tree) -> dict:
    """The settings of the config's GenViewPairHook (in ``custom_hooks`` or
    ``default_hooks``; a hook object's attributes), which its start check applies to the
    manifest; ``{}`` without one."""
    hook = next((h for h in _hooks(tree) if _hook_name(h) == 'GenViewPairHook'), None)
    if hook is None or isinstance(hook, dict):
        return dict(hook or {})
    return {k: getattr(hook, k) for k in ('min_coverage', 'check_sources') if hasattr(hook, k)}


def check_setting(key: str, value: Any, where: str) -> None:
    """Refuse a ``prob`` that is not a number in [0, 1], a ``min_clip_sim`` that is not a
    finite number and a ``manifest`` or ``source_root`` that is not a path (None: unset), in one
    line naming ``where`` it was set."""
    if key in ('manifest', 'source_root') and value is not None and not isinstance(value, str):
        what = 'a manifest file or generation folder' if key == 'manifest' else 'a folder'
        split = isinstance(value, (list, tuple)) and len(value) > 1 and \
            all(isinstance(v, str) for v in value)  # --cfg-options cuts a path at its commas
        quote = (f"; a path with a comma given by --cfg-options: quote it to keep it whole, "
                 f"--cfg-options '{where}=\"{','.join(value)}\"'"
                 if split and where.startswith('genview.') else '')
        raise GenViewSettingError(  # a list of manifests failed at the first sample
            f'{where} must be one path ({what}) or None, got {value!r}{quote}')
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if key == 'prob' and value is not None and not (number and 0 <= value <= 1):
        raise GenViewSettingError(f'{where} must be a number in [0, 1] (the probability of '
                                  f'using a generated view), got {value!r}')
    if key == 'min_clip_sim' and value is not None and not (number and math.isfinite(value)):
        raise GenViewSettingError(f'{where} must be a number (the lowest CLIP similarity of a '
                                  f'view to its source) or None, got {value!r}')  # NaN: no filter


def without_applied_settings(cfg):
    """A copy of ``cfg`` without the values its ``genview`` settings give in its
    ``GenViewPairDataset`` entries: the config as a user writes it. A runner records this copy
    (the config in its work dir and checkpoints): a value in an entry wins over ``genview``, so
    values written there by :func:`apply_genview_settings` would make a run started from the
    record ignore new ``genview`` overrides (``genview.prob=0`` trained with prob 1.0). An
    entry value equal to its ``genview`` one is dropped too; loading the copy writes it back.

    Args:
        cfg (mmengine.Config | dict): a loaded config (left as it is).

    Returns:
        mmengine.Config | dict: the copy.
    """
    plain = copy.deepcopy(cfg)
    settings = plain.get('genview') or {}
    for node in iter_pair_transforms(plain._cfg_dict if hasattr(plain, '_cfg_dict') else plain):
        for key in PAIR_SETTINGS:
            if settings.get(key) is not None and node.get(key) == settings[key]:
                node.pop(key)
    return plain
