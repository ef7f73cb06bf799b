"""The view-generation job behind ``tools/generate_views.py`` (the method is
:mod:`genview_mm.generation`), one module per stage after img2dataset: :mod:`.sources` (list and
decode), :mod:`.shards` (fixed shards, records, locks, merge), :mod:`.writer` (names, atomic
writes), :mod:`.runner` (the loop), :mod:`.settings` (what a rerun must match) and :mod:`.job`
(the command). The job's errors are defined here, below every stage, so that each stage can
raise them without importing another."""


class UsageError(ValueError):
    """A bad argument or a bad place to write: fix the command line (exit code 2)."""

    exit_code = 2


class SettingsMismatch(UsageError):
    """``--out-dir`` holds views made with other settings (exit code 2)."""


class ShardLocked(RuntimeError):
    """Another live process writes the same shard (exit code 1)."""

    exit_code = 1


class SetupError(RuntimeError):
    """The pipeline or the PCA file cannot be loaded, or the disk is full (exit code 1)."""

    exit_code = 1


ABORTS = (UsageError, ShardLocked, SetupError)

