r"""Write a toy COCO-format dataset for the tiny Mask R-CNN
(configs/demo/mask-rcnn_r18_fpn_tiny_cpu.py): images of filled rectangles and ellipses with
polygon masks, two categories.

    python tools/make_toy_coco.py data/demo_coco --num-images 16
    python tools/train.py configs/demo/mask-rcnn_r18_fpn_tiny_cpu.py \
        --cfg-options model.backbone.init_cfg=None          # from scratch (no converted backbone)

Writes OUT/images/*.png and OUT/annotations.json (the tiny config's layout and default data_root
is data/demo_coco/). A rerun with the same arguments writes the same files and replaces
nothing; an annotations.json or an images/*.png there that differs (other arguments, or not
this tool's, e.g. your own images) is refused, with nothing written, unless --overwrite.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('out_dir', help='output folder (images/, annotations.json)')
    p.add_argument('--num-images', type=int, default=16)
    p.add_argument('--size', type=int, default=64, help='image side in pixels')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--overwrite', action='store_true',
                   help='replace an OUT/annotations.json or OUT/images/*.png that differs from '
                   'the one these arguments give (without it the tool stops and writes nothing)')
    args = p.parse_args(argv)
    if not args.out_dir.strip():  # an unset variable: the files went into the current folder
        p.error('out_dir is empty (an unset variable?): name a folder')
    if args.num_images < 1 or args.size < 16:
        p.error('--num-images must be >= 1 and --size >= 16')
    if args.seed < 0:  # numpy's default_rng took it with a traceback
        p.error(f'--seed must be >= 0, got {args.seed}')
    from genview_mm.demo.coco_shapes import annotation_text, coco_shapes, write_coco_shapes
    from genview_mm.utils.file_safety import ReplaceRefused, holds_text
    ann = osp.join(args.out_dir, 'annotations.json')
    _, dataset = coco_shapes(args.num_images, args.size, args.seed)
    empty = osp.isfile(ann) and not osp.islink(ann) and osp.getsize(ann) == 0  # nothing to lose
    if not (args.overwrite or empty) and osp.lexists(ann) and \
            not holds_text(ann, annotation_text(dataset)):
        print(f'make_toy_coco.py: error: {ann} exists and differs from the annotations these '
              'arguments give (another --num-images, --size or --seed, or not this tool\'s): '
              'pass --overwrite to replace it, or another output folder (nothing was written)',
              file=sys.stderr)
        return 2
    try:
        ann = write_coco_shapes(args.out_dir, args.num_images, args.size, args.seed,
                                overwrite=args.overwrite)
    except ReplaceRefused as exc:  # a user's own image, or one drawn with other arguments
        print(f'make_toy_coco.py: error: {exc} (nothing was written)', file=sys.stderr)
        return 2
    except OSError as exc:  # OUT is a file, or read-only; or a full disk (DiskFull, 1)
        if hasattr(exc, 'exit_code'):
            print(f'make_toy_coco.py: error: {exc}', file=sys.stderr)
            return exc.exit_code
        print(f'make_toy_coco.py: error: cannot write into {args.out_dir}: '
              f'{exc.strerror or exc}; pass a writable output folder', file=sys.stderr)
        return 2
    print(f'wrote {args.num_images} images and {ann}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
