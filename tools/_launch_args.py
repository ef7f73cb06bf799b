"""Arguments shared by tools/train.py, tools/test.py and tools/check_config.py.

Plain argparse, no heavy import: the tools parse their arguments before torch, MMEngine and
genview_mm load, so --help and usage errors answer at once. ``--cfg-options`` values are kept
as text here and typed by MMEngine's DictAction afterwards (:func:`cfg_options`).
"""
import argparse
import os
import sys
from typing import Optional


def key_value(text: str) -> str:
    """An argparse type: a ``--cfg-options`` item must be ``KEY=VALUE`` (MMEngine's DictAction
    raised a ValueError traceback after the heavy imports)."""
    if '=' not in text or text.startswith('='):
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE, got {text!r}')
    return text


def add_cfg_options(parser: argparse.ArgumentParser,
                    help: str = 'override config settings, e.g. train_dataloader.batch_size=8 '
                    'genview.manifest=/data/views/manifest.jsonl') -> None:
    """``--cfg-options KEY=VALUE ...`` (typed later by :func:`cfg_options`); repeated, all of
    them, the last value of a key winning, as MMEngine's DictAction."""
    parser.add_argument('--cfg-options', nargs='+', action='extend', metavar='KEY=VALUE',
                        type=key_value, help=help)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """``--cfg-options``, ``--amp``, ``--launcher``, ``--local-rank`` and the preflight flags."""
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    add_cfg_options(parser)
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--preflight', action='store_true',
                        help='only check what the config needs (data, views, models, '
                        'checkpoints), print the checklist and exit')
    parser.add_argument('--skip-preflight', action='store_true',
                        help='do not check prerequisites before starting (the launch scripts '
                        'check once before starting the processes)')


def check_work_dir(parser: argparse.ArgumentParser, work_dir: Optional[str],
                   config: Optional[str] = None) -> None:
    """A usage error for a ``--work-dir`` that is a file, lies under one or cannot be written
    (MMEngine's makedirs ended in a FileExistsError or NotADirectoryError traceback while the
    runner was built), that is empty (an unset shell variable: the run went to the current
    folder, --resume off, its checkpoints replaced) or that holds ``config``, a config of the
    user's own that MMEngine's dump would replace (``config_dump_problem``; the default work
    dir is checked by :func:`genview_mm.apis.launch.prepare_cfg`)."""
    if work_dir is not None and not work_dir.strip():
        parser.error('--work-dir is empty: pass a folder, or leave the option out '
                     '(work_dirs/<config name>)')
    if not work_dir:
        return
    from _early import config_dump_problem, writable_problem
    problem = config_dump_problem(work_dir, config)
    if problem:
        parser.error(f'--work-dir {problem}')
    if os.path.exists(work_dir) and not os.path.isdir(work_dir):
        parser.error(f'--work-dir {work_dir} is a file, not a folder: pass a folder (it is '
                     'created if missing)')
    problem = writable_problem(work_dir)
    if problem:
        parser.error(f'--work-dir {work_dir}: {problem}, so it cannot be created: pass a '
                     'folder path')


def cfg_options(args: argparse.Namespace) -> Optional[dict]:
    """``--cfg-options`` as MMEngine's DictAction types them (numbers, lists, bools), except
    that a value quoted whole with a comma inside (``'"/data/a,b"'``, not a quoted list) or
    with spaces and no list syntax (``[](),``) is kept as the text it is, and one
    with list syntax and a space inside an item is read as a Python literal
    (``"['x y', 'z']"``; quoted whole, ``'"[1, 2]"'``, too) or refused (exit status 2), never
    run together."""
    if not args.cfg_options:
        return None
    import ast
    import re

    from mmengine.config import DictAction
    parsed = argparse.Namespace()
    DictAction(option_strings=['--cfg-options'], dest='options')(None, parsed, args.cfg_options)
    last = {item.split('=', 1)[0]: i for i, item in enumerate(args.cfg_options)}
    for i, item in enumerate(args.cfg_options):  # DictAction drops every space: '/my data'
        key, value = item.split('=', 1)  # became '/mydata'
        if last[key] != i:  # a later item sets the key (the last one wins, as in DictAction)
            continue
        text = value.strip()
        inner = text[1:-1]
        if len(text) > 1 and text[0] == text[-1] and text[0] in '\'"' and ',' in inner and \
                text[0] not in inner and inner[:1] not in '[(':  # one quoted text with a
            parsed.options[key] = inner  # comma: kept whole (MMEngine splits it into a list)
            continue
        if ' ' not in text:
            continue
        if not any(c in value for c in '[](),'):
            parsed.options[key] = value.strip().strip('\'"')
            continue
        quoted = len(text) > 1 and text[0] == text[-1] and text[0] in '\'"' and \
            inner[:1] in '[('  # MMEngine's quoted list 'a="[1, 2]"': the list, not its text
        try:  # a Python literal: its quoted items keep their spaces
            parsed.options[key] = ast.literal_eval(inner if quoted else text)
        except (ValueError, SyntaxError):
            # else a space inside an item would go: '/d/ImageNet (2012)/x' -> '/d/ImageNet(2012)/x'
            if re.search(r'[^\s,\[(]\s+[^\s,\])]', value.strip()):
                print(f'{os.path.basename(sys.argv[0])}: error: --cfg-options {item!r}: '
                      "MMEngine's list syntax would drop the spaces inside it; write it as a "
                      'Python literal (e.g. "[\'my data\', \'x\']"), or set the value in a '
                      'config file', file=sys.stderr)
                raise SystemExit(2) from None
    return parsed.options
