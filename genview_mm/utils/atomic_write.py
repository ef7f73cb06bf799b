"""Write a file so that readers see the old one or the whole new one, never a part.

Every file genview_mm writes that someone may read while it is written, or that a crash could
truncate (checkpoints, annotation lists, manifests, settings records, generated views), goes
through :func:`atomic_write`: the data goes to a temporary file of this process in the same
folder (same filesystem, so the rename is atomic), which replaces the target only once it is
complete and closed. On any error the temporary file is removed and the target is untouched.
"""
import contextlib
import os
import os.path as osp
import socket
from typing import IO, Iterator, Optional


def temp_name(path: str) -> str:
    """The temporary file :func:`atomic_write` uses for ``path``: hidden, in the same folder,
    unique to this process on this host (two writers never share one, also on a filesystem
    that several nodes share)."""
    folder, name = osp.split(path)
    return osp.join(folder, f'.{name}.tmp-{socket.gethostname()}-{os.getpid()}')


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'w', encoding: str = 'utf-8',
                 newline: Optional[str] = None,
                 tmp_dir: Optional[str] = None) -> Iterator[IO]:
    """Open a temporary file for writing and move it onto ``path`` when the block succeeds.

    Args:
        path (str): the file to (re)place. Its folder is created if needed.
        mode (str): ``'w'`` (text) or ``'wb'`` (bytes). Defaults to ``'w'``.
        encoding (str): text encoding. Defaults to ``'utf-8'``.
        newline (str, optional): as :func:`open`'s (``'\\n'``: no translation). Defaults to None.
        tmp_dir (str, optional): a folder on the same filesystem for the temporary file (one
            that its owner clears after a crash), instead of ``path``'s. Defaults to None.

    Yields:
        IO: the open temporary file.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = temp_name(path)
    if tmp_dir is not None:
        os.makedirs(tmp_dir, exist_ok=True)
        tmp = osp.join(tmp_dir, osp.basename(tmp))
    try:
        text = {} if 'b' in mode else {'encoding': encoding, 'newline': newline}
        with open(tmp, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
