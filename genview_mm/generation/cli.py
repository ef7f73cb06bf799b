"""The logic behind ``tools/generate_views.py``: args -> generator -> sharded run -> merge."""
import argparse
import datetime
import logging
from typing import Dict, Optional

import torch

from .generator import AdaptiveNoiseGenerator
from .merge import merge_manifests
from .noise import validate_noise_rule
from .runner import generate_views
from .sharding import dist_env
from .sources import list_images

logger = logging.getLogger(__name__)


def _device(arg: Optional[str], local_rank: int) -> str:
    if arg:
        return arg
    return f'cuda:{local_rank}' if torch.cuda.is_available() else 'cpu'


def build_generator(args: argparse.Namespace, device: str) -> AdaptiveNoiseGenerator:
    """An :class:`AdaptiveNoiseGenerator` from the tool's arguments (pipeline loaded now)."""
    from mmpretrain.registry import MODELS
    gen = MODELS.build(dict(
        type='AdaptiveNoiseGenerator', pca=args.pca, pretrained=args.pretrained, device=device,
        torch_dtype=args.dtype, scheduler=args.scheduler, num_inference_steps=args.steps,
        guidance_scale=args.guidance, prompt=args.prompt, height=args.gen_size,
        width=args.gen_size, output_size=args.output_size, noise_bins=args.noise_bins,
        noise_levels=args.noise_levels, base_seed=args.seed,
        num_variations=args.num_variations, max_batch_size=args.max_pipeline_batch,
        check_encoder=not args.no_encoder_check))
    gen.pca  # noqa: B018  (load pipeline + PCA now: fail before any work)
    return gen


def run_from_args(args: argparse.Namespace) -> Optional[Dict]:
    """Run this process's share; with several processes, rank 0 merges after a barrier.

    Returns the merge report on the merging rank, else None.
    """
    validate_noise_rule(args.noise_bins, args.noise_levels)  # before any model loading
    rank, world, local_rank = dist_env()
    distributed = world > 1 and torch.distributed.is_available()
    if distributed and not torch.distributed.is_initialized():
        # gloo only for the final barrier; generation itself needs no communication
        torch.distributed.init_process_group('gloo', timeout=datetime.timedelta(days=7))
    items = list_images(args.source, args.data_root, args.dataset_key)
    if not items:
        raise ValueError(f'no images found in {args.source!r}')
    generator = build_generator(args, _device(args.device, local_rank))
    stats = generate_views(items, generator, args.out_dir, rank, world,
                           batch_size=args.batch_size, ext=args.ext, quality=args.quality,
                           retry_failed=args.retry_failed, show_progress=not args.no_progress,
                           level_buckets=not args.no_level_buckets)
    logger.info('rank %d/%d: %s', rank, world, stats)
    if distributed:
        torch.distributed.barrier()
    report = None
    if rank == 0 and not args.no_merge:
        report = merge_manifests(args.out_dir, items, args.num_variations)
        logger.info('merged %d rows (%d ok, %d failed) into %s; %d missing', report['rows'],
                    report['ok'], report['failed'], report['path'], len(report['missing']))
    if distributed:
        torch.distributed.destroy_process_group()
    return report
