r"""Fit the foreground PCA (direction, mean, threshold) of an encoder's patch tokens.

The generator's encoder (the image encoder of Stable unCLIP 2.1), 10,000 ImageNet train images,
10 per class::

    python tools/fit_foreground_pca.py data/imagenet/train --per-folder \
        --out data/genview/pca/generator.pth

The paper's pair scorer (OpenCLIP ConvNeXt-Base-W laion2B augreg at 224 px)::

    python tools/fit_foreground_pca.py data/imagenet/train --per-folder \
        --timm-model convnext_base.clip_laion2b_augreg --input-size 224 \
        --out data/genview/pca/convnext-base-w-laion2b-augreg.pth

Writes the PCA file and a contact sheet (``--sheet``, default: the output path with ``.png``)
showing each sampled image next to its foreground mask, with the threshold rule in its caption.
An existing file there is replaced only if this tool wrote it (or with ``--overwrite``).
``--threshold-rule histogram`` is the authors' rule (needed to regenerate their released views);
the default ``quantile`` puts ``--fg-fraction`` of the tokens in the foreground. See
``genview_mm/foreground/fit.py`` for the sign and threshold rules.
"""
import argparse
import logging
import os
import os.path as osp
import sys

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path[:0] = [osp.dirname(TOOLS), TOOLS]

from _pca_args import (  # noqa: E402
    add_encoder_args,
    add_loader_args,
    check_encoder_args,
    check_output_file,
    int_at_least,
)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('source', help='image folder, image list / MMPretrain annotation file, or '
                   'MMPretrain config (.py)')
    p.add_argument('--out', required=True, help='output PCA file (.pth)')
    p.add_argument('--data-root', default=None, help='root for relative paths in a list file, '
                   'or data_root override for a config')
    p.add_argument('--dataset-key', default=None,
                   help='with a config SOURCE: where its dataset sits (default: '
                   'train_dataloader.dataset)')
    p.add_argument('--num-images', type=int, default=10000,
                   help='images sampled for the fit; <=0: all (default: %(default)s)')
    p.add_argument('--seed', type=int, default=0, help='sampling seed (default: %(default)s)')
    p.add_argument('--per-folder', action='store_true',
                   help='spread the sample evenly over image folders (e.g. 10 per ImageNet '
                   'class for 10000 images, like the official fit)')
    add_encoder_args(p)
    p.add_argument('--threshold-rule', choices=['quantile', 'histogram'], default='quantile',
                   help="'quantile': --fg-fraction of the fitted tokens are foreground; "
                   "'histogram': the official 200-bin rule (~35%%) (default: %(default)s)")
    p.add_argument('--fg-fraction', type=float, default=None,
                   help='target foreground fraction of the quantile rule (default: 0.4)')
    p.add_argument('--sign', choices=['center', '+1', '-1'], default='center',
                   help="direction sign: 'center' = centre tokens score higher than border "
                   "tokens; '+1'/'-1' = manual override (default: %(default)s)")
    add_loader_args(p)
    p.add_argument('--sheet', default=None, help='contact sheet PNG path (default: --out with '
                   '.png)')
    p.add_argument('--sheet-images', type=int_at_least(1), default=32,
                   help='images on the contact sheet, >= 1: the first N readable ones of the '
                   'sample, all of it when the sample is smaller (default: %(default)s)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing --out that is '
                   "not a fit of this tool (another file, or the authors' vector imported by "
                   'tools/import_official_pca.py), or an existing sheet that is not a contact '
                   'sheet this tool wrote (without it such files are left alone and the tool '
                   'stops)')
    args = p.parse_args(argv)
    if args.fg_fraction is not None and args.threshold_rule == 'histogram':
        p.error('--fg-fraction is the quantile rule\'s: --threshold-rule histogram fits its own '
                'threshold (the official rule); leave one of them out')
    args.fg_fraction = 0.4 if args.fg_fraction is None else args.fg_fraction
    if not 0.0 < args.fg_fraction < 1.0:
        p.error(f'--fg-fraction must be between 0 and 1 (exclusive), got {args.fg_fraction}')
    if not (osp.isdir(args.source) or osp.isfile(args.source)):
        p.error(f'source {args.source!r} is neither a folder nor a file')
    check_encoder_args(p, args)
    inputs = [('source', args.source), ('--timm-checkpoint', args.timm_checkpoint)]
    check_output_file(p, args.out, inputs=inputs)
    if args.sheet:
        check_output_file(p, args.sheet, '--sheet', inputs=inputs)
    return args


def _error(exc: BaseException, code: int) -> int:
    """Print the first line of ``exc`` in the tool's form; ``code``, the exit status."""
    print(f'fit_foreground_pca.py: error: {str(exc).strip().splitlines()[0]}', file=sys.stderr)
    return code


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    import genview_mm  # noqa: F401
    from genview_mm.apis.pca_encoder import build_encoder_from_args
    from genview_mm.apis.pca_fit import (
        check_outputs,
        check_paths_exist,
        run_fit,
        sample_paths,
        sheet_path,
    )
    from genview_mm.datasets.image_sources import list_images
    from genview_mm.utils.dist import resolve_device
    from genview_mm.utils.file_safety import ReplaceRefused, lies_under

    sheet = sheet_path(args.out, args.sheet)
    try:  # before the listing and the (long) fit
        check_outputs(args.out, sheet, args.overwrite)
        resolve_device(args.device)
    except (ReplaceRefused, ValueError) as exc:
        print(f'fit_foreground_pca.py: error: {exc}', file=sys.stderr)
        return 2
    if osp.isdir(args.source) and lies_under(osp.realpath(sheet), osp.realpath(args.source)):
        print(f'fit_foreground_pca.py: error: the contact sheet {sheet} would be written inside '
              f'the source folder {args.source}, where a later fit or generation would read it '
              'as an image: give --sheet (or --out) a path outside it', file=sys.stderr)
        return 2

    try:  # a source that is no folder, list or config: the library says what it takes
        items = list_images(args.source, args.data_root, args.dataset_key)
    except (OSError, ValueError) as exc:
        return _error(exc, 2)
    if not items:
        print(f'fit_foreground_pca.py: error: no images found in {args.source!r}',
              file=sys.stderr)
        return 2
    paths = sample_paths([it.path for it in items], args.num_images, args.seed,
                         args.per_folder)
    if 0 < len(items) < args.num_images:
        logging.warning('--num-images %d asked, but %r has only %d images: fitting on all %d',
                        args.num_images, args.source, len(items), len(items))
    logging.info('fitting on %d of %d images', len(paths), len(items))
    try:  # a list read from the wrong folder: before the encoder loads
        check_paths_exist(paths, args.source)
    except ValueError as exc:
        return _error(exc, 2)
    try:  # the encoder (a model timm does not know, a folder not there, weights of another
        encoder = build_encoder_from_args(args)  # model or not downloaded): exit 2, as in
    except (OSError, ValueError, RuntimeError) as exc:  # import_official_pca.py
        return _error(exc, 2)
    try:  # no readable image, non-finite tokens, a full disk
        pca = run_fit(paths, encoder, args.out, fg_fraction=args.fg_fraction,
                      sign_rule=args.sign, batch_size=args.batch_size,
                      num_workers=args.num_workers, sheet=args.sheet,
                      sheet_images=args.sheet_images, threshold_rule=args.threshold_rule,
                      overwrite=args.overwrite)
    except (OSError, ValueError, RuntimeError) as exc:
        return _error(exc, 1)
    print(f'saved {args.out}: encoder={pca.encoder} grid={pca.grid} alpha={pca.alpha:.4f} '
          f'rule={pca.threshold_rule} foreground={100 * pca.fg_fraction:.1f}% '
          f'images={pca.num_images}')
    return 0


if __name__ == '__main__':
    os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    sys.exit(main())
