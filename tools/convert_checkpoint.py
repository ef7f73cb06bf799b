"""Convert a GenView/MMPretrain pretraining checkpoint into backbone weights for transfer.

    python tools/convert_checkpoint.py work_dirs/genview_mocov2_r50_in1k/epoch_200.pth \
        checkpoints/genview_mocov2_r50_backbone.pth                    # MMPretrain / MMDetection
    python tools/convert_checkpoint.py CKPT resnet50_tv.pth --format torchvision
    python tools/convert_checkpoint.py CKPT resnet50_d2.pkl --format detectron2

The mmpretrain format keeps ``backbone.`` keys: use it with
``init_cfg=dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')``.
"""
import argparse

from genview_mm.evaluation.convert import FORMATS, convert_checkpoint


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='pretraining checkpoint (runner checkpoint or state dict)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--format', choices=FORMATS, default=None,
                        help='output format; defaults to detectron2 for a .pkl output and '
                        'mmpretrain otherwise')
    parser.add_argument('--prefix', default='backbone.',
                        help='key prefix of the backbone inside the checkpoint')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    fmt = args.format or ('detectron2' if args.dst.endswith('.pkl') else 'mmpretrain')
    out = convert_checkpoint(args.src, args.dst, fmt, args.prefix)
    weights = out['state_dict'] if fmt == 'mmpretrain' else out.get('model', out)
    print(f'wrote {len(weights)} backbone tensors to {args.dst} ({fmt} format)')


if __name__ == '__main__':
    main()
