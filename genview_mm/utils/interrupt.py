"""Ctrl-C in a tool: one line instead of a traceback, and the exit status of an interrupt.

:func:`install` wraps ``sys.excepthook``: an uncaught ``KeyboardInterrupt`` prints
``<tool>: interrupted`` to stderr; Python then ends the process by SIGINT, as it does for any
uncaught ``KeyboardInterrupt``, which a shell reports as status 130 (128 + SIGINT) and which
stops a calling shell loop too. Every other exception reaches the previous hook unchanged.
``import genview_mm`` installs it when the running program is one of the tools
(:func:`install_if_tool`); the ``genview-*`` commands install it before anything else.
:func:`deferred_stop` lets a long loop save its work at its next safe point before a Ctrl-C or
SIGTERM ends it (the extra-image scan).
"""
import os.path as osp
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Iterator, List, Optional

from .installation import TOOLS_MARKER


def install(prog: Optional[str] = None) -> None:
    """Print one line for an uncaught ``KeyboardInterrupt`` (idempotent).

    Args:
        prog (str, optional): name printed before ``interrupted``. Defaults to the basename
            of ``sys.argv[0]``.
    """
    previous = sys.excepthook
    if getattr(previous, '_genview_mm', False):
        return

    def excepthook(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            name = prog or osp.basename(sys.argv[0] if sys.argv else '') or 'genview_mm'
            print(f'{name}: interrupted', file=sys.stderr, flush=True)
            return
        previous(exc_type, exc, tb)

    excepthook._genview_mm = True
    sys.excepthook = excepthook


def exit_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit(143)``, so that ``finally`` blocks run (a tool that
    starts child processes stops them) instead of the process vanishing at once. A SIGTERM
    after the first is ignored: the exit is under way, and a repeat (torchrun or the demo
    passing on the SIGTERM that Slurm or ``timeout`` sent to every process) cut those
    ``finally`` blocks short; SIGKILL, which a scheduler sends after its grace time, still
    ends the process."""
    stopping: List[int] = []

    def handler(signum, frame) -> None:
        if stopping:  # a repeat: not a second SystemExit inside the first one's finally
            return
        stopping.append(signum)
        raise SystemExit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, handler)


class StopRequest:
    """What :func:`deferred_stop` records: the first SIGINT or SIGTERM, until :meth:`stop`."""

    def __init__(self) -> None:
        self.signals: List[int] = []

    @property
    def requested(self) -> bool:
        return bool(self.signals)

    def stop(self) -> None:
        """End the process as the recorded signal would have, now that the work is saved:
        ``KeyboardInterrupt`` for SIGINT, ``SystemExit(143)`` for SIGTERM."""
        if self.signals and self.signals[0] == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signals:
            raise SystemExit(128 + self.signals[0])


@contextmanager
def deferred_stop() -> Iterator[StopRequest]:
    """While inside, the first SIGINT (Ctrl-C) or SIGTERM (Slurm's preemption, ``scancel``) is
    recorded for the work to save at its next safe point and then :meth:`StopRequest.stop`; a
    second one acts at once, as without this. A signal the process ignores (``SIG_IGN``: a
    background job of a script ignores SIGINT) stays ignored. Outside the main thread (no
    signals there): nothing is recorded. The previous handlers come back on leaving."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {kind: signal.getsignal(kind) for kind in (signal.SIGINT, signal.SIGTERM)}
    previous = {kind: handler for kind, handler in previous.items()
                if handler is not signal.SIG_IGN}  # ignored before: ignored still

    def record(signum, frame) -> None:
        if request.signals:  # the second one: no more waiting
            request.signals.append(signum)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        request.signals.append(signum)

    for kind in previous:
        signal.signal(kind, record)
    try:
        yield request
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler if handler is not None else signal.SIG_DFL)


def is_tool_process() -> bool:
    """Whether ``__main__`` is a genview_mm tool (``tools/*.py`` or ``genview_mm.tools.*``)."""
    main = sys.modules.get('__main__')
    spec = getattr(main, '__spec__', None)
    if spec is not None and (spec.name or '').startswith('genview_mm.tools.'):
        return True
    path = getattr(main, '__file__', None)
    if not path:
        return False
    folder = osp.dirname(osp.realpath(path))
    return osp.basename(folder) == 'tools' and osp.isfile(osp.join(folder, TOOLS_MARKER))


def install_if_tool() -> None:
    """:func:`install` when the running program is a genview_mm tool; otherwise nothing (a
    user's own script keeps Python's traceback)."""
    if is_tool_process():
        install()
