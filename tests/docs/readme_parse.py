"""The commands, config blocks and config paths written in a Markdown file (pure functions).

A command is a line of a ```bash block (``\\`` continuations joined, ``#`` comments dropped), a
``$ `` line of a ```text block (its output is the block's lines up to the next ``$ ``), a
``python tools/...``, ``bash tools/...`` or ``hf download`` command quoted inside a text block,
or an inline code span of the prose that starts with ``python ``, ``bash ``, ``torchrun `` or
``hf ``. :func:`classify` says which kind of command it is and what it runs.
"""
import re
import shlex
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

FENCE = re.compile(r'^```(\w*)\s*$')
ASSIGNMENT = re.compile(r'^[A-Za-z_]\w*=')
INLINE_PREFIXES = ('python ', 'bash ', 'torchrun ', 'hf ')
QUOTED_IN_TEXT = re.compile(r'((?:python|bash) tools/\S+|hf download \S+).*?(?=\s{2,}\(|$)')
TOOL_PATH = re.compile(r'(?:^|/)(tools/\S+\.py)$')


@dataclass
class Block:
    """A fenced code block: its language (may be empty), text and first line number."""
    lang: str
    text: str
    line: int


@dataclass
class Command:
    """A command of the README, where it is written and what it prints (transcripts only)."""
    text: str
    line: int
    source: str  # 'bash', 'text' ($ line), 'quoted' (inside a text block), 'inline'
    output: Optional[List[str]] = None
    variables: Dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f'README.md:{self.line} ({self.source}): {self.text}'


@dataclass
class Parsed:
    """A command split into its parts (see :func:`classify`)."""
    kind: str  # assignment, python-tool, torchrun, bash-script, hf, unknown
    env: Dict[str, str]
    tool: Optional[str] = None  # repository path, e.g. 'tools/benchmarks/bench_generator.py'
    args: List[str] = field(default_factory=list)  # what follows the tool (or 'hf')
    launcher_args: List[str] = field(default_factory=list)  # torchrun's own arguments


def fenced_blocks(markdown: str) -> Tuple[List[Block], str]:
    """The fenced blocks and the prose (the text with every block blanked, lines kept)."""
    blocks, prose, current = [], [], None
    for number, line in enumerate(markdown.splitlines(), 1):
        match = FENCE.match(line)
        if current is None and match:
            current = Block(match.group(1), '', number + 1)
        elif current is not None and line.strip() == '```':
            blocks.append(current)
            current = None
        elif current is not None:
            current.text += line + '\n'
        else:
            prose.append(line)
            continue
        prose.append('')
    assert current is None, f'README.md:{current.line}: unclosed code block'
    return blocks, '\n'.join(prose)


def logical_lines(text: str, first_line: int) -> List[Tuple[int, str]]:
    """Lines with ``\\`` continuations joined, numbered by their first line."""
    out, pending, start = [], '', first_line
    for number, line in enumerate(text.splitlines(), first_line):
        if not pending:
            start = number
        if line.rstrip().endswith('\\'):
            pending += line.rstrip()[:-1] + ' '
            continue
        out.append((start, pending + line))
        pending = ''
    if pending:
        out.append((start, pending))
    return out


def split(text: str) -> List[str]:
    """Shell words of a command, comments dropped (``|`` stays a word of its own)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars='|')
    lexer.whitespace_split = True
    lexer.commenters = '#'
    return list(lexer)


def commands(markdown: str) -> List[Command]:
    """Every command of the file, in order of kind then position (see the module docstring)."""
    blocks, prose = fenced_blocks(markdown)
    found: List[Command] = []
    for block in blocks:
        if block.lang == 'bash':
            variables: Dict[str, str] = {}
            for number, line in logical_lines(block.text, block.line):
                words = split(line)
                if not words:
                    continue
                if all(ASSIGNMENT.match(w) for w in words):
                    variables.update(w.split('=', 1) for w in words)
                found.append(Command(' '.join(line.split()), number, 'bash',
                                     variables=dict(variables)))
        elif block.lang == 'text':
            found.extend(_text_block_commands(block))
    for match in re.finditer(r'`([^`]+)`', prose):
        span = ' '.join(match.group(1).split())
        if span.startswith(INLINE_PREFIXES):
            line = prose.count('\n', 0, match.start()) + 1
            found.append(Command(span, line, 'inline'))
    return found


def _text_block_commands(block: Block) -> List[Command]:
    """``$ `` lines with their output, and commands quoted in the other lines."""
    found: List[Command] = []
    transcript: Optional[Command] = None
    for number, line in enumerate(block.text.splitlines(), block.line):
        if line.startswith('$ '):
            transcript = Command(line[2:].strip(), number, 'text', output=[])
            found.append(transcript)
            continue
        if transcript is not None:
            transcript.output.append(line)
        for match in QUOTED_IN_TEXT.finditer(line):
            found.append(Command(match.group(0).strip(), number, 'quoted'))
    return found


def classify(command: Command) -> Parsed:
    """What a command runs: a tool of tools/, torchrun, a bash script, ``hf`` or else."""
    words = split(command.text)
    env = {}
    while words and ASSIGNMENT.match(words[0]):
        key, value = words.pop(0).split('=', 1)
        env[key] = value
    if not words:
        return Parsed('assignment', env)
    if '|' in words:
        return Parsed('unknown', env)
    head = words[0]
    if head == 'python' and len(words) > 1 and TOOL_PATH.search(words[1]):
        return Parsed('python-tool', env, TOOL_PATH.search(words[1]).group(1), words[2:])
    if head == 'torchrun':
        index = next((i for i, w in enumerate(words) if TOOL_PATH.search(w)), None)
        if index is not None:
            return Parsed('torchrun', env, TOOL_PATH.search(words[index]).group(1),
                          words[index + 1:], words[1:index])
    if head == 'bash' and len(words) > 1 and not words[1].startswith('-'):
        return Parsed('bash-script', env, re.sub(r'^\./', '', words[1]), words[2:])
    if head == 'hf':
        return Parsed('hf', env, None, words[1:])
    return Parsed('unknown', env)


def options_used(args: List[str]) -> List[str]:
    """The ``--options`` among a command's words (``--x=1`` gives ``--x``; ``[--x`` gives
    ``--x``)."""
    found = []
    for word in args:
        word = word.lstrip('[').rstrip(']')
        if word.startswith('--') and len(word) > 2:
            found.append(word.split('=', 1)[0])
    return found


def positionals(args: List[str]) -> List[str]:
    """The words before the first option, leaving out optional ``[...]`` placeholders."""
    out, depth = [], 0
    for word in args:
        if depth == 0 and word.startswith('-'):
            break
        opens, closes = word.count('['), word.count(']')
        if depth == 0 and not opens:
            out.append(word)
        depth += opens - closes
    return out


def option_values(args: List[str], option: str) -> List[str]:
    """The words given to a ``nargs='+'`` option (up to the next option)."""
    values: List[str] = []
    for i, word in enumerate(args):
        if word == option:
            for value in args[i + 1:]:
                if value.startswith('--'):
                    break
                values.append(value)
    return values


def code_lines(text: str) -> List[str]:
    """Lines of Python code without comments, trailing spaces and blank lines."""
    out = []
    for line in text.splitlines():
        line = re.sub(r'\s+#.*$', '', line).rstrip()
        if line and not line.lstrip().startswith('#'):
            out.append(line)
    return out
