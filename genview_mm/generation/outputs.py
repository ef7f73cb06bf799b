"""Where a generated view goes, how it is written, and whether a written one is still good.

Output names mirror the source layout and carry a short hash of the source key:
``images/<key folder>/<key stem>-<8 hex of sha1(key)>[_v<k>]<ext>``. The hash makes names of
distinct sources distinct even when they differ only in extension (``x.jpg`` / ``x.png``) or
case (``x.JPEG`` / ``x.jpeg``, folders ``A/`` / ``a/`` on a case-insensitive filesystem);
:func:`check_unique_outputs` refuses the (2^-32 per such pair) case where two would still meet.
"""
import errno
import hashlib
import os
import os.path as osp
import socket
from typing import Dict, Iterable, Optional

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
    """Raise if two keys would write the same file on a case-insensitive filesystem."""
    seen: Dict[str, str] = {}
    for key in keys:
        folded = output_relpath(key, 0, num_variations, ext).casefold()
        other = seen.setdefault(folded, key)
        if other != key:
            raise ValueError(f'sources {other!r} and {key!r} would share the output file '
                             f'{folded!r}: rename one of them')


def _temp_name(base: str) -> str:
    """A temporary file name no other process uses: host and pid of this one."""
    return f'.{base}.{socket.gethostname()}-{os.getpid()}.partial'


def save_atomic(image, path: str, quality: int = 95, tmp_dir: Optional[str] = None) -> None:
    """Write ``image`` to a temporary file of this process, then rename it onto ``path``.

    Args:
        image (PIL.Image.Image): the image.
        path (str): final path; its extension picks the format.
        quality (int): JPEG/WebP quality. Defaults to 95.
        tmp_dir (str, optional): folder for the temporary file, on the same filesystem as
            ``path``. Defaults to None (next to ``path``).
    """
    ext = osp.splitext(path)[1].lower()
    if ext not in _FORMATS:
        raise ValueError(f'output extension must be one of {sorted(_FORMATS)}, got {ext!r}')
    folder, base = osp.split(path)
    os.makedirs(folder, exist_ok=True)
    kwargs = {'quality': quality} if _FORMATS[ext] in ('JPEG', 'WEBP') else {}
    for where in ([tmp_dir] if tmp_dir else []) + [folder]:
        tmp = osp.join(where, _temp_name(base) + ext)
        try:
            image.convert('RGB').save(tmp, format=_FORMATS[ext], **kwargs)
            os.replace(tmp, path)
            return
        except OSError as exc:
            if osp.exists(tmp):
                os.remove(tmp)
            if where == folder or exc.errno != errno.EXDEV:
                raise


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
