"""The mark a picture drawn by a genview_mm tool carries, so that a rerun may replace it and
nothing else (a PNG text chunk, or a JPEG comment)."""
import os
import os.path as osp
from typing import Optional

from PIL import Image, PngImagePlugin

MARK_KEY = 'genview_mm'


def save_marked(image: Image.Image, path: str, what: str, fmt: Optional[str] = None) -> str:
    """Save ``image`` to ``path`` (its folder created) marked as ``what``; ``fmt`` 'PNG' or
    'JPEG', by default JPEG for a .jpg/.jpeg name and PNG for any other."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if fmt is None:
        fmt = 'JPEG' if osp.splitext(path)[1].lower() in ('.jpg', '.jpeg') else 'PNG'
    if fmt == 'JPEG':
        image.save(path, format='JPEG', quality=95, comment=f'{MARK_KEY}: {what}')
    else:
        info = PngImagePlugin.PngInfo()
        info.add_text(MARK_KEY, what)
        image.save(path, format='PNG', pnginfo=info)
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
