"""Preflight check of a data-expansion baseline's extra images (``configs/expansion/``).

A config with an ``expansion = dict(num_extra=N)`` setting trains on its dataset plus an extra
set, the last of its train datasets: a ``CustomDataset(with_label=False)`` reading a list that
``tools/sample_extra_images.py`` writes. This check replaces the generic dataset check for that
set: the image folder and the list exist, every line of the list is a plain path, it holds N
images, and its first paths are files of the folder; each missing item names the command that
makes it.
"""
import os.path as osp
import shlex
from itertools import islice
from typing import List

from ..extra_images import count_list_images
from .checklist import BROKEN, MISSING, OK, Check
from .data_checks import dataset_paths, starts_with_bom, train_images
from .fixes import fix_lines

#: listed paths whose files must exist (a list drawn for another folder fails on the first)
SPOT_CHECKED = 10
_EXTRA_WRITES = 'tools/sample_extra_images.py writes one plain path per line'


def check_extra_images(cfg, key: str, ds: dict) -> List[Check]:
    """The extra set's folder, its list, the list's length and its first paths."""
    root, ann, folders = dataset_paths(ds)
    folder = folders[0] if folders else root
    num = (cfg.get('expansion') or {}).get('num_extra')
    what = f'extra images [{key}]'
    train = train_images(cfg).rstrip('/')  # and ImageNet's val/ beside it: neither may be in
    val = osp.join(osp.dirname(train), 'val')  # the set (a folder of another layout: none)
    has_val = osp.isdir(val) or osp.basename(train) == 'train'
    facts = dict(key=key, folder=folder, dir=folder.rstrip('/'), ann=ann, imagenet=train,
                 and_val=f' {shlex.quote(val)}' if has_val else '',
                 count=f' --num {num}' if num else '')
    if not osp.isdir(folder):
        return [Check(what, MISSING, f'image folder {folder} not found',
                      fix_lines('extra_folder', **facts))]
    if not osp.isfile(ann):
        return [Check(what, MISSING, f'annotation list {ann} not found',
                      fix_lines('extra_list', **facts))]
    count, problem = count_list_images(ann, folder)
    if problem:  # it passed as N images, and training failed when it reached that line
        return [Check(what, BROKEN, f'{ann}: {problem}, but MMPretrain reads every line as an '
                      'image path, as it is, so training would fail there',
                      [f'remove or fix that line ({count:,} lines); ' + _EXTRA_WRITES])]
    if num and count != num:  # more: the baseline sees more data than GenView's
        return [Check(what, BROKEN, f'{ann} lists {count:,} images, '
                      f'{"fewer" if count < num else "more"} than the {num:,} asked '
                      '(expansion.num_extra)', fix_lines('extra_too_few', found=count,
                                                         **facts))]
    if starts_with_bom(ann):  # not a list of another folder: the same list, saved plainly
        return [Check(what, BROKEN, f'{ann} starts with a byte-order mark (saved as UTF-8 with '
                      'BOM), which MMPretrain reads as part of its first image path',
                      ['save it as plain UTF-8 (no byte-order mark); ' + _EXTRA_WRITES])]
    with open(ann, encoding='utf-8') as f:
        listed = [line.rstrip('\n\r') for line in islice(f, SPOT_CHECKED)]
    absent = [p for p in listed if not osp.isfile(osp.join(folder, p))]
    if absent:
        return [Check(what, BROKEN, f'{ann} names {osp.join(folder, absent[0])}, which does not '
                      f'exist ({len(absent)} of its first {len(listed)} paths): the list was '
                      'drawn for another folder', fix_lines('extra_other_folder', **facts))]
    return [Check(what, OK, f'{ann}: {count:,} images under {folder}')]
