"""Generate GenView's adaptive-noise views for a dataset (sharded, resumable).

Single process::

    python tools/generate_views.py data/imagenet/train --pca fg_pca.pth --out-dir data/genview

Several GPUs / nodes (one process per GPU; RANK / WORLD_SIZE come from torchrun)::

    torchrun --nnodes $NNODES --node_rank $NODE_RANK --nproc_per_node 8 \\
        --master_addr $MASTER_ADDR --master_port 29500 \\
        tools/generate_views.py data/imagenet/train --pca fg_pca.pth --out-dir data/genview

Rerun the same command to resume. With several processes, rank 0 merges the per-rank manifest
parts into OUT_DIR/manifest.jsonl when all ranks are done (or run tools/merge_manifests.py).
"""
import argparse
import json
import logging
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('source', help='image folder, image list / MMPretrain annotation file, or '
                   'MMPretrain config (.py)')
    p.add_argument('--pca', required=True, help='foreground PCA file of the pipeline image '
                   'encoder (tools/fit_foreground_pca.py)')
    p.add_argument('--out-dir', required=True, help='output root (images/, manifests/)')
    p.add_argument('--data-root', default=None, help='root for relative paths in a list '
                   'file, or data_root override for a config')
    p.add_argument('--dataset-key', default='train_dataloader.dataset')
    p.add_argument('--pretrained', default='stabilityai/stable-diffusion-2-1-unclip',
                   help='unCLIP img2img pipeline: local folder or hub id (default: %(default)s)')
    p.add_argument('--dtype', default=None, choices=['float16', 'bfloat16', 'float32'],
                   help='default: float16 on GPU, float32 on CPU')
    p.add_argument('--device', default=None, help='default: cuda:LOCAL_RANK if available, '
                   'else cpu')
    p.add_argument('--scheduler', default=None, help='diffusers scheduler class to use')
    p.add_argument('--steps', type=int, default=20, help='inference steps (default: 20)')
    p.add_argument('--guidance', type=float, default=10.0, help='guidance scale (default: 10)')
    p.add_argument('--prompt', default='', help='text prompt (default: empty)')
    p.add_argument('--gen-size', type=int, default=None, help='generation size in px '
                   "(default: the pipeline's native size)")
    p.add_argument('--output-size', type=int, default=512, help='saved size (default: 512)')
    p.add_argument('--noise-bins', type=float, nargs='+', default=[0.2, 0.4, 0.6, 0.8])
    p.add_argument('--noise-levels', type=int, nargs='+', default=[0, 100, 200, 300, 400])
    p.add_argument('--seed', type=int, default=0, help='base seed (default: 0)')
    p.add_argument('--num-variations', type=int, default=1)
    p.add_argument('--batch-size', type=int, default=8, help='source images per batch')
    p.add_argument('--max-pipeline-batch', type=int, default=None,
                   help='cap on samples per pipeline call (memory)')
    p.add_argument('--no-level-buckets', action='store_true',
                   help='generate each batch as loaded (one pipeline call per level present) '
                   'instead of filling one full batch per noise level first')
    p.add_argument('--ext', default='.jpg', choices=['.jpg', '.png', '.webp'])
    p.add_argument('--quality', type=int, default=95)
    p.add_argument('--retry-failed', action='store_true', help='redo images recorded as failed')
    p.add_argument('--no-encoder-check', action='store_true',
                   help="accept a PCA file fitted under another encoder id (same width)")
    p.add_argument('--no-merge', action='store_true', help='do not merge parts at the end')
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(message)s')
    import genview_mm  # noqa: F401
    from genview_mm.generation.cli import run_from_args
    report = run_from_args(args)
    if report is not None:
        print(json.dumps({k: (v if not isinstance(v, list) else len(v))
                          for k, v in report.items()}))
    return 0


if __name__ == '__main__':
    os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    sys.exit(main())
