"""Merge the shard records of a generation run into OUT_DIR/manifest.jsonl.

    python tools/merge_manifests.py data/genview/views --source data/imagenet/train --check-files

tools/generate_views.py merges by itself when its worker finds every shard done; this command
does the same at any time (idempotent). Repeated rows (from resumed runs) are dropped: a later
'attempt' beats an earlier one; of one attempt an 'ok' row beats a 'failed' one, a newer row an
older one; rows are sorted by source key. Two different
'ok' rows of one image are reported as conflicts (the newer is kept; exit code 1 with --strict).
With --source, images without a row are reported (exit code 1 if any, or if --check-files finds
listed outputs missing or empty). An --out that is not a GenView manifest is left alone (exit
code 2) unless --overwrite is given.
"""
import argparse
import json
import os.path as osp
import sys

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path[:0] = [osp.dirname(TOOLS), TOOLS]
from _pca_args import int_at_least  # noqa: E402  (plain argparse types)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out_dir', help='the --out-dir of tools/generate_views.py')
    p.add_argument('--source', default=None, help='the source given to generate_views.py, to '
                   'report images without a row')
    p.add_argument('--data-root', default=None)
    p.add_argument('--dataset-key', default=None,
                   help='with a config --source: the dotted key of its dataset (default: '
                   'train_dataloader.dataset)')
    p.add_argument('--num-variations', type=int_at_least(1), default=None,
                   help='views per image (default: the most the rows hold)')
    p.add_argument('--check-files', action='store_true',
                   help='verify listed outputs exist and are not empty')
    p.add_argument('--strict', action='store_true',
                   help='exit with status 1 if two different ok rows exist for one image')
    p.add_argument('--out', default=None, help='merged manifest; a folder (or a name ending '
                   'in /) gets manifest.jsonl inside (default: OUT_DIR/manifest.jsonl; '
                   'elsewhere, its outputs are relative to its folder)')
    p.add_argument('--overwrite', action='store_true', help='replace an --out that is not a '
                   'GenView manifest (without it the tool stops and leaves it alone)')
    args = p.parse_args(argv)
    for flag, value in (('--data-root', args.data_root), ('--dataset-key', args.dataset_key)):
        if value is not None and args.source is None:  # it describes the source: ignored
            p.error(f'{flag} describes --source, which is not given: pass the --source of '
                    'generate_views.py too (to report images without a row), or drop it')
    if args.out is not None and not args.out.strip():
        p.error('--out is empty (an unset variable?): name the manifest to write, or leave '
                '--out out for OUT_DIR/manifest.jsonl')

    import genview_mm  # noqa: F401
    from genview_mm.apis.generation.shards import merge_manifests
    from genview_mm.datasets.image_sources import list_images
    from genview_mm.structures.manifest import MERGED_NAME, read_rows
    from genview_mm.utils.file_safety import (
        NotWritable,
        ReplaceRefused,
        check_replace,
        check_writable,
    )
    if args.out and (osp.isdir(args.out) or args.out.endswith(('/', osp.sep))):
        args.out = osp.join(args.out, MERGED_NAME)  # a folder, maybe still to make
    try:  # a user's file given as --out is never replaced silently
        if args.out:  # a file in the way of its folder: one line, before the merge
            check_writable(args.out)
        check_replace(args.out or osp.join(args.out_dir, MERGED_NAME),
                      lambda path: next(read_rows(path), None) is not None,
                      'a GenView manifest', '--overwrite', args.overwrite)
    except (ReplaceRefused, NotWritable) as exc:
        print(f'merge_manifests.py: error: {exc}', file=sys.stderr)
        return 2
    try:
        items = (list_images(args.source, args.data_root, args.dataset_key)
                 if args.source else None)
        report = merge_manifests(args.out_dir, items, args.num_variations, args.check_files,
                                 args.out)
    except (OSError, ValueError) as exc:  # a full disk (DiskFull): 1, as everywhere
        print(f'merge_manifests.py: error: {exc}', file=sys.stderr)
        return getattr(exc, 'exit_code', 2)
    for key in ('missing', 'missing_files', 'conflicts'):
        for name in report[key][:20]:
            print(f'{key}: {name}')
        if len(report[key]) > 20:
            print(f'{key}: ... {len(report[key]) - 20} more')
    print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in report.items()}))
    if report['conflicts']:
        print(f"{len(report['conflicts'])} images have two different ok rows (kept the newer "
              'of each): two runs with other settings wrote into this folder?', file=sys.stderr)
    strict = args.strict and report['conflicts']
    return 1 if report['missing'] or report['missing_files'] or strict else 0


if __name__ == '__main__':
    sys.exit(main())
