"""The logic behind ``tools/generate_views.py``: checks -> settings -> generator -> sharded run
-> barrier (torchrun only) -> merge. Errors that need the user raise :mod:`.errors`."""
import argparse
import json
import logging
from typing import Dict, Optional

import torch

from .checks import check_args, settings_from_args
from .errors import SetupError, UsageError
from .failures import summarize_failures
from .generator import AdaptiveNoiseGenerator
from .launch import Launch, close_group, final_barrier, init_group, launch_from
from .locking import PartLock
from .manifest import part_paths
from .merge import merge_manifests
from .pipeline_loader import resolve_dtype
from .runner import generate_views
from .settings import check_settings, clear_outputs, mismatch_message, write_settings
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
    try:
        gen.pca  # noqa: B018  (load pipeline + PCA now: fail before any work)
    except (OSError, ValueError) as exc:
        raise SetupError(str(exc)) from exc
    return gen


def prepare_out_dir(out_dir: str, settings: Dict, launch: Launch, overwrite: bool) -> None:
    """Check ``settings`` against what ``out_dir`` holds (clearing it first with
    ``overwrite`` if they differ), then record them."""
    if overwrite and launch.world_size > 1 and not launch.torchrun:
        raise UsageError('--overwrite with separate launches (a job array) would let one task '
                         'delete what another already wrote: delete --out-dir once before '
                         'submitting instead')
    if overwrite and launch.rank == 0 and mismatch_message(out_dir, settings):
        locks = [PartLock(p).acquire() for p in part_paths(out_dir)]  # no live writer left
        try:
            logger.warning('--overwrite: deleting the images and manifests of %s', out_dir)
            clear_outputs(out_dir)
        finally:
            for lock in locks:
                lock.release()
    if overwrite and launch.torchrun:
        torch.distributed.barrier()  # the other ranks check after rank 0 cleared
    check_settings(out_dir, settings)
    write_settings(out_dir, settings)


def run_from_args(args: argparse.Namespace) -> int:
    """Run this process's share; under torchrun rank 0 merges after the final barrier, a
    single process merges at the end, separate launches leave merging to its own step.

    Returns:
        int: exit code: 0, or 1 if too many images failed or the merge could not run.
    """
    check_args(args)  # before any model loads
    launch = launch_from(args.rank, args.world_size)
    device = _device(args.device, launch.local_rank)
    dtype = str(resolve_dtype(args.dtype, torch.device(device))).replace('torch.', '')
    settings = settings_from_args(args, dtype)
    if launch.torchrun:
        init_group(args.barrier_timeout)
    try:
        prepare_out_dir(args.out_dir, settings, launch, args.overwrite)
        items = list_images(args.source, args.data_root, args.dataset_key)
        if not items:
            raise UsageError(f'no images found in source {args.source!r}')
        generator = build_generator(args, device)
        stats = generate_views(items, generator, args.out_dir, launch.rank, launch.world_size,
                               batch_size=args.batch_size, ext=args.ext, quality=args.quality,
                               retry_failed=args.retry_failed, verify=args.verify,
                               show_progress=not args.no_progress,
                               level_buckets=not args.no_level_buckets,
                               lock_wait=args.lock_wait)
        print(f'rank {launch.rank}/{launch.world_size}: share {stats["share"]}, skipped '
              f'{stats["skipped"]}, new {stats["new"]}, redone {stats["redone"]} (lost '
              f'outputs), retried {stats["retried"]} (failed before); rows written: ok '
              f'{stats["ok"]}, failed {stats["failed"]}', flush=True)
        code = 0
        failures = summarize_failures(stats['reasons'], stats['tried'], args.max_fail_fraction)
        if failures:
            logger.error('rank %d: %s', launch.rank, failures)
            code = 1
        all_done = final_barrier(launch, args.barrier_timeout) if launch.torchrun else True
        if launch.rank != 0 or args.no_merge:
            return code
        if launch.world_size > 1 and not launch.torchrun:
            logger.info('separate launches: when all %d tasks are done, merge with '
                        'tools/merge_manifests.py %s', launch.world_size, args.out_dir)
            return code
        if not all_done:
            logger.error('not merged: run tools/merge_manifests.py %s when all ranks are done',
                         args.out_dir)
            return 1
        report = merge_manifests(args.out_dir, items, args.num_variations)
        logger.info('merged %d rows (%d ok, %d failed) into %s; %d missing', report['rows'],
                    report['ok'], report['failed'], report['path'], len(report['missing']))
        print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in report.items()}))
        return code
    finally:
        if launch.torchrun:
            close_group()

