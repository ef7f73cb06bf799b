"""Evaluate a checkpoint on an MMPretrain or MMDetection config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--out FILE]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [same options]
"""
import argparse
import os.path as osp

import genview_mm  # noqa: F401  (applies genview_mm.compat before any mmpretrain import)
from genview_mm.utils.launch import add_common_args, build_runner, load_cfg, prepare_cfg
from mmengine.config import Config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to this pickle file (.pkl)')
    parser.add_argument('--show-dir', help='save drawn predictions to this folder, relative to '
                        'the run\'s timestamped folder inside the work dir')
    add_common_args(parser)
    return parser.parse_args()


def enable_show_dir(cfg: Config, show_dir: str) -> None:
    hook = cfg.default_hooks.get('visualization')
    if hook is None:
        raise ValueError('--show-dir needs a `visualization` hook in default_hooks; the config '
                         'has none.')
    if cfg.get('default_scope') == 'mmdet':  # DetVisualizationHook
        hook['draw'] = True
        hook['test_out_dir'] = show_dir
    else:  # mmpretrain's VisualizationHook
        hook['enable'] = True
        hook['out_dir'] = show_dir


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} does not exist')
    cfg = load_cfg(args)
    prepare_cfg(cfg, args.launcher, args.work_dir, args.config, amp=False)
    cfg.load_from = args.checkpoint
    if args.show_dir:
        enable_show_dir(cfg, args.show_dir)
    if args.out:
        if not args.out.endswith(('.pkl', '.pickle')):
            raise ValueError('--out must be a .pkl file')
        cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(
            cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
        cfg.test_evaluator.append(dict(type='DumpResults', out_file_path=args.out))
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    runner = build_runner(cfg)
    metrics = runner.test()
    if runner.rank == 0:
        print(metrics)


if __name__ == '__main__':
    main()
