"""The view-generation job behind ``tools/generate_views.py`` (the method is
:mod:`genview_mm.generation`), one module per stage: :mod:`.shards` (fixed shards, records,
locks, view names, merge), :mod:`.runner` (read, analyse, generate, write), :mod:`.settings`
(what a rerun must match), :mod:`.job` (the command). Its errors are defined here."""
from ...utils.atomic_write import DiskFull  # a full disk, wherever the job writes (exit code 1)
from ...utils.file_lock import FileLocked as ShardLocked  # another live writer (exit code 1)


class UsageError(ValueError):
    """A bad argument or a bad place to write: fix the command line (exit code 2)."""

    exit_code = 2


class SettingsMismatch(UsageError):
    """``--out-dir`` holds views made with other settings (exit code 2)."""


class SetupError(RuntimeError):
    """The pipeline or the PCA file cannot be loaded, or the disk is full (exit code 1)."""

    exit_code = 1


ABORTS = (UsageError, ShardLocked, SetupError, DiskFull)
