"""Checks of ``tools/generate_views.py``'s arguments that need the package (run before any
model loads), and the settings record (:mod:`.settings`) they imply."""
import argparse
import json
import os.path as osp
from typing import Dict

from .errors import UsageError
from .noise import validate_noise_rule
from .settings import OUTPUT_FORMAT, file_sha256

_JPEG_LIKE = ('.jpg', '.jpeg', '.webp')


def check_args(args: argparse.Namespace) -> None:
    """Raise :class:`UsageError` (one line naming the flag and the fix) for a bad argument.

    ``tools/generate_views.py`` has already checked, before importing anything heavy, that
    sizes and counts are >= 1 and that the paths exist (and ``--out-dir`` is writable).
    """
    if not 1 <= args.quality <= 100:
        raise UsageError(f'--quality must be in 1..100, got {args.quality}')
    if args.barrier_timeout <= 0 or args.lock_wait < 0:
        raise UsageError('--barrier-timeout must be > 0 and --lock-wait >= 0')
    if not 0 < args.max_fail_fraction <= 1:
        raise UsageError(f'--max-fail-fraction must be in (0, 1], got {args.max_fail_fraction}')
    try:
        validate_noise_rule(args.noise_bins, args.noise_levels)
    except ValueError as exc:
        raise UsageError(f'--noise-bins/--noise-levels: {exc}') from None


def settings_from_args(args: argparse.Namespace, dtype: str) -> Dict:
    """Everything in the arguments that changes the views' pixels or names (JSON types).

    Args:
        args (argparse.Namespace): ``tools/generate_views.py`` arguments.
        dtype (str): the resolved pipeline dtype ('float16', ...): the default depends on
            the device, and fp16 and fp32 give different images.
    """
    from ..models.encoders import encoder_id
    bins, levels = validate_noise_rule(args.noise_bins, args.noise_levels)
    settings = dict(
        format=OUTPUT_FORMAT, pretrained=encoder_id(osp.expanduser(args.pretrained)),
        pca_sha256=file_sha256(args.pca), dtype=dtype, scheduler=args.scheduler,
        steps=args.steps, guidance=float(args.guidance), prompt=args.prompt, seed=args.seed,
        noise_bins=list(bins), noise_levels=list(levels), gen_size=args.gen_size,
        output_size=args.output_size, ext=args.ext,
        quality=args.quality if args.ext in _JPEG_LIKE else None,
        num_variations=args.num_variations)
    return json.loads(json.dumps(settings))
