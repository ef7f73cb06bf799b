"""tools/benchmarks/bench_import.py: both imports timed in fresh interpreters, and what loads."""
import re

import pytest

from helpers import run_tool


@pytest.mark.slow
def test_bench_import_prints_both_medians_and_the_ratio():
    out = run_tool('benchmarks/bench_import.py', '--rounds', '1').output
    medians = dict(re.findall(r'import (\S+)\s+median ([\d.]+) s', out))
    assert set(medians) == {'genview_mm', 'mmpretrain.models'}
    assert all(float(v) > 0 for v in medians.values())
    ratio = float(re.search(r'ratio genview_mm / mmpretrain.models: ([\d.]+)', out).group(1))
    assert ratio == pytest.approx(float(medians['genview_mm'])
                                  / float(medians['mmpretrain.models']), abs=0.02)
    # diffusers is imported only when a generator is built, never by the plugin's import
    line = next(x for x in out.splitlines() if x.startswith('import genview_mm'))
    loads = line.split('; loads ', 1)[1]
    loaded = [] if loads.startswith('none of') else loads.split(', ')
    assert 'diffusers' not in loaded
