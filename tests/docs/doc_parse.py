"""What the docs (README.md, docs/*.md) run: the lines of ```bash blocks, ``$ `` lines of ```text
blocks (with the output below them), commands quoted in text blocks, prose code spans starting
with python, bash, torchrun, hf, ``--`` or ``x.py``; and the options of the programs they run."""
import functools
import itertools
import json
import re
import shlex
import subprocess
import sys
from collections import namedtuple
from pathlib import Path
from typing import FrozenSet, List, Tuple

from helpers import tool_env

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the environment's console scripts (hf, torchrun)
DOCS = ['README.md'] + sorted(f'docs/{p.name}' for p in (ROOT / 'docs').glob('*.md'))
ASSIGNMENT = re.compile(r'^[A-Za-z_]\w*=')
TOOL = re.compile(r'(?:^|/)(tools/\S+\.py)$')
QUOTED = re.compile(r'((?:python|bash) tools/\S+|hf download \S+).*?(?=\s{2,}\(|$)')
FENCED = re.compile(r'^```(\w*)[ \t]*\n(.*?)^```[ \t]*$', re.M | re.S)
HEAVY = ('torch', 'mmengine', 'mmpretrain', 'mmdet', 'diffusers', 'transformers',
         'genview_mm.models')
Doc = namedtuple('Doc', 'name text blocks prose commands')  # prose: the blocks blanked
Block = namedtuple('Block', 'lang text line')
# where: 'docs/x.md:12 (bash): TEXT'; output: a transcript's; variables: set by earlier lines
Command = namedtuple('Command', 'text where output variables', defaults=(None, {}))
# kind: tool, torchrun, script, hf, options, assignment or unknown; program: 'tools/train.py'
Call = namedtuple('Call', 'kind program args launcher_args', defaults=(None, [], []))
Probe = namedtuple('Probe', 'code help options imported stderr')  # what a tool's --help did
split = functools.partial(shlex.split, comments=True)  # a command's shell words


def read(name: str, text: str = None) -> Doc:
    """The blocks, prose and commands of ``name`` (read from the checkout unless ``text``)."""
    text = (ROOT / name).read_text() if text is None else text
    blocks = [Block(m[1], m[2], text.count('\n', 0, m.start(2)) + 1) for m in FENCED.finditer(text)]
    prose = FENCED.sub(lambda m: '\n' * m[0].count('\n'), text)
    assert not re.search('^```', prose, re.M), f'{name}: an unclosed code block'
    found = []

    def add(text: str, line: int, source: str, *args) -> Command:
        text = ' '.join(text.split())
        found.append(Command(text, f'{name}:{line} ({source}): {text}', *args))
        return found[-1]
    for lang, body, first in blocks:
        variables, transcript = {}, None
        for match in re.finditer(r'^(?:.*\\\n)*.*$', body.rstrip('\n'), re.M):  # \ joins lines
            number, line = first + body.count('\n', 0, match.start()), match[0].replace('\\\n', ' ')
            if lang == 'bash' and split(line):
                if all(ASSIGNMENT.match(w) for w in split(line)):
                    variables.update(w.split('=', 1) for w in split(line))
                add(line, number, 'bash', None, dict(variables))
            elif lang == 'text' and line.startswith('$ '):
                transcript = add(line[2:], number, 'transcript', [])
            elif lang == 'text':
                if transcript:
                    transcript.output.append(line)
                for quoted in QUOTED.finditer(line):
                    add(quoted[0], number, 'quoted')
    for match in re.finditer(r'`((?:python |bash |torchrun |hf |--|[\w-]+\.py )[^`]+)`', prose):
        add(match[1], prose.count('\n', 0, match.start()) + 1, 'inline')
    return Doc(name, text, blocks, prose, found)


def classify(text: str) -> Call:
    words = list(itertools.dropwhile(ASSIGNMENT.match, split(text)))  # without VAR=x prefixes
    at = next((i for i, w in enumerate(words) if TOOL.search(w)), 0)
    if not words or '|' in words:
        return Call('unknown' if words else 'assignment')
    if re.match(r'--|[\w-]+\.py$', words[0]):  # options named in the prose, alone or after
        return Call('options', words[0] if words[0][0] != '-' else None, words)  # their program
    if (words[0], at) == ('python', 1) or (words[0] == 'torchrun' and at):
        kind = 'tool' if at == 1 and words[0] == 'python' else 'torchrun'
        return Call(kind, TOOL.search(words[at])[1], words[at + 1:], words[1:at])
    if words[0] == 'bash' and len(words) > 1 and not words[1].startswith('-'):
        return Call('script', re.sub(r'^\./', '', words[1]), words[2:])
    return Call('hf', 'hf', words[1:]) if words[0] == 'hf' else Call('unknown')


def options_used(args: List[str]) -> List[str]:
    """``--x=1`` and ``[--x`` give ``--x``."""
    words = (w.lstrip('[').rstrip(']') for w in args)
    return [w.split('=', 1)[0] for w in words if w.startswith('--') and len(w) > 2]


def positionals(args: List[str]) -> List[str]:
    """The words before the first option, leaving out optional ``[...]`` placeholders."""
    words = itertools.takewhile(lambda w: not w.lstrip('[').startswith('-'), args)
    return [w for w in words if '[' not in w and ']' not in w]


def option_values(args: List[str], option: str) -> List[str]:
    """The words given to a ``nargs='+'`` option (up to the next option)."""
    rest = args[args.index(option) + 1:] if option in args else []
    return rest[:next((i for i, w in enumerate(rest) if w.startswith('--')), len(rest))]


PROBE = r'''
import argparse, contextlib, io, json, os, runpy, sys
path, heavy, seen = sys.argv[1], sys.argv[2].split(','), set()
parse = argparse.ArgumentParser.parse_known_args
def spy(self, args=None, namespace=None):
    seen.update(self._option_string_actions)
    return parse(self, args, namespace)
argparse.ArgumentParser.parse_known_args = spy
args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else ['--help']
sys.argv, sys.path[0], out, code = [path, *args], os.path.dirname(path), io.StringIO(), None
with contextlib.redirect_stdout(out):
    try:
        runpy.run_path(path, run_name='__main__')
    except SystemExit as exc:
        code = exc.code or 0
print(json.dumps([code, out.getvalue(), sorted(seen), [m for m in heavy if m in sys.modules]]))
'''


@functools.lru_cache(maxsize=None)
def probe(tool: str, args: Tuple[str, ...] = ('--help',)) -> Probe:
    """``tool ARGS`` in a fresh interpreter, run as ``python tools/X.py`` runs it."""
    proc = subprocess.run([sys.executable, '-c', PROBE, str(ROOT / tool), ','.join(HEAVY),
                           json.dumps(list(args))],
                          cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout, f'{tool} --help crashed: {proc.stderr[-2000:]}'
    code, helped, options, imported = json.loads(proc.stdout.strip().splitlines()[-1])
    return Probe(code, helped, frozenset(options), tuple(imported), proc.stderr[-2000:])


@functools.lru_cache(maxsize=None)
def options_of(program: str) -> FrozenSet[str]:
    """A tool's options (:func:`probe`; by path or name), those ``torchrun --help`` and ``hf
    download --help`` print, or (None) those of all of them."""
    if program is None:
        return frozenset().union(*map(options_of, [*tools(), 'torchrun', 'hf download']))
    if program.endswith('.py'):
        tool = next((t for t in tools() if Path(t).name == program), program)
        return probe(tool).options if (ROOT / tool).is_file() else frozenset()
    proc = subprocess.run([str(BIN / program.split()[0]), *program.split()[1:], '--help'],
                          env=tool_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f'{program} --help failed: {proc.stderr[-1000:]}'
    return frozenset(re.findall(r'(?<![\w-])--[A-Za-z0-9][\w-]*', proc.stdout))


def tools() -> List[str]:
    """tools/*.py and tools/benchmarks/*.py with a ``__main__`` guard (not ``_*.py``)."""
    paths = sorted([*ROOT.glob('tools/*.py'), *ROOT.glob('tools/benchmarks/*.py')])
    return [str(p.relative_to(ROOT)) for p in paths
            if not p.name.startswith('_') and "__name__ == '__main__'" in p.read_text()]
