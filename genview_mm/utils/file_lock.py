"""An exclusive lock on a file for one live process: ``flock``, dropped by the kernel however
the holder exits, with the holder (pid, host, since) written into the file for the message of
whoever is refused."""
import datetime
import errno
import fcntl
import json
import logging
import os
import os.path as osp
import socket
import time

logger = logging.getLogger(__name__)
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class FileLocked(RuntimeError):
    """Another live process holds the lock (exit code 1)."""

    exit_code = 1


class FileLock:
    """Exclusive lock on ``path`` for the ``with`` block; a live holder is waited for ``wait``
    seconds, then refused with :class:`FileLocked` naming ``what``, the holder and ``advice``.
    On a filesystem without locks a warning is logged and the block runs unlocked."""

    def __init__(self, path: str, wait: float = 0.0, what: str = '', advice: str = '') -> None:
        self.path, self.wait, self._fd = path, wait, None
        self.what, self.advice = what or path, advice

    def holder(self) -> str:
        try:
            with open(self.path, encoding='utf-8') as f:
                info = json.load(f)
            return f"pid {info['pid']} on host {info['host']} since {info['since']}"
        except (OSError, ValueError, KeyError):
            return 'an unknown process'

    def __enter__(self) -> 'FileLock':
        os.makedirs(osp.dirname(self.path) or '.', exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise FileLocked(f'{self.what} is being written by another live process '
                                     f'({self.holder()}). {self.advice}'.rstrip()) from None
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            except OSError as exc:
                if exc.errno not in _NO_LOCKS:
                    os.close(fd)
                    raise
                logger.warning('%s: this filesystem has no file locks (%s); make sure only one '
                               'process writes %s', self.path, exc, self.what)
                break
        since = datetime.datetime.now().isoformat(timespec='seconds')
        try:  # who holds it, for the next one's message
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(dict(pid=os.getpid(), host=socket.gethostname(),
                                         since=since)).encode())
        except OSError as exc:  # the descriptor, and with it the lock, stayed open
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                os.close(fd)
                raise  # a full disk: the lock holds without its holder's name
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
