"""Preflight: before anything heavy is built, check every external thing a config names.

``tools/train.py`` and ``tools/test.py`` run it (rank 0; ``dist_train.sh``/``slurm_train.sh``
run it once before starting the processes), ``tools/check_config.py`` runs it alone. It reads
the resolved config and checks contents, not only existence, each on a sample: dataset folders
and annotation files (not empty, listed images there), the GenView manifest (parses, covers a
sample of the dataset, the sampled views exist), the scorer's encoder (local folder with
loadable weights, Hugging Face cache or hub) and PCA file (made for that encoder and input
size), checkpoints (load with ``weights_only``, keys and shapes fit the module they load
into, a checkpoint to resume was written by training), and every ``type`` the config names (a
registry of its scope holds it). The result is a short checklist that
says, for each missing item, the command that makes it (from the one table of
:mod:`.fixes`).

Each rule is asked of the component that owns it: the manifest module probes a manifest
(:func:`~genview_mm.structures.manifest.probe_manifest`), an encoder class says where its
weights come from (``weights_source``), a PCA file says whether it fits an encoder
(:func:`~genview_mm.foreground.encoder_check.fits_encoder`); the checks here walk the config and
turn the answers into :class:`Check` lines.
"""
from typing import Iterator, List, Optional, Tuple

from ..genview_settings import iter_pair_transforms, pair_hook_settings
from .checklist import BROKEN, FAILING, NOTE, Check, format_checklist
from .checkpoint_checks import check_checkpoints
from .data_checks import (
    check_dataset,
    check_evaluator,
    extra_images_key,
    iter_datasets,
    train_images,
)
from .extra_checks import check_extra_images
from .manifest_checks import check_manifest
from .model_checks import check_model, check_scorer
from .type_checks import check_types

MODES = ('train', 'test')


def missing_test_settings(cfg, config: str) -> Optional[str]:
    """Why ``cfg`` cannot test (no ``test_dataloader``, ``test_cfg`` or ``test_evaluator``: a
    pretraining config), or None."""
    missing = [k for k in ('test_dataloader', 'test_cfg', 'test_evaluator') if cfg.get(k) is None]
    if not missing:
        return None
    return (f'{config} has no {", ".join(missing)}: it does not say how to test (a pretraining '
            'config?); test with an evaluation config such as configs/benchmarks/ or '
            'configs/detection/')


def missing_train_settings(cfg, config: str) -> Optional[str]:
    """Why ``cfg`` cannot train (no ``model``, ``train_dataloader``, ``train_cfg`` or
    ``optim_wrapper``: the runner stops with a KeyError traceback), or None."""
    missing = [k for k in ('model', 'train_dataloader', 'train_cfg', 'optim_wrapper')
               if not cfg.get(k)]
    if not missing:
        return None
    if missing == ['optim_wrapper'] and cfg.get('optimizer'):  # an MMCV 1.x config
        return (f"{config} has optimizer but no optim_wrapper: MMEngine reads the optimizer "
                "from optim_wrapper = dict(optimizer=dict(...)) (MMCV 1.x's 'optimizer' key "
                'is not read): move it there')
    return (f'{config} has no {", ".join(missing)}: it does not say what to train (not a '
            'training config, or its _base_ does not give them); train with a config such as '
            'configs/genview_mocov2_r50_in1k.py, or inherit one')


def run_preflight(cfg, mode: str = 'train', checkpoint: Optional[str] = None) -> List[Check]:
    """All checks of a loaded config (``genview_mm.apis.load_config``).

    Args:
        cfg (mmengine.Config): the config, ``--cfg-options`` and ``genview`` settings applied.
        mode (str): ``'train'`` (train data, validation data when ``val_cfg`` is set, the
            GenView manifest and scorer, initial weights) or ``'test'`` (test data and the
            checkpoint under test). Defaults to 'train'.
        checkpoint (str, optional): the checkpoint to test. Defaults to None.

    Returns:
        List[Check]: one per prerequisite, in the order a user would make them.
    """
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
    hook = pair_hook_settings(cfg)
    validate = cfg.get('val_cfg') is not None and cfg.get('val_dataloader') is not None
    names = ['test'] if mode == 'test' else ['train'] + (['val'] if validate else [])
    checks: List[Check] = []
    unable = (missing_test_settings if mode == 'test' else missing_train_settings)(
        cfg, cfg.filename or 'the config')
    if unable:  # check_config.py said OK, then test.py refused it (train.py: a traceback)
        checks.append(Check(f'{mode} settings', BROKEN, unable, ()))
    checks += check_types(cfg, names)  # a type no registry holds: the runner would not build
    checks += check_model(cfg.get('model'))  # a key or weight rule its build refuses
    extra = extra_images_key(cfg)
    # a classifier (a linear probe, fine-tuning) trains on the labels: each must be a class
    # (and one of its head's num_classes: the tighter bound where the dataset fixes classes)
    num = ((cfg.get('model') or {}).get('head') or {}).get('num_classes')
    labels = num if type(num) is int and num > 0 else bool(num)
    for name in names:
        loader = cfg.get(f'{name}_dataloader') or {}
        for key, ds in iter_datasets(loader.get('dataset'), f'{name}_dataloader.dataset'):
            if key == extra:  # a data-expansion baseline's extra set
                checks += check_extra_images(cfg, key, ds)
                continue
            checks += check_dataset(key, ds, labels if mode == name == 'train' else False)
            if mode == 'train' and name == 'train':
                checks += [check_manifest(t.get('manifest'), ds, t.get('prob', 1.0),
                                          t.get('source_root'), t.get('backend_args'),
                                          t.get('min_clip_sim'),
                                          t.get('imdecode_backend') or 'cv2',
                                          hook.get('min_coverage', 0.0),
                                          hook.get('check_sources', True))
                           for t in iter_pair_transforms(ds.get('pipeline') or [])]
        checks += check_evaluator(f'{name}_evaluator', cfg.get(f'{name}_evaluator') or [])
    if mode == 'train':
        for key, ds in iter_hook_datasets(cfg.get('custom_hooks') or []):
            checks += check_dataset(key, ds)
        checks += check_scorer((cfg.get('model') or {}).get('scorer'), train_images(cfg))
    checks += check_checkpoints(cfg, checkpoint)
    unique, seen = [], set()
    for c in checks:
        if (c.what, c.detail) not in seen:
            seen.add((c.what, c.detail))
            unique.append(c)
    return unique


def iter_hook_datasets(hooks) -> Iterator[Tuple[str, dict]]:
    """(config key, dataset config) of the data loaders a training hook reads (e.g.
    ``KNNMonitorHook``'s ``train_dataloader`` and ``val_dataloader``): a hook builds them only
    when it first runs, after an epoch of training, and did not save that epoch when its data
    was missing."""
    for i, hook in enumerate(hooks if isinstance(hooks, (list, tuple)) else []):
        if not isinstance(hook, dict):
            continue
        for name, loader in hook.items():
            if name.endswith('dataloader') and isinstance(loader, dict):
                yield from iter_datasets(loader.get('dataset'),
                                         f'custom_hooks.{i}.{name}.dataset')


def preflight_passes(checks: List[Check]) -> bool:
    """No missing, offline or broken prerequisite."""
    return not any(c.status in FAILING for c in checks)


def has_notes(checks: List[Check]) -> bool:
    """Some prerequisite is usable but worth knowing about (printed even when all passes)."""
    return any(c.status == NOTE for c in checks)


__all__ = ['Check', 'run_preflight', 'preflight_passes', 'has_notes', 'format_checklist',
           'MODES']
