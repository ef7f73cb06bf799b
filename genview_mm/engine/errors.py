"""The errors of a hook whose check fails, before the first iteration or during training."""


class StartCheckFailed(ValueError):
    """What a hook checks before training cannot be used (a views manifest that matches none
    of the images, a kNN loader without labels): the message says what to do, and
    ``tools/train.py`` prints it in one line and exits with status 2."""


class RunCheckFailed(RuntimeError):
    """What a hook checks during training went wrong for too long to go on (the pair scorer
    gave no finite scores for many iterations in a row: the run was training the upstream
    loss): the message says what to do, and ``tools/train.py`` prints it in one line and exits
    with status 1 (``--resume`` continues after the fix)."""
