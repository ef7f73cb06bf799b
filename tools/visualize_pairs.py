r"""Render positive pairs with their GenView scores s_f, s_b and weight w (paper Fig. 5).

    # from a GenView config (its training set and frozen scorer: a checkpoint changes no score)
    python tools/visualize_pairs.py --config CONFIG [--checkpoint CKPT] [--cfg-options K=V] \
        --num 8 --out pairs.png
    # from two folders of images paired by file name (x.jpg with x.png; unmatched are listed)
    python tools/visualize_pairs.py --view1-dir A --view2-dir B --pca PCA.pth \
        [--encoder openai/clip-vit-base-patch32] [--gamma 1.0] --out pairs.png
"""
import argparse
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _launch_args import add_cfg_options, cfg_options  # noqa: E402

DEFAULT_ENCODER = 'openai/clip-vit-base-patch32'


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--config', help='GenView pretraining config')
    add_cfg_options(p, 'override settings of --config, as tools/train.py takes them')
    p.add_argument('--checkpoint', help='SSL checkpoint of the config (read and loaded; the '
                   'scores and weights come from the frozen scorer and do not change with it)')
    p.add_argument('--view1-dir', help='folder of first views')
    p.add_argument('--view2-dir', help='folder of second views')
    p.add_argument('--encoder', help='CLIP id or folder (folder mode; default: '
                   f'{DEFAULT_ENCODER}; with --config the config names its scorer)')
    p.add_argument('--pca', help='foreground PCA file for the encoder (folder mode)')
    p.add_argument('--gamma', type=float, help='weight-rule gamma (folder mode; default: 1.0; '
                   "with --config the config's model.gamma)")
    p.add_argument('--num', type=int, default=8, help='number of pairs')
    p.add_argument('--seed', type=int, default=None, help="seed of the config's random crops "
                   "(default: its randomness.seed, else 0): the same seed draws the same grid")
    p.add_argument('--cell', type=int, default=128, help='pixel side of each view (>= 1)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--out', default='pairs.png', help='output image (.png, .jpg or .jpeg); '
                   'replaces only a grid this tool wrote, anything else with --overwrite')
    p.add_argument('--overwrite', action='store_true', help='replace whatever --out names')
    args = p.parse_args()
    if not (args.config or (args.view1_dir and args.view2_dir and args.pca)):
        p.error('give --config, or --view1-dir, --view2-dir and --pca')
    folder_mode = [f for f, v in (('--view1-dir', args.view1_dir), ('--view2-dir', args.view2_dir),
                                  ('--pca', args.pca)) if v]
    if args.config and folder_mode:  # the config's pairs were drawn, the folders ignored
        p.error(f'--config and {folder_mode[0]} pick two different sources of pairs: give '
                '--config, or --view1-dir, --view2-dir and --pca')
    if (args.cfg_options or args.seed is not None or args.checkpoint) and not args.config:
        flag = ('--cfg-options' if args.cfg_options else '--seed' if args.seed is not None
                else '--checkpoint')
        p.error(f'{flag} changes --config: give one')
    for flag, value, fix in (
            ('--encoder', args.encoder, "the config's model.scorer is used (its encoder with "
             'its pca_path): change both in the config'),
            ('--gamma', args.gamma, "the config's model.gamma is used: change it with "
             '--cfg-options model.gamma=...')):
        if args.config and value is not None:  # the config's own was used, this one ignored
            p.error(f'{flag} is for folder mode: with --config {fix}')
    args.encoder = DEFAULT_ENCODER if args.encoder is None else args.encoder
    args.gamma = 1.0 if args.gamma is None else args.gamma
    if args.num < 1:
        p.error(f'--num must be at least 1, got {args.num}')
    if args.seed is not None and not 0 <= args.seed < 2 ** 32:  # numpy's range, after the build
        p.error(f'--seed must be in [0, 2**32 - 1], got {args.seed}')
    if not (math.isfinite(args.gamma) and args.gamma >= 0):  # GenViewMixin's rule
        p.error(f'--gamma must be a finite number >= 0, got {args.gamma}')
    if args.cell < 1:  # it failed in PIL after every pair was scored
        p.error(f'--cell must be at least 1, got {args.cell}')
    if os.path.isdir(args.out) or not args.out.lower().endswith(('.png', '.jpg', '.jpeg')):
        p.error(f'--out {args.out!r}: give an image file name ending in .png, .jpg or .jpeg '
                '(it failed after every pair was scored)')
    for flag, folder in (('--view1-dir', args.view1_dir), ('--view2-dir', args.view2_dir)):
        if folder is not None and not os.path.isdir(folder):
            p.error(f'{flag} {folder!r} is not a folder')
        if folder is not None and os.path.realpath(os.path.dirname(os.path.abspath(
                args.out))) == os.path.realpath(folder):  # next run: a view of a false pair
            p.error(f'--out {args.out!r} is inside {flag} {folder!r}: the grid would be paired '
                    'as a view on the next run; write it elsewhere')
    return args


def report_unmatched(dir1: str, dir2: str, show: int = 10) -> None:
    """Print the images of either folder that have no partner of the same name."""
    from genview_mm.apis.pair_samples import pair_by_stem
    found = pair_by_stem(dir1, dir2)
    for folder, names in ((dir1, found.unmatched1), (dir2, found.unmatched2)):
        if names:
            more = f' (and {len(names) - show} more)' if len(names) > show else ''
            print(f'unmatched in {folder}: {len(names)} images without a partner of the same '
                  f'name: {", ".join(names[:show])}{more}')


def main() -> None:
    args = parse_args()
    if getattr(sys.stdout, 'errors', None) == 'strict' and hasattr(sys.stdout, 'reconfigure'):
        # file names that are not UTF-8 (surrogate escapes) print as \udcXX, not an error
        sys.stdout.reconfigure(errors='backslashreplace')
    import genview_mm  # noqa: F401  (compat fixes and registration first)
    from genview_mm.apis.pair_samples import score_config_samples, score_folders
    from genview_mm.models.scorers import PairQualityScorer
    from genview_mm.utils.dist import resolve_device
    from genview_mm.utils.file_safety import ReplaceRefused, check_replace, check_writable
    from genview_mm.visualization import is_pair_grid, render_pair_grid
    try:  # before any pair is scored: a refused request (exit 2, as every tool's)
        check_writable(args.out)  # under a file: a traceback after every pair was scored
        check_replace(args.out, is_pair_grid, 'a grid of pairs', '--overwrite', args.overwrite)
        resolve_device(args.device)  # 'gpu', or cuda where there is none: a traceback later
    except (ReplaceRefused, ValueError) as exc:
        print(f'visualize_pairs.py: error: {exc}', file=sys.stderr)
        sys.exit(2)
    try:  # a missing or empty manifest, a PCA file that does not fit: one line
        if args.config:
            img1, img2, scores, weights = score_config_samples(
                args.config, args.num, args.checkpoint, args.device, cfg_options(args),
                args.seed)
        else:
            report_unmatched(args.view1_dir, args.view2_dir)
            scorer = PairQualityScorer(args.pca, encoder=args.encoder)
            img1, img2, scores, weights = score_folders(args.view1_dir, args.view2_dir, scorer,
                                                        args.num, args.gamma, args.device)
        path = render_pair_grid(img1, img2, scores, weights, args.out, cell=args.cell)
    except (OSError, ValueError) as exc:  # the grid's write: a full disk (DiskFull) too
        raise SystemExit(f'visualize_pairs.py: error: {exc}') from None
    print(f'wrote {path}: {len(img1)} pairs, w in [{weights.min():.3f}, {weights.max():.3f}]')


if __name__ == '__main__':
    main()
