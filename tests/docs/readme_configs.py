"""The README's config blocks and the configs its train/test/check commands use, loaded.

A ```python block with ``_base_ =`` is a config. One whose ``_base_`` is that of a file in
configs/ shows that file whole and must equal it (code lines; comments may differ). Any other
is written to a folder outside the repository (under the name its first line gives, e.g.
``# my_project/my_genview.py``) and must load; relative bases (``'./x.py'``) are read as the
snippet of a file in configs/, i.e. as ``'genview_mm::x.py'``. A command's config (a path of
the repository or of such a block) must load with the command's ``--cfg-options``, every key of
which must already be in the config (a misspelt key would otherwise be added silently).
"""
import argparse
import ast
import difflib
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from readme_checks import CONFIG_ARG, SCRIPTS, problem
from readme_parse import Block, Command, classify, code_lines, option_values, positionals
from tool_help import ROOT

PLACEHOLDER = re.compile(r'[A-Z][A-Z_]*|\$\w+')


def base_of(code: str) -> object:
    """The literal value of a config's ``_base_`` (None if it has none)."""
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            return ast.literal_eval(node.value)
    return None


def config_blocks(blocks: List[Block]) -> List[Block]:
    return [b for b in blocks if b.lang == 'python' and re.search(r'^_base_ =', b.text, re.M)]


def check_config_blocks(blocks: List[Block], folder: Path) -> Tuple[List[str], Dict[str, Path]]:
    """Problems of the config blocks, and the files written for them (README name -> path)."""
    from genview_mm.apis import load_config
    problems, written = [], {}
    twins = {path: base_of(path.read_text()) for path in (ROOT / 'configs').rglob('*.py')}
    for block in config_blocks(blocks):
        where = f'README.md:{block.line} (python config block)'
        base = base_of(block.text)
        bases = [base] if isinstance(base, str) else list(base)
        if any(b.startswith('.') for b in bases):
            same_base = [p for p, b in twins.items() if b == base]
            if same_base:
                if not any(code_lines(p.read_text()) == code_lines(block.text)
                           for p in same_base):
                    diff = '\n'.join(difflib.unified_diff(
                        code_lines(same_base[0].read_text()), code_lines(block.text),
                        str(same_base[0].relative_to(ROOT)), 'README.md', lineterm=''))
                    problems.append(f'{where}\n    -> shows a config of configs/ whole but '
                                    f'differs from it:\n{diff}')
                continue
        first = block.text.splitlines()[0]
        name = first[2:].strip() if re.fullmatch(r'# [\w./-]+\.py', first) else \
            f'readme_line_{block.line}.py'
        text = re.sub(r"(['\"])\./([\w./-]+\.py['\"])", r'\1genview_mm::\2', block.text)
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written[name] = path
        try:
            load_config(str(path))
        except Exception as exc:  # any failure to load is the problem to report
            problems.append(f'{where}\n    -> does not load: {type(exc).__name__}: {exc}')
    return problems, written


def expand(word: str, variables: Dict[str, str]) -> str:
    return re.sub(r'\$\{?(\w+)\}?', lambda m: variables.get(m.group(1), m.group(0)), word)


def config_of(command: Command) -> Optional[Tuple[str, List[str]]]:
    """The config a train/test/check command uses and its ``--cfg-options`` (None if the
    command uses none or names it by a placeholder such as CONFIG)."""
    parsed = classify(command)
    if parsed.kind == 'python-tool' and parsed.tool in CONFIG_ARG:
        where, args = CONFIG_ARG[parsed.tool], parsed.args
    elif parsed.kind == 'bash-script' and SCRIPTS.get(parsed.tool, (None, None))[1] is not None:
        where, args = SCRIPTS[parsed.tool][1], parsed.args
    else:
        return None
    if isinstance(where, str):
        config = (option_values(args, where) or [None])[0]
    else:
        given = positionals(args)
        config = given[where] if len(given) > where else None
    if config is None or PLACEHOLDER.fullmatch(config):
        return None
    options = [expand(w, command.variables) for w in option_values(args, '--cfg-options')]
    return config, options


def typed_options(words: List[str]) -> dict:
    """``--cfg-options`` words as MMEngine's DictAction types them (as tools/_launch_args)."""
    from mmengine.config import DictAction
    parsed = argparse.Namespace()
    DictAction(option_strings=['--cfg-options'], dest='options')(None, parsed, words)
    return parsed.options


def missing_keys(cfg, keys) -> List[str]:
    missing = []
    for key in keys:
        node = cfg
        for part in key.split('.'):
            if not hasattr(node, 'keys') or part not in node:
                missing.append(key)
                break
            node = node[part]
    return missing


def check_command_configs(commands: List[Command], written: Dict[str, Path]) -> List[str]:
    """Each command's config loads with its ``--cfg-options``, whose keys all exist."""
    from genview_mm.apis import load_config
    problems, loaded, merged = [], {}, set()
    for command in commands:
        use = config_of(command)
        if use is None:
            continue
        config, words = use
        path = ROOT / config if (ROOT / config).is_file() else written.get(config)
        if path is None:
            problems.append(problem(command, f'config {config} is neither in the repository '
                                    'nor a config block of the README'))
            continue
        try:
            if path not in loaded:
                loaded[path] = load_config(str(path))
            options = typed_options(words) if words else {}
            problems += [problem(command, f'--cfg-options {key}: no such key in {config}')
                         for key in missing_keys(loaded[path], options)]
            if options and (path, repr(options)) not in merged:  # each distinct load once
                load_config(str(path), options)
                merged.add((path, repr(options)))
        except Exception as exc:  # any failure to load is the problem to report
            problems.append(problem(command, f'{config} does not load with its --cfg-options:'
                                    f' {type(exc).__name__}: {exc}'))
    return problems
