"""Checks of the docs' commands (:data:`CHECKS`, by kind), paths and links (:data:`PATHS`) and
configs (blocks load or equal the file they name; a command's config loads with its
``--cfg-options``, whose keys must exist); each returns its problems."""
import argparse
import difflib
import functools
import importlib.util
import re
import subprocess
from pathlib import Path
from typing import Dict, List

import doc_parse as dp
from doc_parse import ROOT, Call, Command, Doc

ALLOWED = {  # commands nothing checks, each with the reason it needs no check
    r'cat \S*downloads/train_variations\.tar\.\* \| tar -x -C data/imagenet/':
        'unpacks the released views with coreutils and tar (nothing of ours runs)',
    r'export CUDA_HOME=\S+( #.*)?': 'points the mmcv build at the CUDA toolkit'}
SCRIPTS = {  # script -> the tool its extra options go to (None: not ours, e.g. ruff's)
    'tools/dist_train.sh': 'tools/train.py', 'tools/dist_test.sh': 'tools/test.py',
    'tools/slurm_train.sh': 'tools/train.py', 'tools/slurm_test.sh': 'tools/test.py',
    'tools/slurm_generate.sh': 'tools/generate_views.py', 'tools/run_demo.sh':
    'tools/genview_demo.py', 'tools/run_tests.sh': None, 'tools/bootstrap_env.sh': None,
    'tools/lint.sh': None, '.ci/run': None, 'tools/benchmarks/gpu_figures.sh': None}
# train.py, dist_train.sh, slurm_test.sh, ...: their config is their first argument ending in .py
CONFIG_TOOLS = re.compile(r'tools/(\w+_)?(train|test|check_config|visualize_pairs)\.(py|sh)$')
FOREIGN = {'--dependency': "sbatch's", 'tools/clip_pca/pca_results': 'the official repository'}
REPO_PATH = re.compile(r'(?<![\w/~.$-])(?:configs|tools|tests|genview_mm|docs)/[\w./<>*-]*')


def option_problems(args: List[str], program: str, known: frozenset = None) -> List[str]:
    known = dp.options_of(program) if known is None else known
    return [f'{o} is not an option of {program}' for o in dp.options_used(args) if o not in known]


def tool_problems(tool: str, args: List[str]) -> List[str]:
    result = dp.probe(tool) if (ROOT / tool).is_file() else None
    if not result or result.code != 0:
        return [f'{tool} --help failed: {result.stderr[-600:]}' if result else
                f'{tool} does not exist']
    return option_problems(args, tool)


def script_problems(call: Call, _) -> List[str]:
    """In :data:`SCRIPTS`, parses, gets its ``$# -lt N`` arguments, passes on its tool's options."""
    script, given = ROOT / call.program, dp.positionals(call.args)
    if call.program not in SCRIPTS:
        return [f'{call.program} does not exist' if not script.is_file() else f'{call.program} '
                'is not in SCRIPTS of tests/docs/doc_checks.py: say where its options go']
    syntax = subprocess.run(['bash', '-n', str(script)], capture_output=True, text=True)
    found = [f'bash -n: {syntax.stderr.strip()}'] if syntax.returncode else []
    needed = int((re.findall(r'if \[ \$# -lt (\d+) \]', script.read_text()) or [0])[0])
    found += [f'{call.program} needs at least {needed} arguments, the command gives '
              f'{len(given)}'] if len(given) < needed else []
    target = SCRIPTS[call.program]
    return found + (tool_problems(target, call.args[len(given):]) if target else [])


CHECKS = {  # command kind -> its problems
    'assignment': lambda call, command: [],
    'tool': lambda call, command: tool_problems(call.program, call.args),
    'torchrun': lambda call, command: tool_problems(call.program, call.args)
    + option_problems(call.launcher_args, 'torchrun'),
    'script': script_problems,
    'options': lambda call, command: option_problems(  # named in the prose: `--steps`
        call.args, call.program or 'any program the docs run',
        dp.options_of(call.program) | set(FOREIGN)),
    'hf': lambda call, command: option_problems(call.args, 'hf download')
    if call.args[:1] == ['download'] and dp.positionals(call.args[1:])
    else ['only `hf download REPO_ID ...` is checked'],
    'unknown': lambda call, command: [] if any(re.fullmatch(p, command.text) for p in ALLOWED)
    else ['a command the checker does not know: teach tests/docs/doc_checks.py to check it, '
          'or add it to ALLOWED with the reason it needs no check']}


@functools.lru_cache(maxsize=None)
def load(path: str, words: tuple = ()) -> tuple:
    """The config with ``--cfg-options`` words (typed as the tools type them), the options."""
    from mmengine.config import DictAction

    from genview_mm.apis import load_config
    typed = argparse.Namespace(options={})
    if words:
        DictAction(option_strings=['--cfg-options'], dest='options')(None, typed, list(words))
    return load_config(path, typed.options or None), typed.options


def config_problems(call: Call, command: Command, written: Dict[str, Path]) -> List[str]:
    config = next((w for w in call.args if w.endswith('.py') and '[' not in w), None)
    path = ROOT / config if config and (ROOT / config).is_file() else written.get(config)
    if config is None:  # a placeholder (CONFIG)
        return []
    if path is None:
        return [f'config {config} is neither in the repository nor a config block of the docs']
    words = tuple(re.sub(r'\$\{?(\w+)\}?', lambda m: command.variables.get(m[1], m[0]), w)
                  for w in dp.option_values(call.args, '--cfg-options'))
    try:
        (cfg, _), (_, options) = load(str(path)), load(str(path), words)
    except Exception as exc:  # any failure to load is the problem to report
        return [f'{config} does not load with its --cfg-options: {type(exc).__name__}: {exc}']
    return [f'--cfg-options {key}: no such key in {config}' for key in options
            if not has_key(cfg, key.split('.'))]


def has_key(node, parts: List[str]) -> bool:
    return not parts or hasattr(node, 'keys') and parts[0] in node and has_key(
        node[parts[0]], parts[1:])


def link_exists(doc: Doc, match: re.Match) -> bool:
    file = (ROOT / doc.name).parent / match[1]
    text = file.read_text() if file.is_file() else None if match[1] else doc.text
    slugs = [re.sub(r'[^\w\- ]', '', h.lower()).replace(' ', '-')
             for h in re.findall(r'^#+ (.*)$', text or '', re.M)]
    return text is not None and (not match[2] or match[2] in slugs)


PATHS = {  # what a line names -> whether it exists
    REPO_PATH: lambda doc, m: m[0] in FOREIGN or any(
        ROOT.glob(re.sub(r'<[^>]+>', '*', m[0].rstrip('.')).rstrip('/'))),  # <x>, *: any file
    r'\b(genview_mm|mmpretrain|mmdet)::([\w./-]+\.py)': lambda doc, m: (ROOT / 'configs' / m[2]
        if m[1] == 'genview_mm' else Path(importlib.util.find_spec(m[1]).origin).parent
        / '.mim' / 'configs' / m[2]).is_file(),
    r'(?<=`)genview_[\w.-]+\.py(?=`)': lambda doc, m: any((ROOT / 'configs').rglob(m[0])),
    r'(?<=\]\()(?!https?:)([^)#\s]*)#?([^)\s]*)(?=\))': link_exists}  # relative, #anchor


def path_problems(doc: Doc) -> List[str]:
    return [f'{doc.name}:{number}: {match[0]} does not exist'
            for number, line in enumerate(doc.text.splitlines(), 1)
            for pattern, exists in PATHS.items() for match in re.finditer(pattern, line)
            if not exists(doc, match)]


def code_lines(text: str) -> List[str]:
    lines = (re.sub(r'\s+#.*$', '', line).rstrip() for line in text.splitlines())
    return [line for line in lines if line and not line.lstrip().startswith('#')]


def config_block_problems(doc: Doc, folder: Path, written: Dict[str, Path]) -> List[str]:
    """A ```python block with ``_base_ =`` whose first line names a file of the repository
    (``# configs/x.py``) shows it whole (its code lines are the file's); any other is written
    under ``folder`` (as its first line names it, e.g. ``# my_project/x.py``; ``./x`` read as
    ``genview_mm::x``) and must load."""
    problems = []
    for block in (b for b in doc.blocks if b.lang == 'python' and '\n_base_ =' in '\n' + b.text):
        name = (re.findall(r'^# ([\w./-]+\.py)\n', block.text) or [f'block_{block.line}.py'])[0]
        where = f'{doc.name}:{block.line} (python config block)'
        if (ROOT / name).is_file():
            diff = '\n'.join(difflib.unified_diff(code_lines((ROOT / name).read_text()), code_lines(
                block.text), name, doc.name, lineterm=''))
            problems += [f'{where}\n    -> differs from {name}:\n{diff}'] if diff else []
            continue
        written[name] = folder / doc.name / name
        written[name].parent.mkdir(parents=True, exist_ok=True)
        written[name].write_text(re.sub(r"(['\"])\./", r'\1genview_mm::', block.text))
        try:
            cfg, _ = load(str(written[name]))
        except Exception as exc:  # any failure to load is the problem to report
            problems.append(f'{where}\n    -> does not load: {type(exc).__name__}: {exc}')
            continue
        problems += [f'{where}\n    -> {p}' for p in dropped_hooks(cfg, written[name])]
    return problems


def dropped_hooks(cfg, path: Path) -> List[str]:
    """A config block that sets ``custom_hooks`` keeps every hook of its base's: the list
    replaces the base's whole list, and a GenView config without its ``GenViewPairHook`` trains
    without the start check that its manifest matches the dataset (a manifest that matches
    nothing then trains on original images only) and without the pair statistics."""
    text = path.read_text()
    base = re.findall(r'^_base_ = .*$', text, re.M)
    if not base or not re.search(r'^custom_hooks\s*=', text, re.M):
        return []
    alone = path.with_name(f'{path.stem}_base_only.py')  # the block's base, nothing added
    alone.write_text(base[0] + '\n')
    kept = {hook.get('type') for hook in cfg.get('custom_hooks') or []}
    lost = [hook.get('type') for hook in load(str(alone))[0].get('custom_hooks') or []
            if hook.get('type') not in kept]
    return [f'custom_hooks drops {", ".join(lost)} of its base config: start the list with '
            '*_base_.custom_hooks'] if lost else []


def doc_problems(docs: List[Doc], folder: Path) -> List[str]:
    """Every check of ``docs`` but the transcripts' (config blocks first: commands use them)."""
    written: Dict[str, Path] = {}
    problems = [p for doc in docs for p in config_block_problems(doc, folder, written)]
    problems += [p for doc in docs for p in path_problems(doc)]
    for command in (c for doc in docs for c in doc.commands):
        call = dp.classify(command.text)
        found = CHECKS[call.kind](call, command)
        if not found and CONFIG_TOOLS.search(call.program or ''):
            found = config_problems(call, command, written)
        problems += [f'{command.where}\n    -> {p}' for p in found]
    return problems
