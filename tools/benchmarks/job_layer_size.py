"""The size of the view-generation job layer (issue 16's target: at most 600 lines), counted two
ways per file of ``genview_mm/apis/generation/``: every line (``wc -l``) and the code lines
(without docstrings, comments and blank lines). Prints one line per file, then the totals."""
import argparse
import ast
import glob
import os.path as osp
from typing import Tuple

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
JOB_LAYER = 'genview_mm/apis/generation'


def line_counts(source: str) -> Tuple[int, int]:
    """``(all lines, code lines)`` of Python ``source``: a code line is neither blank, nor a
    comment, nor part of a module, class or function docstring."""
    docs = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                 ast.AsyncFunctionDef)) or not node.body:
            continue
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                isinstance(first.value.value, str):
            docs.update(range(first.lineno, first.end_lineno + 1))
    lines = source.splitlines()
    code = sum(1 for i, text in enumerate(lines, 1)
               if i not in docs and text.strip() and not text.strip().startswith('#'))
    return len(lines), code


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--folder', default=JOB_LAYER, help='the package folder to count, relative '
                   'to the repository (default: %(default)s)')
    folder = osp.join(ROOT, p.parse_args(argv).folder)
    files = sorted(glob.glob(osp.join(folder, '*.py')))
    if not files:
        p.error(f'no .py files in {folder}')
    total = [0, 0]
    for path in files:
        with open(path, encoding='utf-8') as f:
            lines, code = line_counts(f.read())
        total = [total[0] + lines, total[1] + code]
        print(f'{osp.relpath(path, ROOT)} lines={lines} code_lines={code}')
    print(f'total files={len(files)} lines={total[0]} code_lines={total[1]}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
