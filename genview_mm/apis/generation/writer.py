"""Where a view goes and how it is written (encoded, then renamed into place; the runner calls
:func:`save_view` from a thread pool). Names mirror the source layout with a short hash of the
key, ``images/<key folder>/<key stem>-<8 hex of sha1(key)>[_v<k>]<ext>`` (the stem cut to fit
255 bytes): distinct even for sources that differ only in extension or case
(:func:`check_unique_outputs` refuses a clash).
"""
import hashlib
import os.path as osp
from typing import Dict, Iterable

from ...generation.device_images import to_pil
from ...structures.manifest import TRANSIENT, ManifestRow, failure_reason
from ...utils.atomic_write import DiskFull
from ...utils.image_files import save_image
from . import SetupError, UsageError

IMAGES_DIR = 'images'


def output_relpath(key: str, variation: int, num_variations: int, ext: str) -> str:
    """A view's path relative to the output folder; a stem too long for a 255-byte file name is
    cut (whole characters; the tag hashes the whole key, so names stay apart)."""
    folder, name = osp.split(key)
    tag = hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]
    end = f'-{tag}{"_v%d" % variation if num_variations > 1 else ""}{ext}'
    stem = osp.splitext(name)[0].encode('utf-8')[:255 - len(end.encode('utf-8'))]
    return '/'.join(p for p in (IMAGES_DIR, folder,
                                stem.decode('utf-8', 'ignore') + end) if p)


def check_unique_outputs(keys: Iterable[str], num_variations: int, ext: str) -> None:
    """Raise UsageError (a ValueError) if two keys would write the same file on a
    case-insensitive disk."""
    seen: Dict[str, str] = {}
    for key in keys:
        folded = output_relpath(key, 0, num_variations, ext).casefold()
        if seen.setdefault(folded, key) != key:
            raise UsageError(f'sources {seen[folded]!r} and {key!r} would share the output '
                             f'file {folded!r}: rename one of them')


def save_view(item, view, gen, out_dir: str, ext: str, quality: int,
              tmp_dir: str) -> ManifestRow:
    """Write one of ``gen``'s views of ``item``; its row (failed for a write error)."""
    rel = output_relpath(item.key, view.variation, gen.num_variations, ext)
    path = osp.join(out_dir, rel)
    try:
        save_image(to_pil(view.image), path, quality, tmp_dir)
    except DiskFull as exc:  # every later write would fail too; named by the view's folder
        raise SetupError(str(DiskFull(exc.errno, exc.strerror, osp.dirname(path)))) from None
    except OSError as exc:
        return ManifestRow(item.path, item.key, view.variation, seed=view.seed,
                           generator=gen.name, status='failed',
                           reason=failure_reason(TRANSIENT, 'write failed', exc))
    return ManifestRow(item.path, item.key, view.variation, rel, view.noise_level,
                       view.fg_ratio, view.seed, gen.name, view.clip_sim)
