"""Generate GenView's adaptive-noise views for a dataset (fixed shards, resumable).

Single process::

    python tools/generate_views.py data/imagenet/train --pca data/genview/pca/generator.pth \\
        --out-dir data/genview/views

Several GPUs / nodes (one process per GPU; RANK / WORLD_SIZE come from torchrun)::

    torchrun --nnodes $NNODES --node_rank $NODE_RANK --nproc_per_node 8 \\
        --master_addr $MASTER_ADDR --master_port 29500 \\
        tools/generate_views.py data/imagenet/train --pca data/genview/pca/generator.pth \\
        --out-dir data/genview/views

Separate launches (a Slurm job array: tools/slurm_generate.sh)::

    python tools/generate_views.py ... --rank $TASK --world-size $NTASKS

The sorted images are cut into shards of --shard-size; worker RANK of WORLD_SIZE takes the
shards s with s % WORLD_SIZE == RANK, and a finished shard's record (OUT_DIR/shards/) marks it
done. The worker that finds every shard done merges them into OUT_DIR/manifest.jsonl (so does
tools/merge_manifests.py, at any time). Rerun with any number of workers to resume: finished
shards are skipped, missing or empty outputs and transient failures are redone.
OUT_DIR/generation_settings.json records the settings that change the views; a rerun with
other settings is refused (see --overwrite).
"""
import argparse
import logging
import math
import os
import os.path as osp
import sys

TOOLS = osp.dirname(osp.abspath(__file__))
sys.path[:0] = [osp.dirname(TOOLS), TOOLS]


class Parser(argparse.ArgumentParser):
    """An argument error is one line naming the flag (the usage is behind --help)."""

    def error(self, message):
        self.exit(2, f'{self.prog}: error: {message}\n')


def number_in(kind, low, high=None, low_open=False):
    """An argparse type: ``kind(text)`` in ``[low, high]`` (``(low, high]`` with ``low_open``)."""
    def parse(text: str):
        value = kind(text)
        if value != value:  # NaN passes every comparison below
            raise argparse.ArgumentTypeError(f'must be a number, got {text}')
        if value < low or (low_open and value == low) or (high is not None and value > high):
            span = (f'>= {low}' if high is None else f'in ({low}, {high}]' if low_open else
                    f'in {low}..{high}')
            raise argparse.ArgumentTypeError(f'must be {span}, got {value}')
        return value
    return parse


positive_int = number_in(int, 1)


def finite_float(text: str) -> float:
    """An argparse type: a finite float (a NaN guidance was recorded, then refused its own
    run: 'guidance: nan -> nan')."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f'must be a finite number, got {text}')
    return value


def multiple_of_8(text: str) -> int:
    """A generation size: the pipeline's VAE works on 8-pixel blocks (diffusers refuses other
    sizes at the first call, which failed every image of the run)."""
    value = positive_int(text)
    if value % 8:
        near = sorted({max(8, value - value % 8), value - value % 8 + 8})  # 4: 8 alone
        raise argparse.ArgumentTypeError(f'must be a multiple of 8, got {value} (e.g. '
                                         f'{" or ".join(map(str, near))})')
    return value


def check_paths(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Paths named on the command line, checked before any heavy import."""
    if not args.out_dir.strip():  # an unset variable: the views went to the current folder
        p.error('--out-dir is empty: pass the folder for the views')
    if not args.pretrained.strip():
        p.error('--pretrained is empty: pass an unCLIP pipeline folder or hub id')
    if not osp.exists(args.source):
        p.error(f'source {args.source!r} does not exist: pass an image folder, an image list / '
                'MMPretrain annotation file, or an MMPretrain config (.py)')
    if args.data_root is not None and not osp.isdir(args.data_root):
        p.error(f'--data-root {args.data_root!r} is not a folder: pass the folder that the '
                "list's relative paths start from")
    if not osp.isfile(args.pca):
        p.error(f'--pca {args.pca!r} does not exist: fit one with tools/fit_foreground_pca.py')
    if (args.pretrained.startswith(('/', '.', '~')) or args.pretrained.count('/') != 1) and \
            not osp.isdir(osp.expanduser(args.pretrained)):  # a hub id: 'owner/name'
        found = ('is a file (a single-file checkpoint?), not a diffusers pipeline folder'
                 if osp.isfile(osp.expanduser(args.pretrained)) else
                 'unCLIP pipeline folder not found')
        p.error(f'--pretrained {args.pretrained!r}: {found}; pass a folder saved with '
                'save_pretrained or a hub id')
    from _early import writable_problem
    problem = writable_problem(args.out_dir)
    if problem:
        p.error(f'--out-dir {args.out_dir!r}: {problem}: pass a writable folder path')


def parse_args(argv=None):
    p = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
               allow_abbrev=False)  # slurm_generate.sh passes some options on by their names
    p.add_argument('source', help='image folder, image list / MMPretrain annotation file, or '
                   'MMPretrain config (.py)')
    p.add_argument('--pca', required=True, help='foreground PCA file of the pipeline image '
                   'encoder (tools/fit_foreground_pca.py)')
    p.add_argument('--out-dir', required=True, help='output root (images/, shards/)')
    p.add_argument('--data-root', default=None, help='root for relative paths in a list '
                   'file, or data_root override for a config')
    p.add_argument('--dataset-key', default=None,
                   help='with a config SOURCE: the dotted key of its dataset, a list item by '
                   'its index, e.g. train_dataloader.dataset.datasets.0 (default: '
                   'train_dataloader.dataset)')
    p.add_argument('--pretrained', default='stabilityai/stable-diffusion-2-1-unclip',
                   help='unCLIP img2img pipeline: local folder or hub id (default: %(default)s)')
    p.add_argument('--dtype', default=None, choices=['float16', 'bfloat16', 'float32'],
                   help='default: float16 on GPU, float32 on CPU')
    p.add_argument('--device', default=None, help='default: cuda:LOCAL_RANK if available, '
                   'else cpu')
    p.add_argument('--scheduler', default=None, help='diffusers scheduler class to use')
    p.add_argument('--steps', type=positive_int, default=20,
                   help='inference steps (default: 20)')
    p.add_argument('--guidance', type=finite_float, default=10.0,
                   help='guidance scale (default: 10)')
    p.add_argument('--prompt', default='', help='text prompt (default: empty)')
    p.add_argument('--gen-size', type=multiple_of_8, default=None, help='generation size in px '
                   "(default: the pipeline's native size)")
    p.add_argument('--output-size', type=positive_int, default=512,
                   help='saved size (default: 512)')
    p.add_argument('--noise-bins', type=float, nargs='+', default=[0.2, 0.4, 0.6, 0.8])
    p.add_argument('--noise-levels', type=int, nargs='+', default=[0, 100, 200, 300, 400])
    p.add_argument('--seed', type=int, default=0, help='base seed (default: 0)')
    p.add_argument('--num-variations', type=positive_int, default=1)
    p.add_argument('--batch-size', type=positive_int, default=8, help='source images per batch')
    p.add_argument('--max-pipeline-batch', type=positive_int, default=None,
                   help='cap on samples per pipeline call (memory; without it a '
                   'call holds up to --batch-size x --num-variations)')
    p.add_argument('--no-level-buckets', action='store_true',
                   help='no effect, kept so that older command lines run: each batch goes to '
                   'the pipeline as loaded, its images at their own noise levels (per-level '
                   'buckets only added partial calls)')
    p.add_argument('--output', default='auto', choices=['auto', 'pil', 'tensor'],
                   help='views kept as tensors and resized on the device, or made by PIL '
                   '(auto: tensor on CUDA, pil on CPU; recorded: the resizes differ by up to 2 '
                   'levels)')
    p.add_argument('--compile', action='store_true', help='torch.compile the UNet and VAE '
                   'decoder at a fixed pipeline batch (--max-pipeline-batch, default '
                   '--batch-size x --num-variations; the tail padded)')
    p.add_argument('--ext', default='.jpg', choices=['.jpg', '.png', '.webp'])
    p.add_argument('--quality', type=number_in(int, 1, 100), default=95)
    p.add_argument('--retry-failed', action='store_true', help='also redo images recorded as '
                   'undecodable (transient failures are always redone)')
    p.add_argument('--verify', action='store_true', help='decode every recorded output and '
                   'redo damaged ones (default: only missing or empty ones; slow)')
    p.add_argument('--overwrite', action='store_true', help='if OUT_DIR holds views made with '
                   'other settings, delete the views and records this tool wrote there and '
                   'start over (one process only)')
    p.add_argument('--max-fail-fraction', type=number_in(float, 0, 1, low_open=True),
                   default=0.5, help='exit with status 1 if the images that fail in this '
                   "run are at least this share of the worker's images (default: 0.5)")
    p.add_argument('--no-encoder-check', action='store_true',
                   help='accept a PCA file made for another encoder of the same token width, '
                   'grid and input size (the weights/name check is skipped)')
    p.add_argument('--no-merge', action='store_true', help='do not merge the shard records '
                   'when every shard is done')
    p.add_argument('--rank', type=int, default=None, help='this task\'s share (with '
                   '--world-size; instead of RANK/WORLD_SIZE, no process group)')
    p.add_argument('--world-size', type=int, default=None, help='number of shares')
    p.add_argument('--shard-size', type=positive_int, default=1000, help='images per shard '
                   '(recorded: fixed for an --out-dir; default: 1000)')
    p.add_argument('--writers', type=number_in(int, 0), default=4,
                   help='threads encoding and writing views (default: 4)')
    p.add_argument('--lock-wait', type=number_in(float, 0), default=0.0,
                   help='seconds to wait for another '
                   'live writer of the same shard to exit (default: 0, refuse at once)')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--check-args', action='store_true', help='check the arguments and paths, '
                   'then exit without loading a model (tools/slurm_generate.sh runs this '
                   'before it submits)')
    args = p.parse_args(argv)
    largest = {'.jpg': 65500, '.webp': 16383}.get(args.ext)  # what libjpeg and libwebp write
    if largest and args.output_size > largest:  # every view failed (or a traceback), retried
        p.error(f'--output-size {args.output_size}: a {args.ext} image is at most {largest} px '
                'a side: pass a smaller size, or --ext .png')
    check_paths(p, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    import genview_mm  # noqa: F401
    from genview_mm.apis.generation.job import ABORTS, check_args, run_from_args
    from genview_mm.utils.interrupt import exit_on_sigterm
    exit_on_sigterm()  # a job's time limit or scancel: the views written so far are journaled
    try:
        if args.check_args:
            check_args(args)
            return 0
        return run_from_args(args)
    except ABORTS as exc:
        print(f'generate_views.py: error: {exc}', file=sys.stderr)
        return exc.exit_code


if __name__ == '__main__':
    os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    sys.exit(main())
