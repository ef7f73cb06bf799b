"""Write a file so that readers see the old one or the whole new one, never a part.

Every file genview_mm writes that someone may read while it is written, or that a crash could
truncate (converted checkpoints, annotation lists, manifests, settings records, generated
views, and MMEngine's training checkpoints through
:func:`genview_mm.compat.write_checkpoints_whole`), goes through :func:`atomic_write`: the data goes
to a temporary file of this process in the same folder (same filesystem, so the rename is
atomic), which replaces
the target only once it is complete and closed (a replaced file keeps its permissions; a link
is replaced, never written through: a link in an output folder may point at a user's file
elsewhere). On any error the temporary file is removed and the target is untouched; a full
disk or quota raises :class:`DiskFull`, one line naming the folder. What a killed process left
(its temporary file of the same target) goes at the next write of that target.
:func:`create_once` is the create-if-absent variant (the first writer wins), for a record that
several processes may try to create at once.
"""
import contextlib
import errno
import hashlib
import os
import os.path as osp
import shutil
import socket
import stat
import time
from typing import IO, Iterator, Optional


class DiskFull(OSError):
    """No space (or quota) left writing into the folder ``filename``: one line saying so
    (exit code 1)."""

    exit_code = 1

    def __str__(self) -> str:
        return (f'no space left on the device writing to {self.filename} ({self.strerror}): '
                'free space or write elsewhere, then rerun')


def temp_name(path: str) -> str:
    """The temporary file :func:`atomic_write` uses for ``path``: hidden, in the same folder,
    unique to this process on this host (two writers never share one, also on a filesystem
    that several nodes share)."""
    folder, name = osp.split(path)
    return osp.join(folder, f'{_temp_prefix(name)}{os.getpid()}')


def _temp_prefix(name: str) -> str:
    """The temporary names of ``name`` on this host, less the pid; a name that would make
    one longer than a file name may be (255 bytes) is replaced by a hash of it."""
    prefix = f'.{name}.tmp-{socket.gethostname()}-'
    if len(prefix.encode('utf-8', 'surrogateescape')) + 10 > 255:  # 10: the pid's digits
        digest = hashlib.sha1(name.encode('utf-8', 'surrogateescape')).hexdigest()[:16]
        prefix = f'.{digest}.tmp-{socket.gethostname()}-'
    return prefix


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
        tmp_dir (str, optional): a folder for the temporary file (one that its owner clears
            after a crash), instead of ``path``'s; if it is on another filesystem, the file is
            copied next to ``path`` and renamed from there. Defaults to None.

    Yields:
        IO: the open temporary file.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    tmp = temp_name(path)
    if tmp_dir is not None:
        tmp = osp.join(tmp_dir, osp.basename(tmp))
    tmp = osp.abspath(tmp)  # a bare file name: its folder is the cwd, not ''
    try:
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)  # a full disk: DiskFull too
        os.makedirs(osp.dirname(tmp), exist_ok=True)
        text = {} if 'b' in mode else {'encoding': encoding, 'newline': newline}
        with open(tmp, mode, **text) as f:
            with contextlib.suppress(OSError):  # a replaced file keeps its permissions
                if not osp.islink(path):
                    os.chmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, path)
            if tmp_dir is None:
                clear_stale(path)
        except OSError as exc:
            if tmp_dir is None or exc.errno != errno.EXDEV:
                raise
            near = temp_name(path)  # tmp_dir on another filesystem
            try:
                shutil.copyfile(tmp, near)
                shutil.copymode(tmp, near)
                os.replace(near, path)
            except OSError as copy_exc:  # a full disk here is the target's, not tmp_dir's
                _raise_disk_full(copy_exc, osp.dirname(osp.abspath(path)))
                raise
            finally:
                if osp.exists(near):
                    os.remove(near)
    except OSError as exc:
        _raise_disk_full(exc, osp.dirname(tmp))
        raise
    except RuntimeError as exc:  # torch.save's writer reports a full disk as a RuntimeError
        if _no_space(osp.dirname(tmp)):
            raise DiskFull(errno.ENOSPC, os.strerror(errno.ENOSPC), osp.dirname(tmp)) from exc
        raise
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


STALE_AFTER = 3600.0
"""Seconds after which a temporary file whose process is gone counts as left by a kill."""


def clear_stale(path: str) -> int:
    """Remove the temporary files of ``path`` left by killed processes of this host (their
    process gone and the file untouched for :data:`STALE_AFTER`: a live writer's file, or one
    of another host, is never removed); how many."""
    folder, name = osp.split(osp.abspath(path))
    prefix = _temp_prefix(name)
    try:
        names = [(n, n[len(prefix):]) for n in os.listdir(folder) if n.startswith(prefix)]
    except OSError:
        return 0
    return _remove_stale(folder, names)


def clear_stale_in(folder: str) -> int:
    """:func:`clear_stale` for every target in ``folder`` (one listing): for files written
    under a new name each time (``epoch_N.pth``), whose leftovers no later write of the same
    name would clear; how many were removed."""
    marker = f'.tmp-{socket.gethostname()}-'
    try:
        names = [(n, n.rpartition(marker)[2]) for n in os.listdir(folder)
                 if n.startswith('.') and marker in n]
    except OSError:
        return 0
    return _remove_stale(folder, names)


def _remove_stale(folder: str, names: list) -> int:
    """Remove the ``(file name, its pid)`` files in ``folder`` whose process of this host is
    gone and that are untouched for :data:`STALE_AFTER`; how many."""
    removed = 0
    for other, pid in names:
        other = osp.join(folder, other)
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # alive (PermissionError: alive, another user's)
        except ProcessLookupError:
            pass
        except (OSError, OverflowError):
            continue
        with contextlib.suppress(OSError):
            if time.time() - osp.getmtime(other) > STALE_AFTER:
                os.remove(other)
                removed += 1
    return removed


def _no_space(folder: str) -> bool:
    """Whether the filesystem of ``folder`` has no block left for this user."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False


def _raise_disk_full(exc: OSError, folder: str) -> None:
    """Raise :class:`DiskFull` for ``folder`` if ``exc`` is a full disk or quota."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) and not isinstance(exc, DiskFull):
        raise DiskFull(exc.errno, exc.strerror, folder) from None


def create_once(path: str, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists: written to a temporary file, then
    hard-linked into place (atomic, and it fails if another process created ``path`` first);
    on a filesystem without hard links, renamed if ``path`` is still absent. Whether this call
    created it (an existing ``path`` is not written again, also on a full disk)."""
    if osp.exists(path):
        return False
    tmp = temp_name(path)
    try:
        try:
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
            with open(tmp, 'w', encoding='utf-8') as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())  # on disk before it has the name (a crash: not empty)
        except OSError as exc:
            _raise_disk_full(exc, osp.dirname(osp.abspath(path)))
            raise
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError:  # no hard links on this filesystem
            if osp.exists(path):
                return False
            os.replace(tmp, path)
            return True
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
