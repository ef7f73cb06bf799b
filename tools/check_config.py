r"""Check everything a config needs before a real run, and say how to make what is missing.

    python tools/check_config.py configs/genview_mocov2_r50_in1k.py
    python tools/check_config.py configs/detection/genview_mask-rcnn_r50-fpn_ms-1x_coco.py \
        --checkpoint work_dirs/mask_rcnn/epoch_12.pth       # what tools/test.py needs

Checks dataset folders and annotation files, the GenView manifest (parses, covers a sample of
the dataset), the pair scorer's encoder (local, Hugging Face cache or hub) and PCA file, and
checkpoints. Prints the checklist (only problems and notes with --quiet) and exits with 0 when
all is there, 2 otherwise. The launch scripts run it once before starting their processes, with the
options they pass to tools/train.py or tools/test.py (they are checked as that tool checks them,
a mistyped option or an --out it would refuse among them, so they stop here, not on every rank;
``--skip-preflight`` among them turns the checks off; after ``--preflight`` they start nothing).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from _launch_args import add_cfg_options, cfg_options  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, allow_abbrev=False,  # as train.py
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', nargs='?', default=None,
                        help='checkpoint to test (implies --mode test)')
    parser.add_argument('--checkpoint', dest='checkpoint_opt', default=None,
                        help='the same, as an option')
    parser.add_argument('--mode', choices=['train', 'test'], default=None,
                        help='what the run does (default: test with a checkpoint, else train)')
    add_cfg_options(parser, 'override config settings, as tools/train.py takes them')
    # tools/train.py's options that change what the run needs (the launch scripts pass them)
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='check the checkpoint to resume (no path: the one the work dir\'s '
                        'last_checkpoint names)')
    parser.add_argument('--work-dir', help='the work dir of --resume without a path')
    parser.add_argument('--no-validate', action='store_true',
                        help='training will not validate: the validation data is not needed')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help="training will scale the lr: the config's auto_scale_lr is needed")
    parser.add_argument('--quiet', action='store_true',
                        help='print only missing items and notes (nothing when all is there)')
    parser.add_argument('--preflight', action='store_true',
                        help='print the whole checklist, even with --quiet (the launch scripts '
                        "pass on the user's flag, then stop)")
    parser.add_argument('--procs-per-node', type=int, default=None,
                        help='the processes, one per GPU, a launcher starts on this node '
                        '(dist_train.sh, dist_test.sh): more than its CUDA devices is an error')
    parser.add_argument('--skip-preflight', action='store_true',
                        help="check nothing (the launch scripts pass on the user's flag); the "
                        'config and --resume are still read')
    args, unknown = parser.parse_known_args(argv)  # the launchers pass train/test options
    args.checkpoint = args.checkpoint_opt or args.checkpoint
    args.mode = args.mode or ('test' if args.checkpoint else 'train')
    if args.mode == 'test':  # train.py's options, read above: tools/test.py refuses them
        unknown += [flag for flag, given in (
            ('--resume' if args.resume in (None, 'auto') else f'--resume={args.resume}',
             args.resume is not None), ('--no-validate', args.no_validate),
            ('--auto-scale-lr', args.auto_scale_lr)) if given]
    if not osp.isfile(args.config):  # this tool's usage, not the one it checks options for
        parser.error(f'config {args.config} not found')
    args.tool = run_tool(args.mode)
    args.tool_args = args.tool.parse_args(  # exits as the tool would, before any rank starts
        [args.config, *([args.checkpoint or 'CHECKPOINT'] if args.mode == 'test' else []),
         *(['--work-dir', args.work_dir] if args.work_dir is not None else []), *unknown],
        prog=f'{args.mode}.py')
    return args


def run_tool(mode: str):
    """tools/train.py or tools/test.py as a module (its ``parse_args`` checks the options)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(  # not `import test`: the stdlib has one
        f'_genview_{mode}_tool', osp.join(osp.dirname(osp.abspath(__file__)), f'{mode}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    args = parse_args(argv)
    import genview_mm  # noqa: F401
    from genview_mm.apis import GenViewSettingError, load_config
    from genview_mm.apis.launch import OptionRefused, apply_train_options, run_work_dir
    from genview_mm.apis.preflight import (
        format_checklist,
        has_notes,
        preflight_passes,
        run_preflight,
    )
    from genview_mm.utils.dist import check_processes_per_node
    try:
        if args.procs_per_node is not None:  # before any rank starts: else 'invalid device
            check_processes_per_node(args.procs_per_node)  # ordinal' from the ranks past it
    except ValueError as exc:
        print(f'check_config.py: error: {exc}', file=sys.stderr)
        return 2
    try:
        cfg = load_config(args.config, cfg_options(args))
        # a work dir holding the config (the default one too): each rank refused it
        run_work_dir(cfg, args.work_dir, args.config)
        if args.mode == 'train':
            apply_train_options(cfg, args)
        elif getattr(args.tool_args, 'amp', False):
            args.tool.refuse_amp(cfg)  # as test.py on each rank would: once, before they start
    except (GenViewSettingError, OptionRefused) as exc:
        print(f'check_config.py: error: {exc}', file=sys.stderr)
        return 2
    if args.skip_preflight and not args.preflight:  # as tools/train.py: --preflight wins
        return 0
    checks = run_preflight(cfg, args.mode, args.checkpoint)
    ok = preflight_passes(checks)
    verbose = args.preflight or not args.quiet
    if verbose or not ok or has_notes(checks):
        print(format_checklist(checks, args.config, verbose=verbose), flush=True)
    return 0 if ok else 2


if __name__ == '__main__':
    sys.exit(main())
