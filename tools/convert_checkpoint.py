r"""Convert a GenView/MMPretrain pretraining checkpoint into backbone weights for transfer.

    python tools/convert_checkpoint.py work_dirs/genview_mocov2_r50_in1k/epoch_200.pth \
        checkpoints/genview_mocov2_r50_backbone.pth                    # MMPretrain / MMDetection
    python tools/convert_checkpoint.py CKPT resnet50_tv.pth --format torchvision
    python tools/convert_checkpoint.py CKPT resnet50_d2.pkl --format detectron2

Official GenView model-zoo files (e.g. mocov3_resnet50_8xb512-amp-coslr-100e_in1k_genview.pth)
are read the same way. The mmpretrain format keeps ``backbone.`` keys: use it with
``init_cfg=dict(type='Pretrained', checkpoint=PATH, prefix='backbone.')``. When the checkpoint's
own config normalised inputs differently from CLIP's mean/std (what the official GenView configs
and ours use), the tool prints the --cfg-options that make our transfer configs match.
"""
import argparse
import os.path as osp
import sys


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('src', help='pretraining checkpoint (runner checkpoint or state dict)')
    parser.add_argument('dst', help='output file')
    parser.add_argument('--format', choices=('mmpretrain', 'torchvision', 'detectron2'),
                        default=None, help='output format; defaults to detectron2 for a .pkl '
                        'output and mmpretrain otherwise (a detectron2 output must be named .pkl)')
    parser.add_argument('--prefix', default='backbone.',
                        help='key prefix of the backbone inside the checkpoint')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace a dst that is not a backbone file this tool wrote in '
                        'the mmpretrain or detectron2 format (a torchvision file carries no mark '
                        'of it: replacing one needs --overwrite too)')
    args = parser.parse_args()
    if not args.dst.strip():  # an unset variable: found by the last rename, after the work
        parser.error('the output path is empty: give the file to write the backbone weights to')
    return args


def main() -> None:
    args = parse_args()
    if getattr(sys.stdout, 'errors', None) == 'strict' and hasattr(sys.stdout, 'reconfigure'):
        # a path that is not UTF-8 (surrogate escapes) prints as \udcXX, not a traceback after
        sys.stdout.reconfigure(errors='backslashreplace')  # the file was written (exit 1)
    from genview_mm.evaluation.checkpoint_io import (
        CheckpointError,
        consumer_normalisation,
        matches_transfer_normalisation,
        normalisation_options,
    )
    from genview_mm.evaluation.convert import (
        check_apart,
        convert_checkpoint,
        is_converted_backbone,
    )
    from genview_mm.utils.atomic_write import DiskFull
    from genview_mm.utils.file_safety import NotWritable, ReplaceRefused, check_replace
    try:
        check_apart(args.src, args.dst)
    except ValueError as exc:
        print(f'convert_checkpoint.py: error: {exc}', file=sys.stderr)
        sys.exit(2)
    try:  # a training checkpoint (or any other file) given as dst is never replaced silently
        if not osp.isdir(args.dst):  # a folder: convert_checkpoint says which name to give
            check_replace(args.dst, is_converted_backbone, 'backbone weights', '--overwrite',
                          args.overwrite)
    except ReplaceRefused as err:
        print(f'convert_checkpoint.py: error: {err}', file=sys.stderr)
        sys.exit(2)
    fmt = args.format or ('detectron2' if args.dst.endswith('.pkl') else 'mmpretrain')
    if fmt == 'detectron2' and not osp.isdir(args.dst) and not args.dst.endswith('.pkl'):
        print(f'convert_checkpoint.py: error: {args.dst}: detectron2 reads a file as its pickle '
              'format only when the name ends in .pkl (any other name goes to torch.load, which '
              'fails on it): name the output .pkl', file=sys.stderr)
        sys.exit(2)
    try:
        info: dict = {}
        out = convert_checkpoint(args.src, args.dst, fmt, args.prefix, info=info)
    except (IsADirectoryError, NotWritable, FileNotFoundError) as err:  # a bad argument (a
        print(f'convert_checkpoint.py: error: {err}', file=sys.stderr)  # path that is not
        sys.exit(2)  # there), checked before the work
    except (CheckpointError, DiskFull) as err:
        sys.exit(f'convert_checkpoint.py: error: {err}')
    except OSError as err:  # writing dst (reading src gives a CheckpointError)
        sys.exit(f'convert_checkpoint.py: error: cannot write {args.dst} ({err.strerror or err}); '
                 'nothing was written: choose a writable location')
    weights = out['state_dict'] if fmt == 'mmpretrain' else out.get('model', out)
    print(f'wrote {len(weights)} backbone tensors to {args.dst} ({fmt} format)')
    norm = info['pretrain_normalisation']
    if fmt != 'mmpretrain':  # those libraries' defaults are ImageNet's (detectron2: caffe BGR)
        print(consumer_normalisation(norm, fmt))
    elif norm is None:  # nothing for the preflight to check against the transfer config
        print('note: the checkpoint records no config, so the input normalisation it was '
              'pretrained with is unknown; configs/benchmarks and configs/detection use the CLIP '
              "mean/std of GenView's pretraining: if yours differed, set data_preprocessor.mean"
              '/.std (detection: model.data_preprocessor.mean/.std) in --cfg-options')
    elif not matches_transfer_normalisation(norm):
        mean, std = ([round(v, 3) for v in norm[k]] for k in ('mean', 'std'))
        print(f'note: this checkpoint was pretrained on inputs normalised with mean={mean} '
              f'std={std} (to_rgb={norm["to_rgb"]}), not the CLIP mean/std that '
              'configs/benchmarks and configs/detection use. Append to --cfg-options of the '
              f'transfer command:\n  linear probe / semi-supervised: {normalisation_options(norm)}'
              f'\n  detection: {normalisation_options(norm, "model.data_preprocessor")}')


if __name__ == '__main__':
    main()
