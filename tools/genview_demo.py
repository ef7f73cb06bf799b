"""The whole GenView pipeline on an embedded default (photos from scikit-image, tiny models).

    python tools/genview_demo.py [--out-dir work_dirs/genview_demo] [--unclip ID_OR_DIR]
                                 [--scorer-clip ID_OR_DIR] [--num-images N] [--epochs N]
                                 [--gpus N]

Real weights: --unclip stabilityai/stable-diffusion-2-1-unclip --scorer-clip
openai/clip-vit-base-patch32 (or local folders; also GENVIEW_UNCLIP / GENVIEW_SCORER_CLIP).
Rerun the same command to resume an interrupted demo.
"""
import argparse
import os

# the demo config's (configs/demo/mocov2_r18_tiny_cpu.py) images per process in a training step
# (drop_last: fewer images make no step) and MoCo queue length (a multiple of a step's images)
BATCH_SIZE = 8
QUEUE_LEN = 64


def check_sizes(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit 2) for sizes a later stage would fail on, before any stage runs: with
    --gpus 3 training died in stage 5 on MoCo's queue check, after minutes of stages 1-4."""
    if args.epochs < 1:
        p.error(f'--epochs must be >= 1, got {args.epochs}')
    gpus = [g for g in range(1, QUEUE_LEN // BATCH_SIZE + 1) if QUEUE_LEN % (BATCH_SIZE * g) == 0]
    if args.gpus not in gpus:
        p.error(f'--gpus must be one of {", ".join(map(str, gpus))} (the MoCo queue of '
                f'{QUEUE_LEN} keys takes {BATCH_SIZE} per process at each step), got {args.gpus}')
    if args.num_images < BATCH_SIZE * args.gpus:
        p.error(f'--num-images must be >= {BATCH_SIZE * args.gpus} with --gpus {args.gpus} '
                f'({BATCH_SIZE} images per process in a training step), got {args.num_images}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out-dir', default='work_dirs/genview_demo')
    parser.add_argument('--unclip', default=os.environ.get('GENVIEW_UNCLIP'),
                        help='Stable unCLIP img2img pipeline (default: a tiny random one)')
    parser.add_argument('--scorer-clip', default=os.environ.get('GENVIEW_SCORER_CLIP'),
                        help='CLIP vision encoder of the pair scorer (default: a tiny random one)')
    parser.add_argument('--num-images', type=int, default=48,
                        help=f'photos in the dataset (>= {BATCH_SIZE} per training process; '
                        '76 are distinct, more repeat them)')
    parser.add_argument('--epochs', type=int, default=4, help='pretraining epochs (>= 1)')
    parser.add_argument('--gpus', type=int, default=2,
                        help='training processes, one per GPU (CPU processes without CUDA): '
                        '1, 2, 4 or 8')
    args = parser.parse_args()
    check_sizes(parser, args)
    for flag, model in (('--unclip', args.unclip), ('--scorer-clip', args.scorer_clip)):
        if model and model.startswith(('/', '.', '~')) and not os.path.isdir(
                os.path.expanduser(model)):
            parser.error(f'{flag} {model}: no such folder; pass a folder saved with '
                         'save_pretrained or a hub id')
    import genview_mm  # noqa: F401  (after parsing: --help answers without torch)
    from genview_mm.utils.interrupt import exit_on_sigterm
    exit_on_sigterm()  # `kill`/`timeout` of the demo stops the stage it runs (see Demo.run_tool)
    from genview_mm.demo.pipeline import Demo, check_out_dir
    from genview_mm.utils.dist import check_processes_per_node
    try:
        check_processes_per_node(args.gpus, '--gpus')  # else stage 5 fails, after stages 1-4
        check_out_dir(args.out_dir)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        Demo(args.out_dir, args.unclip, args.scorer_clip, args.num_images, args.epochs,
             args.gpus).run()
    except RuntimeError as exc:  # a stage failed: its command, its log and what to do
        raise SystemExit(f'genview_demo.py: error: {exc}') from None


if __name__ == '__main__':
    main()
