"""The view-generation job behind ``tools/generate_views.py`` (the method is
:mod:`genview_mm.generation`), one module per stage after img2dataset: :mod:`.shards` (fixed
shards, records, locks, merge), :mod:`.writer` (names, atomic writes), :mod:`.runner` (the
loop: read, analyse, generate, write), :mod:`.settings` (what a rerun must match) and
:mod:`.job` (the command). What is not the job's own lives with its owner: the sources and
their decoding in :mod:`genview_mm.datasets.image_sources`, the manifest rows and journal in
:mod:`genview_mm.structures.manifest`, the model fingerprint in
:mod:`genview_mm.foreground.encoder_identity`, the file lock, threads and launch mode in
:mod:`genview_mm.utils`. The job's errors are defined here, below every stage, so that each
stage can raise them without importing another."""
from ...utils.file_lock import FileLocked as ShardLocked  # another live writer (exit code 1)


class UsageError(ValueError):
    """A bad argument or a bad place to write: fix the command line (exit code 2)."""

    exit_code = 2


class SettingsMismatch(UsageError):
    """``--out-dir`` holds views made with other settings (exit code 2)."""


class SetupError(RuntimeError):
    """The pipeline or the PCA file cannot be loaded, or the disk is full (exit code 1)."""

    exit_code = 1


ABORTS = (UsageError, ShardLocked, SetupError)

