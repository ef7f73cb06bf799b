"""Run a tool of tools/ with ``--help`` in a fresh interpreter, once per tool and test session.

The tool runs as ``python tools/X.py --help`` would run it (``runpy`` as ``__main__``, its folder
first on ``sys.path``); every ``argparse`` parser it parses with reports its option strings, so
the options are exactly the parser's, not words picked out of the help text.
"""
import functools
import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import FrozenSet, Iterable, List, Tuple

from helpers import tool_env

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ('torch', 'mmengine', 'mmpretrain', 'mmdet', 'diffusers', 'transformers',
         'genview_mm.models')

PROBE = r'''
import argparse, contextlib, io, json, os, runpy, sys
path, heavy = sys.argv[1], sys.argv[2].split(',')
seen = set()
parse_known_args = argparse.ArgumentParser.parse_known_args


def spy(self, args=None, namespace=None):
    seen.update(self._option_string_actions)
    return parse_known_args(self, args, namespace)


argparse.ArgumentParser.parse_known_args = spy
sys.argv = [path, '--help']
sys.path[0] = os.path.dirname(os.path.abspath(path))
out = io.StringIO()
code = 'no exit'
with contextlib.redirect_stdout(out):
    try:
        runpy.run_path(path, run_name='__main__')
    except SystemExit as exc:
        code = exc.code or 0
print(json.dumps(dict(code=code, help=out.getvalue(), options=sorted(seen),
                      imported=[m for m in heavy if m in sys.modules])))
'''


@dataclass(frozen=True)
class Probe:
    """What ``--help`` of a tool did: exit code, printed help, options, heavy modules imported."""
    code: object
    help: str
    options: FrozenSet[str]
    imported: Tuple[str, ...]
    stderr: str


def environment() -> dict:
    """A tool's environment (:func:`helpers.tool_env`: this checkout on the path, this
    interpreter as ``PYTHON``, no hub access, one thread)."""
    return tool_env()


@functools.lru_cache(maxsize=None)
def probe(tool: str) -> Probe:
    """``--help`` of ``tool`` (a path under the repository root, or absolute)."""
    path = ROOT / tool
    proc = subprocess.run([sys.executable, '-c', PROBE, str(path), ','.join(HEAVY)],
                          cwd=ROOT, env=environment(), capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0 or not proc.stdout.strip():
        return Probe(f'crashed ({proc.returncode})', '', frozenset(), (), proc.stderr[-2000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return Probe(result['code'], result['help'], frozenset(result['options']),
                 tuple(result['imported']), proc.stderr[-2000:])


@functools.lru_cache(maxsize=None)
def external_options(*command: str) -> FrozenSet[str]:
    """The ``--options`` that ``command --help`` prints (for programs that are not ours)."""
    proc = subprocess.run(list(command) + ['--help'], env=environment(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f'{" ".join(command)} --help failed: {proc.stderr[-1000:]}'
    return frozenset(re.findall(r'(?<![\w-])--[A-Za-z0-9][\w-]*', proc.stdout))


def warm(tools: Iterable[str]) -> None:
    """Probe several tools at once (each probe is a separate interpreter)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(probe, tools))


def tools() -> List[str]:
    """The runnable tools: tools/*.py and tools/benchmarks/*.py with a ``__main__`` guard (the
    ``_*.py`` argument modules and other helper modules are not tools)."""
    found = []
    for path in sorted([*ROOT.glob('tools/*.py'), *ROOT.glob('tools/benchmarks/*.py')]):
        if not path.name.startswith('_') and "__name__ == '__main__'" in path.read_text():
            found.append(str(path.relative_to(ROOT)))
    return found
