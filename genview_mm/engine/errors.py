"""The errors of a hook whose check fails, before the first iteration or during training, and
the check of a hook's settings when the runner builds it."""
from typing import Any, Iterable, Tuple


class StartCheckFailed(ValueError):
    """What a hook checks before training cannot be used (a views manifest that matches none
    of the images, a kNN loader without labels): the message says what to do, and
    ``tools/train.py`` prints it in one line and exits with status 2."""


class RunCheckFailed(RuntimeError):
    """What a hook checks during training went wrong for too long to go on (the pair scorer
    gave no finite scores for many iterations in a row: the run was training the upstream
    loss): the message says what to do, and ``tools/train.py`` prints it in one line and exits
    with status 1 (``--resume`` continues after the fix)."""


def is_count(value: Any) -> bool:
    """An integer >= 1 (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def refuse_settings(owner: str, settings: Iterable[Tuple[str, Any, bool, str]]) -> None:
    """:class:`StartCheckFailed` for the first ``(name, value, ok, need)`` that is not ok: a
    setting a hook cannot use is refused when the runner builds it, not an epoch in."""
    for name, value, ok, need in settings:
        if not ok:
            raise StartCheckFailed(f'{owner}: {name} must be {need}, got {value!r}')
