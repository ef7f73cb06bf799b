"""The package's layers: every import of a genview_mm module runs downwards, none upwards.

Read from the source (every ``import``/``from`` statement, function-local ones included), so an
import added anywhere that climbs a layer fails here with the file, the line and both layers.
"""
import ast
import os
import os.path as osp
from typing import Iterator, Tuple

from helpers import ROOT

PACKAGE = osp.join(ROOT, 'genview_mm')

#: floors from the ground up; a module may import its own sub-package and any lower floor
FLOORS = (
    ('registry', 'version', 'utils'),
    ('compat', 'structures', 'foreground'),  # compat writes checkpoints with utils.atomic_write
    ('models', 'evaluation'),
    ('datasets', 'generation', 'visualization'),
    ('engine', 'demo'),
    ('apis', 'tools'),  # tools: the installed tools/*.py as modules and console scripts
)
FLOOR = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}
#: (file, imported module) pairs still to be moved; each entry must still exist (see below)
PENDING: set = set()


def module_imports(path: str, root: str = ROOT) -> Iterator[Tuple[int, str]]:
    """(line, absolute module name) of every genview_mm import in the file at ``path``."""
    package = osp.relpath(path, root)[:-3].split(os.sep)[:-1]
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                names = ['.'.join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or '']
            if names[0] == 'genview_mm':  # from genview_mm import compat
                names = [f'genview_mm.{a.name}' for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name == 'genview_mm' or name.startswith('genview_mm.'):
                yield node.lineno, name


def room(module: str) -> str:
    """The sub-package (``models``) or top-level module (``compat``) a module belongs to."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else '<genview_mm>'


def package_files() -> Iterator[str]:
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if not d.startswith(('.', '__'))]
        yield from (osp.join(folder, f) for f in sorted(files) if f.endswith('.py'))


def test_every_room_has_a_floor():
    rooms = {room('genview_mm.' + osp.relpath(p, PACKAGE)[:-3].replace(os.sep, '.'))
             for p in package_files()}
    rooms.discard('__init__')
    assert rooms <= set(FLOOR), f'rooms without a floor in FLOORS: {sorted(rooms - set(FLOOR))}'


def test_imports_only_run_downwards():
    upward, pending = [], set()
    for path in package_files():
        rel = osp.relpath(path, ROOT)
        here = room(rel[:-3].replace(os.sep, '.'))
        if here == '__init__':  # genview_mm/__init__.py: the package's face imports every room
            continue
        for line, name in module_imports(path):
            there = room(name)
            if there == here:
                continue
            if (rel, name) in PENDING:
                pending.add((rel, name))
                continue
            if there == '<genview_mm>' or FLOOR[there] >= FLOOR[here]:
                upward.append(f'{rel}:{line} imports {name} '
                              f'({here}, floor {FLOOR[here]} -> {there}, floor '
                              f'{FLOOR.get(there, "top")})')
    assert not upward, 'imports that do not run downwards:\n' + '\n'.join(upward)
    assert pending == PENDING, f'moved already, drop from PENDING: {sorted(PENDING - pending)}'


def test_the_checker_sees_an_upward_import(tmp_path):
    """The parser resolves relative and function-local imports (else the rule checks nothing)."""
    pkg = tmp_path / 'genview_mm' / 'models'
    pkg.mkdir(parents=True)
    src = pkg / 'x.py'
    src.write_text('def f():\n    from ..apis import load_config\n    from . import heads\n')
    found = list(module_imports(str(src), root=str(tmp_path)))
    assert found == [(2, 'genview_mm.apis'), (3, 'genview_mm.models')]
    assert room(found[0][1]) == 'apis' and FLOOR['apis'] > FLOOR['models']
