"""Peak Python memory (tracemalloc) and time of drawing an extra set from a synthetic list.

Writes a list of --candidates paths of --path-chars characters (IN-21K / LAION dumps have 30-60),
builds the ImageNet exclusion index from --imagenet-names synthetic names and sizes, and runs the
real sampler (reservoir of --num + 1%, content check) on it. The files do not exist, so their
sizes and SHA-1s come from the path (one in 3 shares a size with an ImageNet file, one in 1,000
is a byte copy of one); everything held in memory is what a real run holds. tracemalloc counts
the sampler's own allocations, not the interpreter and libraries imported before it.

    python tools/benchmarks/bench_extra_sampling.py [--candidates 3000000] [--num 1281167]
"""
import argparse
import hashlib
import os
import os.path as osp
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Peak memory of the extra-image sampler')
    parser.add_argument('--candidates', type=int, default=3_000_000, help='paths in the list')
    parser.add_argument('--num', type=int, default=1_281_167, help='images to draw')
    parser.add_argument('--imagenet-names', type=int, default=1_281_167,
                        help='synthetic ImageNet train names (and sizes)')
    parser.add_argument('--path-chars', type=int, default=60, help='characters per path')
    parser.add_argument('--names-only', action='store_true', help='no content check')
    return parser.parse_args()


def synthetic_path(i: int, chars: int) -> str:
    stem = f'part-{i // 10000:05d}/{i:09d}.jpg'
    return 'x' * max(0, chars - len(stem) - 1) + '/' + stem


def synthetic_size(path: str) -> int:
    """Sizes 1..3,000,000: a third of the paths land on ImageNet's (multiples of 3)."""
    return int.from_bytes(hashlib.blake2b(path.encode(), digest_size=4).digest(), 'big') \
        % 3_000_000 + 1


def synthetic_stat(path: str) -> tuple:
    """(size, device, inode) as the sampler's ``stat`` gives them: one file per path."""
    return synthetic_size(path), 1, int.from_bytes(
        hashlib.blake2b(path.encode(), digest_size=8).digest(), 'big') | 1


def main() -> None:
    args = parse_args()
    sys.path.insert(0, REPO)
    import tracemalloc
    from unittest import mock

    import numpy as np

    from genview_mm.apis.extra_images import ImageNetIndex, sample_extra_images, sampling
    with tempfile.TemporaryDirectory() as tmp:
        lst = osp.join(tmp, 'candidates.txt')
        with open(lst, 'w') as f:
            f.writelines(synthetic_path(i, args.path_chars) + '\n'
                         for i in range(args.candidates))
        copies = {synthetic_path(i, args.path_chars) for i in range(0, args.candidates, 1000)}
        copy_digests = np.unique(np.array([hashlib.sha1(p.encode()).digest() for p in copies],
                                          'S20'))
        del copies
        tracemalloc.start()
        t0 = time.perf_counter()
        imagenet = ImageNetIndex.from_entries(
            ((f'n{i // 1300:08d}_{i}.JPEG', 3 * (i % 1_000_000 + 1))
             for i in range(args.imagenet_names)), roots=() if args.names_only else [tmp])
        index_peak = tracemalloc.get_traced_memory()[1]

        def digests_of_sizes(sizes, workers=8):  # as many digests as ImageNet files hashed
            n = int(np.isin(imagenet.sizes, sizes).sum() * args.imagenet_names
                    / len(imagenet.sizes))
            filler = np.frombuffer(os.urandom(20 * n), 'S20')
            return np.unique(np.concatenate([filler, copy_digests]))

        with mock.patch.object(sampling, '_stat', lambda p: synthetic_stat(osp.relpath(p, tmp))), \
                mock.patch.object(sampling, 'file_sha1',
                                  lambda p: hashlib.sha1(osp.relpath(p, tmp).encode()).digest()), \
                mock.patch.object(imagenet, 'digests_of_sizes', digests_of_sizes):
            report = sample_extra_images(lst, args.num, imagenet, data_root=tmp)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(f'candidates {args.candidates:,} of {args.path_chars} chars, num {args.num:,}, '
          f'ImageNet names {args.imagenet_names:,}, content check {not args.names_only}')
    print(f'kept {len(report.paths):,}; excluded by content {report.excluded_by_content:,}; '
          f'hashed {report.hashed:,}; passes {report.passes}')
    print(f'peak traced memory {peak / 2**20:.0f} MiB (ImageNet index {index_peak / 2**20:.0f} '
          f'MiB); {peak / args.num:.0f} bytes per drawn image; {seconds:.0f} s')


if __name__ == '__main__':
    main()
