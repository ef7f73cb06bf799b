"""Arguments shared by the PCA tools (tools/fit_foreground_pca.py, tools/import_official_pca.py).

Plain argparse, no heavy import: the tools parse and check their arguments before torch and
genview_mm load, so --help and usage errors answer at once.
"""
import argparse
import os
import os.path as osp
from typing import Optional, Sequence, Tuple

#: the generator's encoder: the image encoder of Stable unCLIP 2.1 (OpenCLIP ViT-H/14);
#: genview_mm.apis.pca_encoder uses the same default
DEFAULT_ENCODER = 'stabilityai/stable-diffusion-2-1-unclip'


def add_encoder_args(p: argparse.ArgumentParser,
                     input_size_default: str = "the model's own; the paper's scorer uses "
                                               '224') -> None:
    """``--encoder``/``--subfolder`` (transformers CLIP), ``--timm-model`` & co., device.
    ``input_size_default`` is what the tool uses when ``--input-size`` is not given (its help
    says it)."""
    p.add_argument('--encoder', default=DEFAULT_ENCODER,
                   help='CLIP vision encoder: local folder or hub id; a diffusers unCLIP '
                   'pipeline folder, or the default hub id, means its image_encoder (default: '
                   '%(default)s)')
    p.add_argument('--subfolder', default=None,
                   help="subfolder of --encoder holding it (default: 'image_encoder' for a "
                   'local diffusers pipeline folder or the default hub id, none otherwise: give '
                   "'image_encoder' for another pipeline's hub id)")
    p.add_argument('--timm-model', default=None,
                   help='a timm model instead of a transformers CLIP; the paper\'s scorer is '
                   'convnext_base.clip_laion2b_augreg (its last feature map gives the tokens)')
    p.add_argument('--timm-checkpoint', default=None,
                   help="local weights file for --timm-model (default: timm's pretrained)")
    p.add_argument('--input-size', type=int, default=None,
                   help=f'input side for --timm-model (default: {input_size_default})')
    p.add_argument('--device', default=None, help="default: 'cuda' if available else 'cpu'")
    p.add_argument('--fp16', action='store_true', help='encode in float16 (meant for a GPU; '
                   'a CPU is not refused, only slow)')


def int_at_least(low: int):
    """An argparse type: an integer >= ``low``, else a usage error naming the flag (exit 2)."""
    def parse(text: str) -> int:
        value = int(text)  # not a number: argparse's "invalid int value"
        if value < low:
            raise argparse.ArgumentTypeError(f'must be >= {low}, got {value}')
        return value
    parse.__name__ = 'int'
    return parse


def add_loader_args(p: argparse.ArgumentParser) -> None:
    """``--batch-size`` (>= 1) and ``--num-workers`` (>= 0) of the image loading: a 0 or a
    negative value was taken and failed inside the DataLoader, after the encoder loaded (or
    was never used: --alpha)."""
    p.add_argument('--batch-size', type=int_at_least(1), default=64,
                   help='images per encoder call, >= 1 (default: %(default)s)')
    p.add_argument('--num-workers', type=int_at_least(0), default=default_workers(),
                   help='image decoding workers, >= 0 (0: in the main process; default: '
                   '%(default)s on this machine)')


def check_encoder_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors for the ``--timm-*`` options: given without ``--timm-model`` they were
    ignored (the CLIP --encoder was fitted), and ``--encoder``/``--subfolder`` with it (the
    timm model was fitted), a missing checkpoint was a bare FileNotFoundError, a tiny input a
    convolution traceback."""
    if args.timm_model and (args.encoder != DEFAULT_ENCODER or args.subfolder is not None):
        p.error('--encoder and --subfolder name a transformers CLIP, --timm-model a timm model: '
                'give one of them (the CLIP was ignored and the timm model fitted)')
    if (args.timm_checkpoint or args.input_size is not None) and not args.timm_model:
        p.error('--timm-checkpoint and --input-size go with --timm-model (the CLIP --encoder '
                'takes its own input size)')
    if args.timm_checkpoint and not osp.isfile(args.timm_checkpoint):
        p.error(f'--timm-checkpoint {args.timm_checkpoint!r} is not a file')
    if args.input_size is not None and args.input_size < 32:
        p.error(f'--input-size must be >= 32, got {args.input_size}')


def check_output_file(p: argparse.ArgumentParser, path: str, flag: str = '--out',
                      inputs: Sequence[Tuple[str, Optional[str]]] = ()) -> None:
    """Exit with a usage error unless ``path`` can be written: a file name (``DIR/`` was taken,
    and the save failed after the fit, leaving the folder made), not one of the tool's
    ``inputs`` (``(flag, path)``; links resolved: the authors' vector was replaced by the PCA
    file, also with ``--overwrite``), in a folder, or below the nearest one that exists, that
    is writable. Nothing is created (the save creates the folder): a start refused later
    leaves nothing behind."""
    from _early import same_file, writable_problem
    if path.endswith(('/', os.sep)):
        p.error(f"{flag} {path} ends with '/': give the file to write, e.g. "
                f"{osp.join(path, 'pca.pth' if flag == '--out' else 'sheet.png')}")
    for name, given in inputs:
        if given and same_file(given, path):
            p.error(f'{flag} {path} is the {name} {given} (the same file): writing would replace '
                    'that input; give another path')
    problem = writable_problem(osp.dirname(osp.abspath(path)))
    if problem:
        p.error(f'{flag} {path}: {problem}; choose another path')
    if osp.exists(path) and not os.access(path, os.W_OK):
        p.error(f'{flag} {path}: not writable; choose a writable location')


def default_workers() -> int:
    """DataLoader workers that fit this machine: one core is left to the main process."""
    return max(0, min(8, (os.cpu_count() or 1) - 1))
