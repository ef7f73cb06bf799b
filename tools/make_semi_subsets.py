"""Write class-balanced ImageNet subset lists (MMPretrain ann_file format) for semi-supervised
fine-tuning.

    # seeded, class-balanced 1% and 10% lists drawn from the full train list
    python tools/make_semi_subsets.py --train-list data/imagenet/meta/train.txt \
        --percent 1 10 --seed 0 --out-dir data/imagenet/meta
    # -> data/imagenet/meta/train_1percent.txt, train_10percent.txt

    # or convert the standard SimCLR subset files (1percent.txt / 10percent.txt)
    python tools/make_semi_subsets.py --train-list data/imagenet/meta/train.txt \
        --simclr 1percent.txt 10percent.txt --out-dir data/imagenet/meta
"""
import argparse
import os.path as osp

from genview_mm.evaluation.subsets import (balanced_subset, read_ann_file, read_simclr_names,
                                           simclr_subset, write_ann_file)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Write semi-supervised ImageNet subset lists')
    parser.add_argument('--train-list', help='full train list ("relative/path.JPEG label" lines)')
    parser.add_argument('--percent', type=float, nargs='+', default=[],
                        help='subset sizes in percent of the train list, e.g. 1 10')
    parser.add_argument('--num-per-class', type=int, nargs='+', default=[],
                        help='subset sizes as images per class')
    parser.add_argument('--simclr', nargs='+', default=[],
                        help='SimCLR subset files to convert (1percent.txt, 10percent.txt)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--out-dir', required=True, help='folder for the written lists')
    args = parser.parse_args()
    if not (args.percent or args.num_per_class or args.simclr):
        parser.error('give --percent, --num-per-class or --simclr')
    if (args.percent or args.num_per_class) and not args.train_list:
        parser.error('--percent/--num-per-class need --train-list')
    return args


def main() -> None:
    args = parse_args()
    entries = read_ann_file(args.train_list) if args.train_list else None
    jobs = [(f'train_{p:g}percent.txt', dict(fraction=p / 100)) for p in args.percent]
    jobs += [(f'train_{n}perclass.txt', dict(num_per_class=n)) for n in args.num_per_class]
    names = [name for name, _ in jobs] + ['train_' + osp.basename(p) for p in args.simclr]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise SystemExit(f'two requested subsets would both be written to {clash}; run the tool '
                         'twice with different --out-dir folders.')
    for name, kwargs in jobs:
        subset = balanced_subset(entries, seed=args.seed, **kwargs)
        out = osp.join(args.out_dir, name)
        write_ann_file(subset, out)
        print(f'wrote {out}: {len(subset)} images, '
              f'{len(subset) // len({label for _, label in subset})} per class, seed {args.seed}')
    for path in args.simclr:
        subset = simclr_subset(read_simclr_names(path), entries)
        out = osp.join(args.out_dir, 'train_' + osp.basename(path))
        write_ann_file(subset, out)
        print(f'wrote {out}: {len(subset)} images from {path}')


if __name__ == '__main__':
    main()
