"""The command behind ``tools/generate_views.py`` (docs/view_generation.md): the checks a start
makes before its model loads, this worker's shards (the model loads, and the settings record is
written, before the first shard with work), then the merge if every shard is done. No process
group and no barrier: whichever worker finds every shard recorded merges (idempotent)."""
import argparse
import json
import logging
import os.path as osp
from collections import Counter
from typing import Iterable, Optional

from ...datasets.image_sources import (
    check_source_options,
    has_image,
    list_file,
    list_source,
    read_config,
)
from ...foreground import ForegroundPCA
from ...foreground.encoder_identity import is_fingerprint
from ...generation.noise import validate_noise_rule
from ...generation.pipeline_loader import check_unclip_source, scheduler_class
from ...structures.manifest import failure_cause
from ...utils.dist import LAUNCH_MODES, launch_from, resolve_device
from ...utils.file_safety import check_outside_sources
from . import ABORTS, DiskFull, SettingsMismatch, SetupError, ShardLocked, UsageError  # noqa: F401
from .runner import generate_views
from .settings import check_settings, clear_outputs, read_settings, settings_of, write_settings
from .shards import merge_manifests

logger = logging.getLogger(__name__)
_HINTS = {
    'missing file': 'check the source list and --data-root (relative paths are resolved '
                    "against it; default: the list file's folder)",
    'unreadable file': 'check the files\' permissions and the filesystem',
    'generation failed': 'see the error above (out of memory: lower --batch-size or '
                         '--max-pipeline-batch)',
    'undecodable image': 'the files are not images OpenCV can decode (replace them and rerun '
                         'with --retry-failed)',
    'write failed': 'check the free space and permissions of --out-dir',
    'not a file': 'the source list names folders: list image files (then rerun with '
                  '--retry-failed)',
}


def summarize_failures(reasons: Iterable[str], attempted: int,
                       max_fraction: float = 0.5) -> Optional[str]:
    """The counts, the most common cause with an example and a hint, when at least
    ``max_fraction`` of the ``attempted`` images failed (one reason each); else None."""
    reasons = list(reasons)
    if attempted <= 0 or not reasons or len(reasons) / attempted < max_fraction:
        return None
    counts = Counter(failure_cause(r) for r in reasons)
    cause, count = counts.most_common(1)[0]
    example = next(r for r in reasons if failure_cause(r) == cause)
    hint = _HINTS.get(cause.split(': ', 1)[-1], 'see the reasons in the shard records')
    lines = [f'{len(reasons)} of {attempted} images failed '
             f'({100 * len(reasons) / attempted:.0f}% >= {100 * max_fraction:.0f}%).',
             f'Most common cause: {cause} ({count} images), e.g. {example}',
             f'Fix: {hint}. A rerun retries transient failures.']
    return '\n'.join(lines + [f'  {n} x {c}' for c, n in counts.most_common()[1:5]])


def make_generator(args: argparse.Namespace, device: str):
    """The generator the arguments describe (nothing loads until :func:`load_generator`); a
    setting argparse leaves unchecked (scheduler, noise rule) a UsageError. ``--compile`` fixes
    the pipeline batch at ``--max-pipeline-batch`` or a full batch."""
    from mmpretrain.registry import MODELS
    for flag, check in (('--scheduler', lambda: args.scheduler and scheduler_class(args.scheduler)),
                        ('--noise-bins/--noise-levels',
                         lambda: validate_noise_rule(args.noise_bins, args.noise_levels))):
        try:
            check()
        except ValueError as exc:
            raise UsageError(f'{flag}: {exc}') from None
    max_batch = args.max_pipeline_batch
    if args.compile and max_batch is None:
        max_batch = args.batch_size * args.num_variations
    try:
        return MODELS.build(dict(
            type='AdaptiveNoiseGenerator', pca=args.pca, pretrained=args.pretrained,
            device=device, torch_dtype=args.dtype, scheduler=args.scheduler,
            num_inference_steps=args.steps, guidance_scale=args.guidance, prompt=args.prompt,
            height=args.gen_size, width=args.gen_size, output_size=args.output_size,
            noise_bins=args.noise_bins, noise_levels=args.noise_levels, base_seed=args.seed,
            num_variations=args.num_variations, output=args.output, compile=args.compile,
            max_batch_size=max_batch, check_encoder=not args.no_encoder_check))
    except ValueError as exc:  # a setting argparse cannot reach (a caller of this function)
        raise UsageError(str(exc)) from None


def load_generator(gen, quiet: bool = False) -> None:
    """Load the pipeline and the PCA now, before any work (SetupError); ``quiet``: without
    diffusers' loading bar."""
    from diffusers.utils import logging as diffusers_logging
    if quiet:
        diffusers_logging.disable_progress_bar()
    try:
        gen.pca  # noqa: B018
    except (OSError, ValueError) as exc:
        raise SetupError(str(exc)) from exc


def checked_start(args: argparse.Namespace, check_only: bool = False):
    """``(launch, generator, settings, clear)`` after what a start refuses before its model
    loads: the launch and device, ``--overwrite`` with several workers, the generator's
    settings and those of ``--out-dir``'s record (``clear``: ``--overwrite`` is to clear it).
    ``check_only`` (``--check-args``, on a node that may have no GPU): a device checked by
    name, and without ``--device`` the dtype and output the task resolves are the record's."""
    try:
        launch = launch_from(args.rank, args.world_size)
        device = resolve_device(args.device, launch.local_rank, here=not check_only)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not check_only:
        logger.info('launch: %s, worker %d of %d', LAUNCH_MODES[launch.mode], launch.rank,
                    launch.world_size)
    if args.overwrite and launch.world_size > 1:
        raise UsageError(f'--overwrite with {launch.world_size} workers (a job array or '
                         'torchrun) would let one delete what another already wrote: delete '
                         '--out-dir once before launching instead')
    generator = make_generator(args, device)
    if check_only:  # what the start refuses once the model loads (no record may compare them)
        try:
            check_unclip_source(args.pretrained)
            ForegroundPCA.load(args.pca).require_threshold()
        except (OSError, ValueError) as exc:
            raise UsageError(str(exc)) from None
    old = read_settings(args.out_dir)
    if check_only and old is None:  # views or manifests of another tool are refused too
        return launch, generator, None, check_settings(args.out_dir, {}, args.overwrite)
    try:
        settings = settings_of(generator, args)
    except (OSError, ValueError) as exc:  # a damaged weights file (the fingerprint reads it),
        raise SetupError(str(exc) if isinstance(exc, ValueError) else  # or one not readable
                         f'cannot read {exc.filename} ({exc.strerror}): fix its permissions or '
                         'its disk, or copy it again') from None
    if check_only and not args.device:
        unresolved = dict(dtype=args.dtype is None, output=args.output == 'auto')
        settings.update({k: old.get(k, settings[k]) for k, keep in unresolved.items() if keep})
    return launch, generator, settings, check_settings(args.out_dir, settings, args.overwrite,
                                                       args.pretrained)


def check_args(args: argparse.Namespace) -> None:
    """``--check-args`` (slurm_generate.sh, before it submits): what a task would refuse before
    its model loads (:func:`checked_start`), and a source folder or list without images, an
    ``--out-dir`` inside a source folder or holding a list's images, an option the source
    ignores, a config that does not parse."""
    try:
        check_outside_sources(args.out_dir, args.source, [])  # a folder source: no listing
        check_source_options(args.source, args.data_root, args.dataset_key)
        listed = not (args.source.endswith('.py') or osp.isdir(args.source))
        items = list_file(args.source, args.data_root) if listed else []  # read, not stat'ed
        if args.source.endswith('.py'):  # parsed, not built (a folder dataset walks it)
            read_config(args.source)
        elif not (items or not listed and has_image(args.source)):  # a look, not a listing
            raise ValueError(f'no images found in source {args.source!r}')
        check_outside_sources(args.out_dir, '', [it.path for it in items])  # a list's images
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    checked_start(args, check_only=True)


def run_from_args(args: argparse.Namespace) -> int:
    """Run this worker's shards, merge if every shard is then done; 0, or 1 if this run's
    failures are too many of the worker's images."""
    launch, generator, settings, clear = checked_start(args)
    try:
        items, walked = list_source(args.source, args.data_root, args.dataset_key)
        check_outside_sources(args.out_dir, walked or '', [it.path for it in items])
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if not items:
        raise UsageError(f'no images found in source {args.source!r}')

    def start() -> None:  # the model loaded, this run starts: a failed start changes nothing
        load_generator(generator, args.no_progress)
        try:  # an OSError here is not the shard's (it may run inside a shard's lock)
            loaded = settings_of(generator, args)  # a hub id is its downloaded folder now
            if check_settings(args.out_dir, loaded, args.overwrite, args.pretrained):
                logger.warning('--overwrite: deleted %d files this tool recorded in %s',
                               clear_outputs(args.out_dir), args.out_dir)
            write_settings(args.out_dir, loaded, args.pretrained)
        except DiskFull as exc:
            raise SetupError(str(exc)) from None
        except OSError as exc:
            where = f' ({exc.filename})' if exc.filename else ''
            raise SetupError(f'cannot start: {exc.strerror or exc}{where}: fix that and '
                             'rerun') from None

    # before the records are read where --overwrite may clear them (a hub id not downloaded
    # yet is compared once loaded); else before the first shard with work
    early = clear or (args.overwrite and not is_fingerprint(settings['pretrained']))
    if early:
        start()
    stats = generate_views(items, generator, args.out_dir, launch.rank, launch.world_size,
                           batch_size=args.batch_size, ext=args.ext, quality=args.quality,
                           retry_failed=args.retry_failed, verify=args.verify,
                           show_progress=not args.no_progress, lock_wait=args.lock_wait,
                           shard_size=args.shard_size, writers=args.writers,
                           start=None if early else start)
    print(f'worker {launch.rank}/{launch.world_size}: {stats["shards"]} shards ({stats["ran"]} '
          f'run), share {stats["share"]}, skipped {stats["skipped"]}, new {stats["new"]}, '
          f'redone {stats["redone"]} (lost outputs), retried {stats["retried"]} (failed '
          f'before); rows written: ok {stats["ok"]}, failed {stats["failed"]}', flush=True)
    # over the worker's share: a rerun that only retries the few images that failed before
    # (a missing file: transient, retried by every rerun) is not a run where nearly all failed
    failures = summarize_failures(stats['reasons'], stats['share'], args.max_fail_fraction)
    if failures:
        logger.error('worker %d: %s', launch.rank, failures)
    if not (args.no_merge or stats['complete']):
        logger.info('worker %d: its shards are done, others are not yet: the worker that '
                    'finishes last merges (or run tools/merge_manifests.py %s)', launch.rank,
                    args.out_dir)
    elif not args.no_merge:
        try:  # the views are done: only the merge failed (a record damaged meanwhile, a folder
            report = merge_manifests(args.out_dir, items, args.num_variations)  # in the way)
        except DiskFull:
            raise  # its own line
        except (OSError, ValueError) as exc:
            raise SetupError(f'every shard is done, but the merge failed: {exc}; fix that and '
                             f'run tools/merge_manifests.py {args.out_dir}') from None
        logger.info('every shard done: merged %d rows (%d ok, %d failed) into %s; %d missing',
                    report['rows'], report['ok'], report['failed'], report['path'],
                    len(report['missing']))
        print(json.dumps({k: (len(v) if isinstance(v, list) else v) for k, v in report.items()}))
    return 1 if failures else 0


if __name__ == '__main__':  # the library behind the tool runs nothing itself: say so
    import sys
    print('usage: python tools/generate_views.py SOURCE --pca PCA --out-dir OUT [options] '
          '(this module is the library behind that tool)', file=sys.stderr)
    sys.exit(2)
