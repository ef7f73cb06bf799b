r"""Import the GenView authors' PCA vector (``pca_vectors.npy``) as a genview_mm PCA file.

The scorer's ConvNeXt-Base-W vector (no threshold needed: the scorer uses soft masks)::

    R=genview/tools/clip_pca/pca_results   # the official repository's PCA results
    python tools/import_official_pca.py \
        $R/convnext_base_w_laion2b-s13k-b82k-augreg/eigenvecters/pca_vectors.npy \
        --timm-model convnext_base.clip_laion2b_augreg --input-size 224 \
        --out data/genview/pca/convnext-base-w-laion2b-augreg.pth

The generator's ViT-H/14 vector, with the threshold fitted on 10 images per class by the
authors' 200-bin histogram rule (or give the value their fit printed: --alpha A)::

    V=$R/ViT-H-14-laion2b_s32b_b79k/eigenvecters
    python tools/import_official_pca.py $V/pca_vectors.npy --mean $V/mean_vectors.npy \
        --encoder /models/sd21-unclip --fit-images data/imagenet/train --per-folder \
        --out data/genview/pca/generator.pth

The encoder is loaded to check that the vector's width matches its tokens and to record what it
is (name, grid, input size, weights fingerprint), so the scorer or the generator accepts the file
only for that encoder. A --timm-model is taken at 224 px unless --input-size says otherwise: the
authors fitted every vector at 224 px (timm's own size for the scorer's ConvNeXt is 256).
The projection is the official one (tokens @ v, no mean subtraction).
"""
import argparse
import logging
import math
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
)


def finite_float(text: str) -> float:
    """An argparse type: a finite number (``nan`` gave every image zero foreground)."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be a finite number, got {value}')
    return value


#: the options of the threshold fit on --fit-images (taken and ignored without it)
_FIT_ONLY = ('data_root', 'num_images', 'per_folder', 'seed', 'batch_size', 'num_workers')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('vector', help='the official pca_vectors.npy (shape (D, 1))')
    p.add_argument('--out', required=True, help='output PCA file (.pth)')
    p.add_argument('--mean', default=None, help='the official mean_vectors.npy (kept for the '
                   'record; the official projection does not subtract it)')
    add_encoder_args(p, input_size_default="224, as the authors' scripts fit")
    threshold = p.add_mutually_exclusive_group()
    threshold.add_argument('--alpha', type=finite_float, default=None,
                           help='foreground threshold (the official --fg-thre)')
    threshold.add_argument('--fit-images', default=None,
                           help='image folder or list to fit the threshold on with the official '
                           'histogram rule')
    p.add_argument('--data-root', default=None, help='root for relative paths in a '
                   "--fit-images list (default: the list's folder), e.g. . (the folder holding "
                   "data/) for the authors' train_sampled_1000cls_10img.txt, whose paths start "
                   'with data/imagenet/train/')
    p.add_argument('--num-images', type=int, default=10000,
                   help='images sampled from --fit-images; <=0: all (default: %(default)s)')
    p.add_argument('--per-folder', action='store_true',
                   help='sample evenly over folders (10 per ImageNet class, as the authors)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--mask-type', choices=['gt', 'lt'], default='gt',
                   help="the official --mask-type: foreground above ('gt') or below ('lt') the "
                   'threshold (default: %(default)s)')
    add_loader_args(p)
    p.add_argument('--overwrite', action='store_true', help='replace an existing --out that is '
                   'not an import of this tool (a fitted PCA file, or another file; without it '
                   'the tool stops and leaves it alone)')
    args = p.parse_args(argv)
    if not osp.isfile(args.vector):
        p.error(f'vector {args.vector!r} not found')
    if args.mean and not osp.isfile(args.mean):
        p.error(f'--mean {args.mean!r} not found')
    if args.fit_images and not (osp.isdir(args.fit_images) or osp.isfile(args.fit_images)):
        p.error(f'--fit-images {args.fit_images!r} is neither a folder nor a file')
    if args.mask_type == 'lt' and args.alpha is None and not args.fit_images:
        p.error('--mask-type lt needs a threshold: give --alpha A or --fit-images IMAGES (the '
                'scorer takes the vector without --mask-type)')  # both refused the file
    ignored = [f'--{dest.replace("_", "-")}' for dest in _FIT_ONLY
               if getattr(args, dest) != p.get_default(dest)]
    if ignored and not args.fit_images:
        p.error(f'{", ".join(ignored)} only apply with --fit-images')
    check_encoder_args(p, args)
    if args.timm_model and args.input_size is None:  # the authors' scripts fit at 224 px (timm's
        args.input_size = 224  # own size for convnext_base.clip_laion2b_augreg is 256)
    check_output_file(p, args.out, inputs=[('vector', args.vector), ('--mean', args.mean),
                                           ('--timm-checkpoint', args.timm_checkpoint),
                                           ('--fit-images list', args.fit_images)])
    return args


def main(argv=None):
    args = parse_args(argv)
    if getattr(sys.stdout, 'errors', None) == 'strict' and hasattr(sys.stdout, 'reconfigure'):
        # a path that is not UTF-8 (surrogate escapes) prints as \udcXX, not a traceback after
        sys.stdout.reconfigure(errors='backslashreplace')  # the file was written (exit 1)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    import genview_mm  # noqa: F401
    from genview_mm.apis.pca_fit import check_outputs, sheet_path
    from genview_mm.foreground import ForegroundPCAError
    from genview_mm.foreground.official import describe_import
    from genview_mm.utils.file_safety import ReplaceRefused
    from genview_mm.visualization.contact_sheet import is_contact_sheet
    try:
        check_outputs(args.out, None, args.overwrite, official=True)
        pca = make_pca(args)
    except (ReplaceRefused, ForegroundPCAError, ValueError, OSError) as exc:
        print(f'import_official_pca.py: error: {exc}', file=sys.stderr)
        return 2
    try:
        pca.save(args.out)
    except OSError as exc:  # a full disk: one line naming the folder (DiskFull)
        print(f'import_official_pca.py: error: {exc}', file=sys.stderr)
        return 1
    print(f'saved {args.out}: {describe_import(pca)}')
    sheet = sheet_path(args.out)  # a fit's masks of the threshold this import replaced
    if osp.isfile(sheet) and is_contact_sheet(sheet):
        os.remove(sheet)
        print(f'removed {osp.basename(sheet)}, the contact sheet of the fit it replaced')
    return 0


def make_pca(args):
    """The imported :class:`ForegroundPCA` (the encoder built, the threshold given or fitted)."""
    from genview_mm.apis.pca_encoder import build_encoder_from_args
    from genview_mm.apis.pca_fit import check_paths_exist, sample_paths, token_batches
    from genview_mm.datasets.image_sources import list_images
    from genview_mm.foreground.official import import_official_pca, load_vector

    items = list_images(args.fit_images, args.data_root) if args.fit_images else []
    if args.fit_images and not items:  # it failed inside torch.cat, after the encoder loaded
        raise ValueError(f'--fit-images {args.fit_images!r} holds no images to fit the '
                         'threshold on: give a folder or list of images, or the threshold '
                         'itself with --alpha')
    load_vector(args.vector)  # a bad file is refused before the encoder loads (gigabytes)
    if args.mean:
        load_vector(args.mean, 'mean vector')
    paths = sample_paths([it.path for it in items], args.num_images, args.seed,
                         args.per_folder) if args.fit_images else []
    check_paths_exist(paths, args.fit_images)  # a list read from the wrong folder, too
    encoder = build_encoder_from_args(args)
    fit_batches = None
    if args.fit_images:
        logging.info('fitting the threshold on %d of %d images', len(paths), len(items))
        batches, progress = token_batches(paths, encoder, args.batch_size, args.num_workers)

        def fit_batches():
            return progress(batches(), 'threshold (histogram rule)')
    return import_official_pca(args.vector, encoder, mean=args.mean, alpha=args.alpha,
                               fit_batches=fit_batches,
                               mask_type=args.mask_type)


if __name__ == '__main__':
    os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    sys.exit(main())
