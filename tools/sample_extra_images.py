"""Draw the extra real images of a data-expansion baseline: a seeded sample of N images from a
folder or a list (e.g. an ImageNet-21K or LAION dump) without ImageNet-1K's own images, those of
train and of val (same file name, or same bytes: ImageNet-21K holds val's images under other
names, and the baselines are evaluated on val), written as the annotation list configs/expansion/
reads.

    python tools/sample_extra_images.py data/extra_images \\
        --imagenet data/imagenet/train data/imagenet/val \\
        --num 1281167 --out data/expansion/extra_images.txt

The source is streamed (a 100M-image dump is never held in memory: the sample is a seeded
bottom-k reservoir of N entries, about 135 bytes each); the content check hashes only the
sampled images whose size equals an ImageNet file's, and the ImageNet files of those sizes.
Same seed and same set of files, same list, whatever order the files are walked or listed in.
The scan is saved to OUT.scan every 5 minutes, on a Ctrl-C or SIGTERM (at its next folder's
end or 10,000 list entries; then the run ends) and once done: a stopped run (killed, out of
time) rerun with the same source, --num and --seed goes on from it, a finished scan is not
redone (the same list as one uninterrupted run); OUT.scan is removed once the list is written.
Exit status 2, with no list written, when no image is eligible, when fewer than N are (unless
--allow-fewer; OUT.scan is kept for it), or when --out (or OUT.json) is the SOURCE list itself.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # tools/_early.py

IMAGENET_TRAIN_IMAGES = 1281167


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Sample extra real images (not ImageNet-1K train or val images) into an '
        'annotation list for the data-expansion baselines')
    parser.add_argument('source', help='folder of candidate images (walked recursively; '
                        'dot-files skipped) or a list file (one path per line, relative to '
                        '--data-root or absolute)')
    parser.add_argument('--out', required=True, help='annotation list to write (paths '
                        'relative to --data-root); its provenance goes to OUT.json')
    parser.add_argument('--num', type=int, default=IMAGENET_TRAIN_IMAGES,
                        help='images to draw (default: one per ImageNet-1K train image, as '
                        'many as GenView has views)')
    parser.add_argument('--data-root', help='the folder the written paths are relative to: the '
                        "config's extra image folder (default: SOURCE if a folder, else the "
                        "list file's folder)")
    parser.add_argument('--imagenet', nargs='+', metavar='DIR',
                        default=['data/imagenet/train', 'data/imagenet/val'],
                        help='ImageNet-1K folders whose images are excluded: train and val '
                        '(default: data/imagenet/train data/imagenet/val)')
    parser.add_argument('--names-only', action='store_true',
                        help='exclude by file name only (no stat of ImageNet, no hashing)')
    parser.add_argument('--verify', action='store_true',
                        help='also decode every kept image as training does and drop those that '
                        'fail (an HTML page saved as .jpg, a truncated file): a read and a '
                        'decode of each drawn image')
    parser.add_argument('--seed', type=int, default=0, help='sampling seed (default: 0)')
    parser.add_argument('--allow-fewer', action='store_true',
                        help='write all eligible images when there are fewer than --num')
    parser.add_argument('--workers', type=int, default=8,
                        help='threads for stat and hashing (default: 8)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an --out (or OUT.json, OUT.scan) that this tool did not '
                        'write')
    args = parser.parse_args()
    if args.num < 1:
        parser.error(f'--num must be at least 1, got {args.num}')
    if not osp.exists(args.source):
        parser.error(f'{args.source} not found: give a folder of images or a list file')
    if not osp.basename(args.out):  # '' (an unset variable) or a folder: written after the scan
        parser.error(f'--out {args.out!r} names no file: give the path of the list to write '
                     '(nothing was written)')
    if osp.isfile(args.source):  # the candidate list must survive the run (even --overwrite)
        for out in (args.out, args.out + '.json', args.out + '.scan'):
            if osp.exists(out) and osp.samefile(out, args.source):
                parser.error(f'--out {args.out!r} would write {out!r}, which is the candidate '
                             f'list {args.source!r} itself: pass another --out (nothing was '
                             'written)')
    from _early import library_module
    try:  # before the scan: the seed keys the hash that ranks every candidate
        library_module('apis/extra_images/reservoir.py').check_seed(args.seed, '--seed')
    except ValueError as exc:
        parser.error(f'{exc} (nothing was written)')
    safety = library_module('utils/file_safety.py')  # its exceptions are this copy's
    NotWritable, ReplaceRefused = safety.NotWritable, safety.ReplaceRefused
    check_replace, check_writable = safety.check_replace, safety.check_writable
    try:  # before the (long) scan: a user's file of that name is never replaced silently
        check_replace(args.out, lambda p: _provenance(p + '.json'),
                      'an image list of this tool (with its OUT.json)', '--overwrite',
                      args.overwrite)
        check_replace(args.out + '.json', _provenance, "an image list's provenance",
                      '--overwrite', args.overwrite)
        check_replace(args.out + '.scan', _saved_scan, "the scan's progress", '--overwrite',
                      args.overwrite)
        check_writable(args.out)  # nor is it found unwritable after hours of scanning
    except ReplaceRefused as exc:
        parser.error(f'{exc} (nothing was written)')
    except NotWritable as exc:
        parser.error(f'--out {exc} (nothing was written)')
    for folder in args.imagenet:
        if not osp.isdir(folder):  # a file: an archive, or a list given for a folder
            what = 'is a file, not a folder' if osp.exists(folder) else 'not found'
            parser.error(f'ImageNet folder {folder} {what}: give --imagenet TRAIN VAL (the '
                         "train/ and val/ folders of ImageNet-1K, unpacked: neither's images may "
                         'be in the extra set)')
    return args


def _provenance(path: str) -> bool:
    """Whether ``path`` is the OUT.json this tool writes next to a list."""
    with open(path, encoding='utf-8') as f:
        record = json.load(f)
    return isinstance(record, dict) and {'num_written', 'num_asked', 'seed'} <= set(record)


def _saved_scan(path: str) -> bool:
    """Whether ``path`` is the OUT.scan this tool saves a scan to."""
    with open(path, encoding='utf-8') as f:
        return f.read(16) == '{"genview_scan":'


def main() -> None:
    args = parse_args()
    from genview_mm.apis.extra_images import (
        ImageNetIndex,
        NotEnoughImages,
        OutsideDataRoot,
        check_source,
        default_data_root,
        sample_extra_images,
        write_image_list,
    )

    def progress(line: str) -> None:
        print(f'[{time.strftime("%H:%M:%S")}] {line}', file=sys.stderr, flush=True)

    data_root = args.data_root or default_data_root(args.source)
    try:  # before ImageNet's walk (minutes on ImageNet): a --data-root not holding the source
        check_source(args.source, data_root)
    except (ValueError, OSError) as err:
        print(f'sample_extra_images.py: error: {err} (nothing was written)', file=sys.stderr)
        sys.exit(2)
    scan = args.out + '.scan'  # the scan saved as it goes: a stopped run goes on from it
    try:
        imagenet = ImageNetIndex.from_folders(args.imagenet, not args.names_only, progress)
        report = sample_extra_images(args.source, args.num, imagenet, args.data_root, args.seed,
                                     args.allow_fewer, args.workers, progress,
                                     verify=args.verify, resume=scan)
    except (ValueError, OSError) as err:  # NotEnoughImages included: it says how many exist
        stale = isinstance(err, OutsideDataRoot) or isinstance(err, NotEnoughImages) and \
            not err.fewer  # none, or a --data-root (or list) to fix: the same scan stops again
        if stale and osp.isfile(scan):
            os.remove(scan)
        kept = 'nothing was written'
        if osp.isfile(scan):
            also = ' (--allow-fewer too)' if isinstance(err, NotEnoughImages) else ''
            kept = (f'no list was written; the scan is saved in {scan}: the same command{also} '
                    'goes on from it; delete it to scan from the start')
        print(f'sample_extra_images.py: error: {err} ({kept})', file=sys.stderr)
        sys.exit(2)
    provenance = dict(
        source=osp.abspath(args.source), data_root=osp.abspath(data_root),
        imagenet=[osp.abspath(d) for d in args.imagenet], content_check=not args.names_only,
        decoded=args.verify,
        seed=args.seed, num_asked=args.num, num_written=len(report.paths),
        candidates=report.candidates, excluded_by_name=report.excluded_by_name,
        excluded_by_content=report.excluded_by_content, unreadable=report.unreadable)
    try:
        write_image_list(report.paths, args.out, provenance)
    except OSError as err:  # a full disk (DiskFull names the folder), a folder turned read-only
        print(f'sample_extra_images.py: error: cannot write {args.out}: {err}', file=sys.stderr)
        sys.exit(1)
    if osp.isfile(scan):  # the list is written: nothing to go on from
        os.remove(scan)
    print(f'wrote {args.out}: {len(report.paths):,} images (relative to {data_root}) of '
          f'{report.candidates:,} candidates; excluded {report.excluded_by_name:,} by ImageNet '
          f'name, {report.excluded_by_content:,} by content; dropped {report.unreadable:,} '
          f'missing, empty{", undecodable" if args.verify else ""} or not files; seed '
          f'{args.seed}')


if __name__ == '__main__':
    main()
