r"""Write class-balanced ImageNet subset lists (MMPretrain ann_file format) for semi-supervised
fine-tuning.

    # seeded, class-balanced 1% and 10% lists drawn from the full train list
    python tools/make_semi_subsets.py --train-list data/imagenet/meta/train.txt \
        --percent 1 10 --seed 0 --out-dir data/imagenet/meta
    # -> data/imagenet/meta/train_1percent.txt, train_10percent.txt

    # or convert the standard SimCLR subset files (1percent.txt / 10percent.txt)
    python tools/make_semi_subsets.py --train-list data/imagenet/meta/train.txt \
        --simclr 1percent.txt 10percent.txt --out-dir data/imagenet/meta

A list already in --out-dir is left as it is when it holds the same lines (a rerun), and
refused (exit status 2), with nothing written, when it differs (pass --overwrite to replace it).
Every refusal of the request (bad sizes, two subsets under one name, an output that is an input,
a list that cannot be read or a subset that cannot be drawn) exits with status 2 and writes
nothing; a list that cannot be written exits with status 1.
"""
import argparse
import os.path as osp
import sys
from collections import Counter

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # tools/_early.py


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Write semi-supervised ImageNet subset lists')
    parser.add_argument('--train-list', help='full train list ("relative/path.JPEG label" lines)')
    parser.add_argument('--percent', type=float, nargs='+', default=[],
                        help='subset sizes in percent of the train list, in (0, 100], e.g. 1 10')
    parser.add_argument('--num-per-class', type=int, nargs='+', default=[],
                        help='subset sizes as images per class (>= 1)')
    parser.add_argument('--simclr', nargs='+', default=[],
                        help='SimCLR subset files to convert (1percent.txt, 10percent.txt)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--out-dir', required=True, help='folder for the written lists')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a list in --out-dir that holds other lines (without it, '
                        'such a list is refused and nothing is written)')
    args = parser.parse_args()
    if not (args.percent or args.num_per_class or args.simclr):
        parser.error('give --percent, --num-per-class or --simclr')
    if (args.percent or args.num_per_class) and not args.train_list:
        parser.error('--percent/--num-per-class need --train-list')
    bad = [f'{p:g}' for p in args.percent if not 0 < p <= 100]
    if bad:
        parser.error(f'--percent must be in (0, 100], got {" ".join(bad)} (1 means 1% of the '
                     'images; nothing was written)')
    bad = [str(n) for n in args.num_per_class if n < 1]
    if bad:
        parser.error(f'--num-per-class must be at least 1, got {" ".join(bad)} (nothing was '
                     'written)')
    for flag, path in [('--train-list', args.train_list)] + [('--simclr', p) for p in args.simclr]:
        if path and '://' not in path and not osp.isfile(path):  # '[Errno 2] No such file'
            parser.error(f'{flag} {path!r} {"is a folder" if osp.isdir(path) else "does not exist"}'
                         ': give the list file (nothing was written)')
    if osp.exists(args.out_dir) and not osp.isdir(args.out_dir):
        parser.error(f'--out-dir {args.out_dir!r} is a file, not a folder (nothing was written)')
    from _early import writable_problem
    problem = writable_problem(args.out_dir)
    if problem:
        parser.error(f'--out-dir {args.out_dir!r}: {problem}: pass a writable folder (nothing '
                     'was written)')
    return args


def refuse(message: str) -> None:
    """A usage problem: one line ``make_semi_subsets.py: error: MESSAGE``, exit status 2."""
    print(f'make_semi_subsets.py: error: {message}', file=sys.stderr)
    sys.exit(2)


def main() -> None:
    args = parse_args()
    from genview_mm.evaluation.subsets import (
        ann_text,
        balanced_subset,
        read_ann_file,
        read_simclr_names,
        simclr_subset,
        write_ann_file,
    )
    from genview_mm.utils.file_safety import holds_text
    jobs = [(f'train_{p:g}percent.txt', dict(fraction=p / 100)) for p in args.percent]
    jobs += [(f'train_{n}perclass.txt', dict(num_per_class=n)) for n in args.num_per_class]
    names = [name for name, _ in jobs] + ['train_' + osp.basename(p) for p in args.simclr]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        refuse(f'two requested subsets would both be written to {clash}; run the tool twice '
               'with different --out-dir folders (nothing was written)')
    inputs = [p for p in [args.train_list, *args.simclr] if p and osp.isfile(p)]
    for out in (osp.join(args.out_dir, name) for name in names):
        if any(osp.isfile(out) and osp.samefile(out, p) for p in inputs):
            refuse(f'{out} is one of the input lists and would be replaced by its own subset: '
                   'pass another --out-dir (nothing was written)')
    try:  # draw every subset first: a bad request writes nothing
        entries = read_ann_file(args.train_list) if args.train_list else None
        subsets = [(name, balanced_subset(entries, seed=args.seed, **kw), f'seed {args.seed}')
                   for name, kw in jobs]
        subsets += [('train_' + osp.basename(path),
                     simclr_subset(read_simclr_names(path), entries), f'from {path}')
                    for path in args.simclr]
    except (ValueError, OSError) as err:
        refuse(f'{err} (nothing was written)')
    for name, subset, _ in subsets:  # a user's list with other lines is never replaced silently
        out = osp.join(args.out_dir, name)
        if not args.overwrite and osp.lexists(out) and not holds_text(out, ann_text(subset)):
            refuse(f'{out} exists and holds other lines than this subset: pass --overwrite to '
                   'replace it, or another --out-dir (nothing was written)')
    classes = len({label for _, label in entries or []})
    clamped = {name: 100 * kw['fraction'] for name, kw in jobs  # per_class_count's floor of 1
               if 'fraction' in kw and round(kw['fraction'] * len(entries) / classes) < 1}
    for name, subset, how in subsets:
        out = osp.join(args.out_dir, name)
        kept = holds_text(out, ann_text(subset))  # a list holding these lines is left as is
        try:
            if not kept:
                write_ann_file(subset, out)
        except OSError as err:
            sys.exit(f'make_semi_subsets.py: error: cannot write {out}: '
                     f'{err.strerror or err}; pass a writable --out-dir')
        counts = Counter(label for _, label in subset).values()
        low, high = min(counts, default=0), max(counts, default=0)
        per_class = f'{low} per class' if low == high else f'{low} to {high} per class'
        print(f'{"kept" if kept else "wrote"} {out}: {len(subset)} images of {len(counts)} '
              f'classes, {per_class}, {how}')
        if name in clamped:
            print(f'note: {clamped[name]:g}% of {len(entries)} images rounds to none per class, '
                  f'so {name} keeps one per class '
                  f'({100 * len(subset) / len(entries):.2g}%); --num-per-class 1 says so',
                  file=sys.stderr)


if __name__ == '__main__':
    main()
