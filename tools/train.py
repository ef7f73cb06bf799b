"""Train an MMPretrain or MMDetection config (the config's ``default_scope`` decides).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v]
    python tools/train.py CONFIG --preflight      # only check what the config needs
    bash tools/dist_train.sh CONFIG GPUS [same options]

Before anything is built, rank 0 checks the data, views, models and checkpoints the config
names (genview_mm.apis.preflight) and stops with a short checklist if one is missing.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from _launch_args import add_common_args, cfg_options, check_work_dir  # noqa: E402


def parse_args(argv=None, prog=None) -> argparse.Namespace:
    """The options, checked before anything heavy is imported or any rank starts
    (tools/check_config.py runs this for the launchers, with the options they pass on)."""
    parser = argparse.ArgumentParser(
        prog=prog, description='Train a model (MMPretrain or MMDetection config)',
        allow_abbrev=False)  # the launchers match --preflight
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from the given checkpoint, or from the latest checkpoint in '
                        'the work dir if no path is given')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by the actual batch size')
    add_common_args(parser)
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config {args.config} not found')
    check_work_dir(parser, args.work_dir, args.config)
    return args


def main() -> None:
    args = parse_args()
    import genview_mm  # noqa: F401  (applies genview_mm.compat before any mmpretrain import)
    from genview_mm.apis import GenViewSettingError
    from genview_mm.apis.launch import (
        OptionRefused,
        apply_train_options,
        build_runner,
        load_cfg,
        preflight_or_exit,
        prepare_cfg,
    )
    from genview_mm.utils.dist import is_first_rank
    try:
        cfg = load_cfg(args, cfg_options(args))
        apply_train_options(cfg, args)  # --resume (the file named now: the preflight checks it)
    except (GenViewSettingError, OptionRefused) as exc:
        print(f'train.py: error: {exc}', file=sys.stderr)
        sys.exit(2)
    from genview_mm.apis.preflight import missing_train_settings
    unable = missing_train_settings(cfg, args.config)
    if unable:  # the runner's KeyError traceback, on every rank (--skip-preflight too)
        print(f'train.py: error: {unable}', file=sys.stderr)
        sys.exit(2)
    if args.preflight or (not args.skip_preflight and is_first_rank(args.launcher)):
        preflight_or_exit(cfg, args, 'train')
    elif cfg.get('resume') and isinstance(cfg.get('load_from'), str) and \
            '://' not in cfg.load_from:  # --skip-preflight (a login node's advice, and the
        from genview_mm.evaluation.checkpoint_io import CheckpointError, check_torch_file
        try:  # launchers' ranks): a file to resume that is gone or cut short is still one
            check_torch_file(cfg.load_from)  # line, not a traceback on every rank
        except (OSError, CheckpointError) as exc:
            print(f'train.py: error: --resume: {exc}', file=sys.stderr)
            sys.exit(2)
    try:  # --launcher without the variables its launcher sets
        prepare_cfg(cfg, args.launcher, args.work_dir, args.config, amp=args.amp)
    except OptionRefused as exc:
        print(f'train.py: error: {exc}', file=sys.stderr)
        sys.exit(2)
    from genview_mm.engine import RunCheckFailed, StartCheckFailed
    from genview_mm.utils.atomic_write import DiskFull
    try:
        build_runner(cfg).train()
    except StartCheckFailed as exc:  # a hook's check of the data, before the first iteration
        print(f'train.py: error: {exc}', file=sys.stderr)
        sys.exit(2)
    except (RunCheckFailed, DiskFull) as exc:  # during training (the saved checkpoints stay;
        print(f'train.py: error: {exc}', file=sys.stderr)  # a full disk: no part of a new one)
        sys.exit(1)


if __name__ == '__main__':
    main()
