"""Errors that stop a generation run with one clear message (``tools/generate_views.py``
prints it without a traceback and exits with ``exit_code``)."""


class UsageError(ValueError):
    """A bad argument or a bad place to write: fix the command line (exit code 2)."""

    exit_code = 2


class SettingsMismatch(UsageError):
    """``--out-dir`` holds views made with other settings (exit code 2)."""


class PartLocked(RuntimeError):
    """Another live process writes the same manifest part (exit code 1)."""

    exit_code = 1


class SetupError(RuntimeError):
    """The pipeline or the PCA file cannot be loaded (exit code 1)."""

    exit_code = 1


ABORTS = (UsageError, PartLocked, SetupError)
