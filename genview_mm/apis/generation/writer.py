"""Where a view goes, how it is encoded and written (atomically, by a thread pool), and whether
a written one is still good.

Names mirror the source layout with a short hash of the key:
``images/<key folder>/<key stem>-<8 hex of sha1(key)>[_v<k>]<ext>``, distinct even for sources
that differ only in extension or case (:func:`check_unique_outputs` refuses the rare clash).
"""
import errno
import hashlib
import os.path as osp
from typing import Any, Dict, Iterable, Optional

from ...structures.manifest import TRANSIENT, ManifestRow, failure_reason
from ...utils.atomic_write import atomic_write
from . import SetupError

_FORMATS = {'.jpg': 'JPEG', '.jpeg': 'JPEG', '.png': 'PNG', '.webp': 'WEBP'}
IMAGES_DIR = 'images'


def output_relpath(key: str, variation: int, num_variations: int, ext: str) -> str:
    """A view's path relative to the output folder (see the module docstring)."""
    folder, name = osp.split(key)
    tag = hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]
    suffix = f'_v{variation}' if num_variations > 1 else ''
    return '/'.join(p for p in (IMAGES_DIR, folder,
                                f'{osp.splitext(name)[0]}-{tag}{suffix}{ext}') if p)


def check_unique_outputs(keys: Iterable[str], num_variations: int, ext: str) -> None:
    """Raise ValueError if two keys would write the same file on a case-insensitive disk."""
    seen: Dict[str, str] = {}
    for key in keys:
        folded = output_relpath(key, 0, num_variations, ext).casefold()
        other = seen.setdefault(folded, key)
        if other != key:
            raise ValueError(f'sources {other!r} and {key!r} would share the output file '
                             f'{folded!r}: rename one of them')


def to_pil(image: Any):
    """A PIL RGB image from a PIL image or a uint8 HWC/CHW array or tensor (any device)."""
    import numpy as np
    from PIL import Image
    if isinstance(image, Image.Image):
        return image.convert('RGB')
    array = np.asarray(image.detach().cpu() if hasattr(image, 'detach') else image)
    if array.dtype != np.uint8 or array.ndim != 3:
        raise ValueError(f'a view must be a PIL image or a uint8 HWC/CHW array, got '
                         f'{array.dtype} of shape {array.shape}')
    if array.shape[-1] not in (1, 3) and array.shape[0] in (1, 3):
        array = array.transpose(1, 2, 0)
    return Image.fromarray(np.ascontiguousarray(array[..., 0] if array.shape[-1] == 1 else
                                                array)).convert('RGB')


def save_atomic(image: Any, path: str, quality: int = 95,
                tmp_dir: Optional[str] = None) -> None:
    """Encode ``image`` (:func:`to_pil`) to a temporary file of this process in ``tmp_dir``
    (else next to ``path``) and rename it onto ``path``; a full disk raises SetupError (one
    line naming the folder, no temporary file left)."""
    ext = osp.splitext(path)[1].lower()
    if ext not in _FORMATS:
        raise ValueError(f'output extension must be one of {sorted(_FORMATS)}, got {ext!r}')
    kwargs = {'quality': quality} if _FORMATS[ext] in ('JPEG', 'WEBP') else {}
    for where in ([tmp_dir] if tmp_dir else []) + [None]:
        try:
            with atomic_write(path, 'wb', tmp_dir=where) as f:
                to_pil(image).save(f, format=_FORMATS[ext], **kwargs)
            return
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise SetupError(f'no space left on the device writing to '
                                 f'{where or osp.dirname(path)} ({exc.strerror}): free space or '
                                 'pass another --out-dir, then rerun to resume') from None
            if where is None or exc.errno != errno.EXDEV:  # EXDEV: tmp_dir on another disk
                raise


def save_view(item, view, gen, out_dir: str, ext: str, quality: int,
              tmp_dir: str) -> ManifestRow:
    """Write one of ``gen``'s views of ``item``; its row (failed for a write error)."""
    rel = output_relpath(item.key, view.variation, gen.num_variations, ext)
    try:
        save_atomic(view.image, osp.join(out_dir, rel), quality, tmp_dir)
    except OSError as exc:
        return ManifestRow(item.path, item.key, view.variation, seed=view.seed,
                           generator=gen.name, status='failed',
                           reason=failure_reason(TRANSIENT, 'write failed', exc))
    return ManifestRow(item.path, item.key, view.variation, rel, view.noise_level,
                       view.fg_ratio, view.seed, gen.name, view.clip_sim)


def output_ok(path: str, verify: bool = False) -> bool:
    """Whether a recorded output exists and is not empty (``verify``: and fully decodes)."""
    try:
        if osp.getsize(path) <= 0:
            return False
    except OSError:
        return False
    if not verify:
        return True
    from PIL import Image
    try:
        with Image.open(path) as img:
            img.load()
        return True
    except Exception:  # noqa: BLE001  (any decode error: the file is bad)
        return False


class WriterPool:
    """Runs writes on ``workers`` threads (0: the caller's), results in submission order; at
    most ``max_pending`` (default 4 x workers) writes wait, bounding the views in memory."""

    def __init__(self, workers: int = 4, max_pending: Optional[int] = None) -> None:
        from concurrent.futures import ThreadPoolExecutor
        self.pool = ThreadPoolExecutor(workers, 'view-writer') if workers > 0 else None
        self.max_pending = max_pending or 4 * max(workers, 1)
        self.pending: list = []

    def submit(self, fn, *args) -> list:
        """Run ``fn(*args)``; returns the results that are ready (see :meth:`done`)."""
        if self.pool is None:
            return [fn(*args)]
        self.pending.append(self.pool.submit(fn, *args))
        ready = self.done()
        while len(self.pending) >= self.max_pending:
            ready.append(self.pending.pop(0).result())
        return ready

    def done(self, wait: bool = False) -> list:
        """Results of the leading finished writes (all with ``wait``); re-raises errors."""
        ready = []
        while self.pending and (wait or self.pending[0].done()):
            ready.append(self.pending.pop(0).result())
        return ready

    def close(self) -> None:
        """Wait for running writes (none left half-written), drop the rest."""
        if self.pool is not None:
            for future in self.pending:
                future.cancel()
            self.pool.shutdown(wait=True)
            self.pending = []
