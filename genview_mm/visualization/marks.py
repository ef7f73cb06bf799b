"""The mark a picture drawn by a genview_mm tool carries, so that a rerun may replace it and
nothing else (a PNG text chunk, or a JPEG comment)."""
import os.path as osp
from typing import Optional

from PIL import Image, PngImagePlugin

from ..utils.atomic_write import atomic_write

MARK_KEY = 'genview_mm'


def save_marked(image: Image.Image, path: str, what: str, fmt: Optional[str] = None) -> str:
    """Save ``image`` to ``path`` (its folder created) marked as ``what``, whole or not at all
    (:func:`~genview_mm.utils.atomic_write.atomic_write`: half a picture would carry the
    mark); ``fmt`` 'PNG' or 'JPEG', by default JPEG for a .jpg/.jpeg name and PNG for any
    other."""
    if fmt is None:
        fmt = 'JPEG' if osp.splitext(path)[1].lower() in ('.jpg', '.jpeg') else 'PNG'
    with atomic_write(path, 'wb') as f:
        if fmt == 'JPEG':
            image.save(f, format='JPEG', quality=95, comment=f'{MARK_KEY}: {what}')
        else:
            info = PngImagePlugin.PngInfo()
            info.add_text(MARK_KEY, what)
            image.save(f, format='PNG', pnginfo=info)
    return path


def is_marked(path: str, what: str) -> bool:
    """Whether ``path`` is a picture :func:`save_marked` wrote as ``what`` (False for
    anything else, including files that are not images)."""
    try:
        with Image.open(path) as img:
            if img.format == 'PNG':
                return img.info.get(MARK_KEY) == what
            comment = img.info.get('comment', b'') if img.format == 'JPEG' else b''
            return comment == f'{MARK_KEY}: {what}'.encode()
    except Exception:  # noqa: BLE001  (not an image: not ours)
        return False
