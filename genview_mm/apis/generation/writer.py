"""Where a generated view goes, how it is encoded and written, and whether a written one is
still good.

Output names mirror the source layout and carry a short hash of the source key:
``images/<key folder>/<key stem>-<8 hex of sha1(key)>[_v<k>]<ext>``. The hash keeps names of
distinct sources distinct even when they differ only in extension (``x.jpg`` / ``x.png``) or
case; :func:`check_unique_outputs` refuses the (2^-32 per such pair) case where two would meet.
An image goes to a temporary file of this process and is renamed into place, so a killed run
never leaves a truncated view under its final name; a full disk stops the run with one line.
"""
import errno
import hashlib
import os
import os.path as osp
import socket
from typing import Any, Dict, Iterable, Optional

from ...structures.manifest import ManifestRow
from .errors import TRANSIENT, SetupError, failure_reason
from .sources import ImageItem

_FORMATS = {'.jpg': 'JPEG', '.jpeg': 'JPEG', '.png': 'PNG', '.webp': 'WEBP'}
IMAGES_DIR = 'images'


def output_relpath(key: str, variation: int, num_variations: int, ext: str) -> str:
    """Generated image path relative to ``out_dir`` (see the module docstring)."""
    folder, name = osp.split(key)
    stem = osp.splitext(name)[0]
    tag = hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]
    suffix = f'_v{variation}' if num_variations > 1 else ''
    return '/'.join(p for p in (IMAGES_DIR, folder, f'{stem}-{tag}{suffix}{ext}') if p)


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
    """A PIL RGB image from a PIL image or a uint8 array / tensor (HWC or CHW, on any
    device): every kind is encoded from the same pixels."""
    from PIL import Image
    if isinstance(image, Image.Image):
        return image.convert('RGB')
    if hasattr(image, 'detach'):  # a torch tensor
        image = image.detach().cpu().numpy()
    import numpy as np
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3:
        raise ValueError(f'a view must be a PIL image or a uint8 HWC/CHW array, got '
                         f'{array.dtype} of shape {array.shape}')
    if array.shape[-1] not in (1, 3) and array.shape[0] in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.shape[-1] == 1:
        array = array[..., 0]
    return Image.fromarray(np.ascontiguousarray(array)).convert('RGB')


def save_atomic(image: Any, path: str, quality: int = 95,
                tmp_dir: Optional[str] = None) -> None:
    """Encode ``image`` (see :func:`to_pil`) to a temporary file of this process (in
    ``tmp_dir``, else next to ``path``), then rename it onto ``path``.

    Raises:
        SetupError: the disk is full (one line naming the folder; no temporary file left).
        OSError: any other write error (the temporary file is removed).
    """
    ext = osp.splitext(path)[1].lower()
    if ext not in _FORMATS:
        raise ValueError(f'output extension must be one of {sorted(_FORMATS)}, got {ext!r}')
    folder, base = osp.split(path)
    kwargs = {'quality': quality} if _FORMATS[ext] in ('JPEG', 'WEBP') else {}
    for where in ([tmp_dir] if tmp_dir else []) + [folder]:
        tmp = osp.join(where, f'.{base}.{socket.gethostname()}-{os.getpid()}.partial{ext}')
        try:
            os.makedirs(folder, exist_ok=True)
            os.makedirs(where, exist_ok=True)
            to_pil(image).save(tmp, format=_FORMATS[ext], **kwargs)
            os.replace(tmp, path)
            return
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise SetupError(f'no space left on the device writing to {where} '
                                 f'({exc.strerror}): free space or pass another --out-dir, '
                                 'then rerun to resume') from None
            if where == folder or exc.errno != errno.EXDEV:
                raise
        finally:
            if osp.exists(tmp):
                os.remove(tmp)


def save_view(item: ImageItem, view, gen, out_dir: str, ext: str, quality: int,
          tmp_dir: str) -> ManifestRow:
    """Write one generated view (``gen``'s) and return its row: a failed row for a write
    error, while a full disk ends the run (:class:`SetupError`)."""
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
    """Whether a recorded output is usable: it exists and is not empty; with ``verify``, it
    also decodes completely (slow: reads every pixel)."""
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
    """Encodes and writes views on ``workers`` threads (0: in the calling thread), keeping
    their order: :meth:`done` returns the results of finished writes, oldest first.

    Args:
        workers (int): threads. Defaults to 4.
        max_pending (int, optional): :meth:`submit` waits while this many writes are pending
            (bounds the views held in memory). Defaults to 4 x workers.
    """

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
        """Results of the leading finished writes (all of them with ``wait``); re-raises the
        first error."""
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
