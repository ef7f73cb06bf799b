"""The error of a hook whose check before the first iteration fails."""


class StartCheckFailed(ValueError):
    """What a hook checks before training cannot be used (a views manifest that matches none
    of the images, a kNN loader without labels): the message says what to do, and
    ``tools/train.py`` prints it in one line and exits with status 2."""
