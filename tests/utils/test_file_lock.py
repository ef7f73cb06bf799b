"""FileLock on a full disk: writing the holder's name failed after the flock, and the raised
OSError left the descriptor, and with it the lock, open: the next lock of that file in the same
process was refused as held by another live process."""
import errno
import os

import pytest

from genview_mm.utils import file_lock
from genview_mm.utils.file_lock import FileLock


def test_a_full_disk_does_not_leave_the_lock_held(tmp_path, monkeypatch):
    path = str(tmp_path / 'shard.lock')
    write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(file_lock.os, 'write', full)
    with FileLock(path) as lock:  # the lock holds without its holder's name
        assert lock._fd is not None
        with pytest.raises(file_lock.FileLocked, match='an unknown process'):
            FileLock(path).__enter__()
    monkeypatch.setattr(file_lock.os, 'write', write)
    with FileLock(path):  # released at exit
        pass

    def broken(fd, data):
        raise OSError(errno.EIO, 'Input/output error')
    monkeypatch.setattr(file_lock.os, 'write', broken)
    with pytest.raises(OSError, match='Input/output error'):
        FileLock(path).__enter__()
    monkeypatch.setattr(file_lock.os, 'write', write)
    with FileLock(path):  # the failed one closed its descriptor: not held
        pass
