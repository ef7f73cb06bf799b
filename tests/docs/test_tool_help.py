"""``--help`` of every tool answers before torch or genview_mm's models load.

Tools parse their arguments first and import the heavy stack after, so ``--help`` and usage
errors come at once. Each tool runs with ``--help`` in a fresh interpreter (tests/docs/
tool_help.py), and the modules it imported are read from ``sys.modules``: deterministic, unlike
a timing.
"""
import pytest

from tool_help import HEAVY, probe, tools, warm

TOOLS = tools()

pytestmark = pytest.mark.slow  # a fresh interpreter for every tool


@pytest.fixture(scope='module', autouse=True)
def probes():
    warm(TOOLS)


def test_tools_are_found():
    assert {'tools/train.py', 'tools/import_views.py', 'tools/genview_demo.py',
            'tools/benchmarks/bench_pair_dataset.py'} <= set(TOOLS)
    assert not any('/_' in t for t in TOOLS)  # argument modules are not tools


@pytest.mark.parametrize('tool', TOOLS)
def test_help_imports_nothing_heavy(tool):
    result = probe(tool)
    assert result.code == 0, result.stderr
    assert result.help.startswith('usage: ') and '--help' in result.options
    assert result.imported == (), f'{tool} --help imported {result.imported}'


def test_probe_sees_a_heavy_import(tmp_path):
    """The check can fail: a tool that imports torch before parsing is caught."""
    tool = tmp_path / 'eager.py'
    tool.write_text('import argparse\nimport torch  # noqa: F401\n\n'
                    "if __name__ == '__main__':\n"
                    "    argparse.ArgumentParser().parse_args()\n")
    result = probe(str(tool))
    assert result.code == 0 and result.imported == ('torch',)
    assert 'torch' in HEAVY
