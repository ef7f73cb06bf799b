"""The image file extensions genview_mm reads (one list for every tool), how it writes an image
file (atomically) and whether a written one is whole."""
import os
import os.path as osp
import stat
from typing import Callable, Dict, Optional

from .atomic_write import atomic_write

#: lower-case extensions of the image files the tools list, match and read
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')
#: the formats :func:`save_image` writes, by extension
WRITE_FORMATS = {'.jpg': 'JPEG', '.jpeg': 'JPEG', '.png': 'PNG', '.webp': 'WEBP'}


def is_hidden(name: str) -> bool:
    """Whether a file or folder name is hidden (``.x``, macOS's ``._x`` beside each ``x``):
    MMEngine's listing, and so every MMPretrain folder dataset, skips such files (it walks
    hidden folders); so does every listing of genview_mm."""
    return name.startswith('.')


def is_image_file(name: str) -> bool:
    """Whether ``name`` ends in one of :data:`IMAGE_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def save_image(image, path: str, quality: int = 95, tmp_dir: Optional[str] = None) -> None:
    """Write a PIL ``image`` to ``path`` in its extension's format (``quality``: JPEG and
    WebP) through :func:`atomic_write` (``tmp_dir``: its temporary file's folder)."""
    ext = osp.splitext(path)[1].lower()
    if ext not in WRITE_FORMATS:
        raise ValueError(f'output extension must be one of {sorted(WRITE_FORMATS)}, got {ext!r}')
    options = {'quality': quality} if WRITE_FORMATS[ext] in ('JPEG', 'WEBP') else {}
    with atomic_write(path, 'wb', tmp_dir=tmp_dir) as f:
        image.save(f, format=WRITE_FORMATS[ext], **options)


def image_file_ok(path: str, verify: bool = False) -> bool:
    """Whether an image file exists, is a regular file and is not empty (``verify``: and fully
    decodes)."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_size <= 0:  # a folder has a size too
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


def remembered_check(verify: bool = False) -> Callable[[str], bool]:
    """:func:`image_file_ok` that, with ``verify``, decodes each file once: its verdict is kept
    by path, mtime and size (a file changed since it was decoded is decoded again)."""
    if not verify:
        return image_file_ok
    verdicts: Dict[tuple, bool] = {}

    def file_ok(path: str) -> bool:
        try:
            info = os.stat(path)
        except OSError:
            return False
        seen = (path, info.st_mtime_ns, info.st_size)
        if seen not in verdicts:
            verdicts[seen] = image_file_ok(path, True)
        return verdicts[seen]
    return file_ok
