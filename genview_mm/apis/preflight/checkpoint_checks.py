"""Preflight checks of the checkpoints a config (or the command line) names."""
import os.path as osp
from typing import Iterator, List, Optional, Tuple

from .checklist import BROKEN, MISSING, NOTE, OK, Check

REMOTE = ('http://', 'https://', 'torchvision://', 'open-mmlab://', 'mmcls://', 's3://')
CONVERT_FIX = ('python tools/convert_checkpoint.py work_dirs/<pretraining>/epoch_N.pth {path} '
               '(or an official GenView checkpoint: docs/released_views_and_official_artefacts.md)')


def iter_pretrained(node, key: str = 'model') -> Iterator[Tuple[str, str]]:
    """(config key, checkpoint) of every ``init_cfg=dict(type='Pretrained', checkpoint=...)``."""
    if isinstance(node, dict):
        init = node.get('init_cfg')
        for item in init if isinstance(init, list) else [init]:
            if isinstance(item, dict) and item.get('type') == 'Pretrained' and \
                    item.get('checkpoint'):
                yield f'{key}.init_cfg.checkpoint', item['checkpoint']
        for k, v in node.items():
            if k != 'init_cfg':
                yield from iter_pretrained(v, f'{key}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from iter_pretrained(v, f'{key}.{i}')


def check_checkpoint(what: str, path: str, key: str) -> Check:
    """The file exists and loads with ``weights_only=True`` (memory-mapped: no full read)."""
    if path.startswith(REMOTE):
        return Check(what, NOTE, f'{path} is downloaded when the run starts')
    fix = [CONVERT_FIX.format(path=path), f'or --cfg-options {key}=PATH']
    if not osp.isfile(path):
        return Check(what, MISSING, f'{path} not found', fix)
    import torch

    try:
        torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except Exception as exc:  # noqa: BLE001  (what torch.load says is the detail)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''
        return Check(what, BROKEN, f'{path} does not load with weights_only=True '
                     f'({type(exc).__name__}: {first})', fix)
    return Check(what, OK, path)


def check_checkpoints(cfg, checkpoint: Optional[str] = None) -> List[Check]:
    """``load_from``, a ``--resume`` path, ``init_cfg`` Pretrained and the tested checkpoint."""
    checks = []
    if checkpoint:
        check = check_checkpoint('checkpoint to test', checkpoint, 'CHECKPOINT')
        if check.fix:  # a trained model's checkpoint: it comes from training, not conversion
            check = check._replace(fix=['train the model first (tools/train.py CONFIG) or give '
                                        'the path of its checkpoint'])
        checks.append(check)
    elif cfg.get('load_from'):
        what = 'checkpoint to resume' if cfg.get('resume') else 'load_from checkpoint'
        checks.append(check_checkpoint(what, cfg.load_from, 'load_from'))
    if not checkpoint:  # a tested checkpoint replaces the initial weights
        for key, path in iter_pretrained(cfg.get('model')):
            checks.append(check_checkpoint(f'pretrained weights [{key}]', path, key))
    return checks
