"""Merge the per-rank manifest parts of a generation run into OUT_DIR/manifest.jsonl.

    python tools/merge_manifests.py data/genview --source data/imagenet/train --check-files

Duplicates (from resumed runs) are dropped: an 'ok' row beats a 'failed' one, a newer row (later
line, later-written part) an older one; rows are sorted by source key. With --source, images
without a row are reported (exit code 1 if any, or if --check-files finds listed outputs missing
or empty). Run it after separate launches (a job array) or after generate_views.py --no-merge.
"""
import argparse
import json
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out_dir', help='the --out-dir of tools/generate_views.py')
    p.add_argument('--source', default=None, help='the source given to generate_views.py, to '
                   'report images without a row')
    p.add_argument('--data-root', default=None)
    p.add_argument('--dataset-key', default='train_dataloader.dataset')
    p.add_argument('--num-variations', type=int, default=None)
    p.add_argument('--check-files', action='store_true',
                   help='verify listed outputs exist and are not empty')
    p.add_argument('--out', default=None, help='merged manifest (default: OUT_DIR/manifest.jsonl)')
    args = p.parse_args(argv)

    import genview_mm  # noqa: F401
    from genview_mm.generation.merge import merge_manifests
    from genview_mm.generation.sources import list_images
    items = (list_images(args.source, args.data_root, args.dataset_key)
             if args.source else None)
    report = merge_manifests(args.out_dir, items, args.num_variations, args.check_files,
                             args.out)
    for key in ('missing', 'missing_files'):
        for name in report[key][:20]:
            print(f'{key}: {name}')
        if len(report[key]) > 20:
            print(f'{key}: ... {len(report[key]) - 20} more')
    print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in report.items()}))
    return 1 if report['missing'] or report['missing_files'] else 0


if __name__ == '__main__':
    sys.exit(main())
