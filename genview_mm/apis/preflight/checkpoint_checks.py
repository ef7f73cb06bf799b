"""Preflight checks of the checkpoints a config (or the command line) names: each exists, loads
with ``weights_only`` and holds weights that fit the module it will load into (keys and shapes,
see :mod:`.state_dict_checks`) and that were pretrained on inputs normalised as the config
normalises them; a checkpoint to resume was written by training."""
import os.path as osp
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Tuple

from ...evaluation.checkpoint_io import (
    LOAD_ERRORS,
    CheckpointError,
    check_whole_file,
    folder_given,
    load_error,
    normalisation_options,
    recorded_normalisation,
    rgb_option,
    same_normalisation,
)
from ...utils.config_keys import type_name
from .checklist import BROKEN, MISSING, NOTE, OK, Check
from .fixes import fix_lines
from .state_dict_checks import as_loaded, checkpoint_shapes, compare, module_shapes
from .weights import load_weights

PCA_FORMAT = 'genview_mm.ForegroundPCA'


class Target(NamedTuple):
    """The module a checkpoint loads into: its config node, the registry scope, the init_cfg
    ``prefix``, whether it is the whole model (then every component needs weights) and whether
    a partial fit is only noted (``load_from``)."""
    node: dict
    scope: Optional[str]
    prefix: Optional[str] = None
    whole_model: bool = False
    lenient: bool = False


def iter_pretrained(node, key: str = 'model') -> Iterator[Tuple[str, str, dict, dict]]:
    """(config key, checkpoint, init_cfg, module node) of every ``init_cfg=dict(type=
    'Pretrained', checkpoint=...)``."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        for item in init if isinstance(init, list) else [init]:
            if type_name(item) == 'Pretrained' and item.get('checkpoint'):
                yield f'{key}.init_cfg.checkpoint', item['checkpoint'], item, node
        for k, v in node.items():
            if k != 'init_cfg':
                yield from iter_pretrained(v, f'{key}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from iter_pretrained(v, f'{key}.{i}')


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else ''


def _contents(path: str, ckpt, target: Optional[Target]) -> Tuple[str, str]:
    """(status, detail) of what a loaded checkpoint holds, against its target module."""
    if isinstance(ckpt, dict) and ckpt.get('format') == PCA_FORMAT:
        return BROKEN, (f'{path} is a foreground PCA file (the pair scorer\'s '
                        'model.scorer.pca_path), not model weights')
    shapes = checkpoint_shapes(ckpt)
    if shapes is None:
        keys = ', '.join(map(str, list(ckpt)[:4])) if isinstance(ckpt, dict) else ''
        return BROKEN, f'{path} holds no weights (no state dict of tensors; keys: {keys})'
    if target is None:
        return OK, path
    loaded = as_loaded(shapes, target.prefix)
    if not loaded:
        return BROKEN, (f"{path}: no key starts with the init_cfg prefix {target.prefix!r} "
                        f"(its keys look like '{next(iter(shapes))}')")
    model, kind = module_shapes(target.node, target.scope)
    if model is None:
        return OK, f'{path} (not compared with the {kind}: it cannot be built here)'
    status, found = compare(loaded, model, kind, target.whole_model, target.lenient)
    return status, f'{path}: {found}'


def config_normalisation(cfg) -> Tuple[Optional[Dict[str, Any]], str]:
    """How the config normalises the model's inputs and the key that sets it: the model's own
    ``data_preprocessor``, else the top-level one (MMEngine's runner gives the model that);
    None where neither has a mean and std."""
    model = cfg.get('model') or {}
    pre, key = model.get('data_preprocessor'), 'model.data_preprocessor'
    if not isinstance(pre, dict):
        pre, key = cfg.get('data_preprocessor'), 'data_preprocessor'
    if not isinstance(pre, dict) or pre.get('mean') is None or pre.get('std') is None:
        return None, key
    rgb = pre.get('to_rgb', pre.get('bgr_to_rgb', False))
    return dict(mean=list(pre['mean']), std=list(pre['std']), to_rgb=bool(rgb),
                option=rgb_option(pre, key)), key


def _normalisation_problem(ckpt, expect: Tuple[Dict[str, Any], str], trained: str = 'pretrained'
                           ) -> Optional[Tuple[str, List[str]]]:
    """(detail, fix) when the checkpoint records another normalisation than the config's
    (``trained``: how the checkpoint's weights came to be, for the message)."""
    norm, (used, key) = recorded_normalisation(ckpt), expect
    if norm is None or same_normalisation(norm, used):
        return None

    def text(n):
        return (f"mean={[round(float(v), 3) for v in n['mean']]} "
                f"std={[round(float(v), 3) for v in n['std']]} "
                f"({'RGB' if n['to_rgb'] else 'BGR'})")
    rgb = used['option']  # MMPretrain's to_rgb, MMDetection's bgr_to_rgb
    return (f'was {trained} on inputs normalised with {text(norm)}, but this config normalises '
            f'with {text(used)} ({key}): the backbone would see inputs scaled and ordered '
            f"otherwise than in {trained.replace('ed', 'ing')}",
            [f'append to --cfg-options: {normalisation_options(norm, key, rgb)}',
             f'(or use weights {trained} as {key}.mean/std/{rgb} say)'])


def check_checkpoint(what: str, path: str, key: str, target: Optional[Target] = None,
                     fix: Optional[List[str]] = None,
                     expect: Optional[Tuple[Dict[str, Any], str]] = None) -> Check:
    """The file exists, is a whole ``torch.save`` file (every zip entry matches its checksum:
    ``torch.load`` and MMEngine's loader check none, so zeroed or flipped tensor bytes were
    tested or trained from as weights), loads with ``weights_only=True`` (memory-mapped), holds
    weights that fit ``target`` (when given) and, with ``expect`` (a
    :func:`config_normalisation`), records no other pretraining normalisation."""
    if '://' in path:  # any scheme MMEngine's CheckpointLoader reads (modelzoo://, petrel://,
        # cluster1:s3://, ...): not a local file
        return Check(what, NOTE, f'{path} is downloaded when the run starts')
    fix = fix or fix_lines('checkpoint', path=path, key=key)
    path = osp.expanduser(path)  # as MMEngine's loader reads it (a config's '~/x.pth')
    if osp.isdir(path):
        return Check(what, BROKEN, folder_given(path), fix)
    if not osp.isfile(path):
        return Check(what, MISSING, f'{path} not found', fix)
    try:
        check_whole_file(path)  # what the file is, if not a checkpoint (cut short: a zip
        # archive damaged, copy it again), and its bytes as written
    except CheckpointError as exc:
        return Check(what, BROKEN, str(exc), fix)
    try:
        ckpt = load_weights(path)
    except LOAD_ERRORS as exc:  # torch's first line is its preamble ('Weights only load
        # failed. This file can still be loaded, ...'): what the file pickles comes after it
        return Check(what, BROKEN, str(load_error(path, exc)), fix)
    except Exception as exc:  # noqa: BLE001  (what torch.load says is the detail)
        return Check(what, BROKEN, f'{path} does not load with weights_only=True '
                     f'({type(exc).__name__}: {_first_line(exc)})', fix)
    if what == 'checkpoint to resume':  # what the runner's resume reads
        meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
        lacks = [name for name, ok in (
            ('meta and state dict', isinstance(meta, dict) and 'state_dict' in ckpt),
            ("meta['epoch']", isinstance(meta, dict) and 'epoch' in meta),
            ("meta['iter']", isinstance(meta, dict) and 'iter' in meta),
            ('message_hub', isinstance(ckpt, dict) and 'message_hub' in ckpt)) if not ok]
        if lacks:
            return Check(what, BROKEN, f'{path} was not written by training (no '
                         f'{", ".join(lacks)} to resume from; a converted or official weights '
                         'file cannot be resumed: load it with load_from=PATH instead)', fix)
    status, detail = _contents(path, ckpt, target)
    problem = expect and expect[0] and status != BROKEN and _normalisation_problem(
        ckpt, expect, 'pretrained' if what.startswith('pretrained') else 'trained')
    if problem:
        return Check(what, BROKEN, f'{path} {problem[0]}', problem[1])
    return Check(what, status, detail, fix if status == BROKEN else ())


def check_checkpoints(cfg, checkpoint: Optional[str] = None) -> List[Check]:
    """``load_from``, a ``--resume`` path, ``init_cfg`` Pretrained and the tested checkpoint."""
    checks = []
    scope = cfg.get('default_scope')
    whole = Target(cfg.get('model') or {}, scope, whole_model=True)
    expect = config_normalisation(cfg)  # tested or resumed with the normalisation it learnt
    if checkpoint:  # a trained model's checkpoint: it comes from training, not conversion
        checks.append(check_checkpoint('checkpoint to test', checkpoint, 'CHECKPOINT', whole,
                                       fix_lines('checkpoint_to_test'), expect=expect))
    elif cfg.get('load_from') and cfg.get('resume'):
        checks.append(check_checkpoint('checkpoint to resume', cfg.load_from, 'load_from',
                                       whole, fix_lines('checkpoint_to_resume'), expect=expect))
    elif cfg.get('load_from'):
        checks.append(check_checkpoint('load_from checkpoint', cfg.load_from, 'load_from',
                                       whole._replace(lenient=True), fix_lines('load_from'),
                                       expect=expect))
    if not checkpoint:  # a tested checkpoint replaces the initial weights
        pretrained = list(iter_pretrained(cfg.get('model')))
        for key, path, init, node in pretrained:
            target = Target(node, scope, init.get('prefix'))
            checks.append(check_checkpoint(f'pretrained weights [{key}]', path, key, target,
                                           expect=expect))
        checks += check_one_backbone_file(pretrained)
    return checks


def check_one_backbone_file(pretrained) -> List[Check]:
    """A C4 detector loads res2-res4 into the backbone and res5 into the RoI head's shared
    head from one converted file; two files would mix two models."""
    files = {key: path for key, path, init, _ in pretrained
             if init.get('prefix') == 'backbone.' and
             key in ('model.backbone.init_cfg.checkpoint',
                     'model.roi_head.shared_head.init_cfg.checkpoint')}
    if len({osp.realpath(osp.expanduser(p)) if '://' not in p else p
            for p in files.values()}) < 2:
        return []  # one file, however it is spelt (bb.pth, ./bb.pth, ~/bb.pth, a link to it)
    return [Check('one backbone checkpoint', BROKEN, 'the backbone (res2-res4) and the RoI '
                  "head's shared head (res5) load different files: " +
                  ', '.join(f'{k}={v}' for k, v in files.items()),
                  [f'pass the same file to both: --cfg-options {k}=CKPT' if i == 0 else
                   f'    {k}=CKPT' for i, k in enumerate(files)])]
