"""tools/benchmarks/job_layer_size.py: issue 16's job-layer size, every line and the code lines."""
import importlib.util
import os.path as osp
import re

import pytest


@pytest.fixture(scope='module')
def tool(repo_root):
    path = osp.join(repo_root, 'tools', 'benchmarks', 'job_layer_size.py')
    spec = importlib.util.spec_from_file_location('job_layer_size', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_code_lines_leave_out_docstrings_comments_and_blank_lines(tool):
    source = '''"""Module doc,
on two lines."""
import os  # a comment after code is code


# a comment line
class A:
    """Class doc."""

    x = """a string that is not a docstring
    is code"""

    def f(self):
        """Doc."""
        return os.sep
'''
    assert tool.line_counts(source) == (15, 6)  # code: lines 3, 7, 10, 11, 13, 15


def test_totals_are_the_files_sums_and_wc_counts(tool, repo_root, capsys):
    assert tool.main([]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [re.fullmatch(r'(\S+) lines=(\d+) code_lines=(\d+)', line) for line in out[:-1]]
    assert all(rows) and {r.group(1) for r in rows} >= {
        'genview_mm/apis/generation/job.py', 'genview_mm/apis/generation/runner.py'}
    for row in rows:  # every line, as wc -l counts them
        with open(osp.join(repo_root, row.group(1)), 'rb') as f:
            assert int(row.group(2)) == f.read().count(b'\n')
        assert 0 < int(row.group(3)) < int(row.group(2))
    assert out[-1] == (f'total files={len(rows)} lines={sum(int(r.group(2)) for r in rows)} '
                       f'code_lines={sum(int(r.group(3)) for r in rows)}')
    with pytest.raises(SystemExit):
        tool.main(['--folder', 'no/such/folder'])
    # the tool's own refusal, not argparse's (an unknown option exits the same way)
    assert f"error: no .py files in {osp.join(repo_root, 'no/such/folder')}" in \
        capsys.readouterr().err
