"""One live writer per manifest part: an advisory ``flock`` on ``<part>.lock``.

The kernel drops the lock when its holder exits, however it exits, so a killed run never
leaves a stale lock behind; a second launch of the same rank (a double submit, an overlapping
Slurm requeue) is refused with the holder's pid and host instead of interleaving rows with it.
On a filesystem without locks (some Lustre mounts) a warning is logged and the run goes on.
"""
import datetime
import errno
import fcntl
import json
import logging
import os
import socket
import time
from typing import Optional

from .errors import PartLocked

logger = logging.getLogger(__name__)
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class PartLock:
    """Exclusive lock on a manifest part, held for the life of the ``with`` block.

    Args:
        part (str): the manifest part path; the lock file is ``part + '.lock'``.
        wait (float): seconds to wait for another holder to exit before refusing.
            Defaults to 0 (refuse at once).
    """

    def __init__(self, part: str, wait: float = 0.0) -> None:
        self.path = part + '.lock'
        self.wait = wait
        self._fd: Optional[int] = None

    def holder(self) -> str:
        """Who holds (or last held) the lock, from the lock file."""
        try:
            with open(self.path, encoding='utf-8') as f:
                info = json.load(f)
            return f"pid {info['pid']} on host {info['host']} since {info['since']}"
        except (OSError, ValueError, KeyError):
            return 'an unknown process'

    def acquire(self) -> 'PartLock':
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise PartLocked(
                        f'{self.path[:-5]} is being written by another live process '
                        f'({self.holder()}). Two writers of one part would redo and interleave '
                        'the same images: wait for it to finish or stop it (an overlapping '
                        'Slurm requeue: pass --lock-wait SECONDS).') from None
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    os.close(fd)
                    raise
                logger.warning('%s: this filesystem has no file locks (%s); make sure only one '
                               'process writes this part', self.path, exc)
                break
        since = datetime.datetime.now().isoformat(timespec='seconds')
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(dict(pid=os.getpid(), host=socket.gethostname(),
                                     since=since)).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> 'PartLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
