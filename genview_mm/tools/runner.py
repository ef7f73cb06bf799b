"""Run a tool of ``tools/`` from wherever genview_mm is: a checkout or an installed wheel.

A wheel carries the repository's ``tools/`` under ``genview_mm/.mim/tools`` (``setup.py``); a
checkout links that folder to ``tools/`` (or has ``tools/`` next to the package). The tool
file runs as ``__main__`` with the command line unchanged, exactly as
``python tools/<name>.py`` would run it, so its exit status and messages are the same.
"""
import os.path as osp
import runpy
import sys
from typing import Callable, Optional

from ..utils import interrupt
from ..utils.installation import TOOLS, tools_dir


def run_tool(name: str, argv: Optional[list] = None) -> None:
    """Run ``tools/<name>.py`` as ``__main__``; its ``sys.exit`` ends the process.

    Args:
        name (str): a key of :data:`TOOLS`.
        argv (list, optional): arguments instead of ``sys.argv[1:]``. Defaults to None.
    """
    if name not in TOOLS:
        raise KeyError(f'unknown tool {name!r}; tools: {", ".join(sorted(TOOLS))}')
    interrupt.install()
    path = osp.join(tools_dir(), f'{name}.py')
    if argv is not None:
        sys.argv[1:] = list(argv)
    runpy.run_path(path, run_name='__main__')


def tool_main(name: str) -> Callable[[], None]:
    """The ``main`` of ``genview_mm.tools.<name>`` (a console-script entry point)."""

    def main() -> None:
        run_tool(name)

    main.__doc__ = f'Run tools/{name}.py (console command {TOOLS[name]}).'
    return main
