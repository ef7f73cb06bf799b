"""Checks of a README's commands and paths; each returns its problems, one per string.

Which commands exist and what they run comes from :mod:`readme_parse`; the options of our tools
from :mod:`tool_help`. Config blocks and the configs that commands train or test with are
loaded by :mod:`readme_configs`.
"""
import functools
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, FrozenSet, Iterable, List, Optional, Tuple

from readme_parse import Command, classify, options_used, positionals, split
from tool_help import ROOT, external_options, probe

BIN = Path(sys.executable).parent  # the environment's console scripts (hf, torchrun)

# Commands the checker cannot check, each with the reason it may stay unchecked. A command of
# another kind fails until it is listed here or the checker learns to check it.
ALLOWED = {
    r'cat \S*downloads/train_variations\.tar\.\* \| tar -x -C data/imagenet/':
        'unpacks the released views with coreutils and tar (nothing of ours runs)',
    r'export CUDA_HOME=\S+( #.*)?':
        'points the mmcv build at the CUDA toolkit (a shell variable)',
}
# Scripts the README may run: the tool their extra options go to (None: not ours, e.g. pytest's)
# and the index of the config among their positional arguments (None: they take none).
SCRIPTS = {
    'tools/dist_train.sh': ('tools/train.py', 0),
    'tools/dist_test.sh': ('tools/test.py', 0),
    'tools/slurm_train.sh': ('tools/train.py', 2),
    'tools/slurm_test.sh': ('tools/test.py', 2),
    'tools/slurm_generate.sh': ('tools/generate_views.py', None),
    'tools/run_demo.sh': ('tools/genview_demo.py', None),
    'tools/run_tests.sh': (None, None),
    'tools/bootstrap_env.sh': (None, None),
    'tools/lint.sh': (None, None),  # its options go to ruff check
    '.ci/run': (None, None),
}
# Where the config of a train/test/check command is: a positional index or an option.
CONFIG_ARG = {'tools/train.py': 0, 'tools/test.py': 0, 'tools/check_config.py': 0,
              'tools/visualize_pairs.py': '--config'}
# `--options` named alone in the prose that belong to programs other than ours.
FOREIGN_OPTIONS = {'--dependency': "sbatch's (tools/slurm_generate.sh's merge job)"}
# Paths that look like ours but are another project's.
FOREIGN_PATHS = {'tools/clip_pca/pca_results': "the official GenView repository's PCA vectors"}
REPO_PATH = re.compile(r'(?<![\w/~.$-])(?:configs|tools|tests|genview_mm)/[\w./<>*-]*')
PACKAGE_CONFIG = re.compile(r'\b(genview_mm|mmpretrain|mmdet)::([\w./-]+\.py)')
USAGE_CHECK = re.compile(r'if \[ \$# -lt (\d+) \]')


def problem(command: Command, what: str) -> str:
    return f'{command.where}\n    -> {what}'


def check_unknown(commands: Iterable[Command]) -> List[str]:
    """Commands of no kind the checker knows must match :data:`ALLOWED`, and each entry of
    :data:`ALLOWED` must still be used (a stale entry would let anything through later)."""
    problems, used = [], set()
    for command in commands:
        if classify(command).kind != 'unknown':
            continue
        match = next((p for p in ALLOWED if re.fullmatch(p, command.text)), None)
        if match is None:
            problems.append(problem(command, 'a command the checker does not know: teach '
                                    'tests/docs/readme_checks.py to check it, or add it to '
                                    'ALLOWED with the reason it needs no check'))
        used.add(match)
    problems += [f'ALLOWED entry {p!r} matches no README command' for p in set(ALLOWED) - used]
    return problems


def unknown_options(used: Iterable[str], known: FrozenSet[str], owner: str) -> List[str]:
    return [f'{opt} is not an option of {owner}' for opt in used if opt not in known]


def check_tool(tool: str, args: List[str]) -> List[str]:
    """The tool exists, answers ``--help``, and has every option ``args`` use."""
    if not (ROOT / tool).is_file():
        return [f'{tool} does not exist']
    result = probe(tool)
    if result.code != 0 or not result.options:
        return [f'{tool} --help failed (exit {result.code}): {result.stderr[-600:]}']
    return unknown_options(options_used(args), result.options, tool)


def check_tool_commands(commands: Iterable[Command]) -> List[str]:
    """``python tools/X.py ...`` and ``torchrun [its options] tools/X.py ...``."""
    problems = []
    for command in commands:
        parsed = classify(command)
        if parsed.kind not in ('python-tool', 'torchrun'):
            continue
        found = check_tool(parsed.tool, parsed.args)
        if parsed.kind == 'torchrun':
            found += unknown_options(options_used(parsed.launcher_args),
                                     external_options(str(BIN / 'torchrun')), 'torchrun')
        problems += [problem(command, what) for what in found]
    return problems


@functools.lru_cache(maxsize=None)
def script_facts(script: str) -> Tuple[Optional[str], int]:
    """``bash -n``'s complaint (None if it parses) and the least number of arguments the
    script's usage check (``if [ $# -lt N ]``) requires."""
    proc = subprocess.run(['bash', '-n', str(ROOT / script)], capture_output=True, text=True)
    match = USAGE_CHECK.search((ROOT / script).read_text())
    return (proc.stderr.strip() or 'bash -n failed') if proc.returncode else None, \
        int(match.group(1)) if match else 0


def check_script_commands(commands: Iterable[Command]) -> List[str]:
    """``bash SCRIPT ...``: it exists and parses, gets enough positional arguments, and the
    options it passes on are options of the tool it passes them to."""
    problems = []
    for command in commands:
        parsed = classify(command)
        if parsed.kind != 'bash-script':
            continue
        script = parsed.tool
        if not (ROOT / script).is_file():
            problems.append(problem(command, f'{script} does not exist'))
            continue
        if script not in SCRIPTS:
            problems.append(problem(command, f'{script} is not in SCRIPTS of '
                                    'tests/docs/readme_checks.py: say where its options go'))
            continue
        syntax, needed = script_facts(script)
        given = positionals(parsed.args)
        found = [f'bash -n {script}: {syntax}'] if syntax else []
        if len(given) < needed:
            found.append(f'{script} needs at least {needed} arguments, the command gives '
                         f'{len(given)} ({" ".join(given)})')
        target = SCRIPTS[script][0]
        if target is not None:
            found += check_tool(target, parsed.args[len(given):])
        problems += [problem(command, what) for what in found]
    return problems


def check_hf_commands(commands: Iterable[Command]) -> List[str]:
    """``hf download REPO [--options]``: huggingface_hub's CLI of this environment has them."""
    problems = []
    for command in commands:
        parsed = classify(command)
        if parsed.kind != 'hf':
            continue
        if not (BIN / 'hf').is_file():
            problems.append(problem(command, f'no hf command in {BIN} (huggingface_hub CLI)'))
        elif parsed.args[:1] != ['download'] or not positionals(parsed.args[1:]):
            problems.append(problem(command, 'only `hf download REPO_ID ...` is checked'))
        else:
            known = external_options(str(BIN / 'hf'), 'download')
            problems += [problem(command, what) for what in
                         unknown_options(options_used(parsed.args), known, 'hf download')]
    return problems


def check_inline_options(prose: str, known: Dict[str, FrozenSet[str]]) -> List[str]:
    """``--options`` that the prose names alone (`` `--steps` ``) are options of one of the
    README's programs (``known``: name -> options) or in :data:`FOREIGN_OPTIONS`; those of a
    span that starts with a program's name (`` `generate_views.py ... --rank i` ``), of that
    program."""
    problems = []
    everything = frozenset().union(*known.values())
    for match in re.finditer(r'`((--|[\w-]+\.py )[^`]+)`', prose):
        words = split(' '.join(match.group(1).split()))
        owner = words[0] if words[0] in known else None
        if not owner and not words[0].startswith('--'):
            continue
        line = prose.count('\n', 0, match.start()) + 1
        for opt in options_used(words):
            if opt not in known.get(owner, everything) and opt not in FOREIGN_OPTIONS:
                problems.append(f'README.md:{line}: `{match.group(1)}`\n    -> {opt} is not '
                                f'an option of {owner or "any program the README runs"}')
    return problems


def package_config(package: str, path: str) -> Path:
    """Where ``package::path`` points (the package's ``.mim/configs``, ours: configs/)."""
    if package == 'genview_mm':
        return ROOT / 'configs' / path
    spec = importlib.util.find_spec(package)
    return Path(spec.origin).parent / '.mim' / 'configs' / path


def check_repo_paths(markdown: str) -> List[str]:
    """Paths of the repository (``configs/``, ``tools/``, ``tests/``, ``genview_mm/``; ``*`` and
    ``<placeholder>`` must match something), ``pkg::path.py`` config references and the config
    names of the tables (`` `genview_*.py` ``)."""
    problems = []
    for number, line in enumerate(markdown.splitlines(), 1):
        for path in REPO_PATH.findall(line):
            pattern = re.sub(r'<[^>]+>', '*', path.rstrip('.'))
            if path not in FOREIGN_PATHS and not list(ROOT.glob(pattern.rstrip('/'))):
                problems.append(f'README.md:{number}: {path} does not exist')
        for package, path in PACKAGE_CONFIG.findall(line):
            if not package_config(package, path).is_file():
                problems.append(f'README.md:{number}: {package}::{path} does not exist')
        for name in re.findall(r'`(genview_[\w.-]+\.py)`', line):
            if not list((ROOT / 'configs').rglob(name)):
                problems.append(f'README.md:{number}: no config {name} under configs/')
    return problems
