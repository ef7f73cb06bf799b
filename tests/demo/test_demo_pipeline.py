"""tools/genview_demo.py (the README's main command; tools/run_demo.sh runs it after the
bootstrap): end to end on a small setting, then a rerun that resumes with every stage done."""
import json
import os.path as osp

import pytest
from PIL import Image

from helpers import free_port, run_tool


def run_demo(caller_dir, out):
    """The demo from another directory, with a relative --out-dir (resolved against it)."""
    return run_tool('genview_demo.py', '--out-dir', out, '--num-images', '16', '--epochs', '1',
                    '--gpus', '2', cwd=caller_dir, timeout=900,
                    env=dict(PORT=str(free_port()))).output


@pytest.mark.slow
def test_demo_runs_every_stage_and_resumes(tmp_path):
    log = run_demo(str(tmp_path), 'demo')
    out = str(tmp_path / 'demo')
    with open(osp.join(out, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['images'] == 16 and summary['generated_ok'] == 16
    assert summary['generation_failed'] == 0
    assert sum(summary['noise_levels'].values()) == 16
    assert set(map(int, summary['noise_levels'])) <= {0, 100, 200, 300, 400}
    assert 0.0 <= summary['mean_fg_ratio'] <= 1.0
    assert summary['iterations'] == 1  # 16 images / (2 processes x batch 8)
    assert 'tiny, randomly initialised' in summary['models']['unclip']
    assert osp.isfile(summary['checkpoint'])
    with Image.open(summary['pairs_picture']) as im:
        assert im.width > 100 and im.height > 50
    assert len(summary['stage_seconds']) == 7 and '(done earlier, skipped)' not in log
    # a normal run prints no warning from genview_mm or its tools
    assert not [line for line in log.splitlines() if 'warn' in line.lower()
                and ('genview_mm' in line or 'tools/' in line)], log[-3000:]

    again = run_demo(str(tmp_path), 'demo')
    assert again.count('(done earlier, skipped)') == 7
    with open(osp.join(out, 'summary.json')) as f:
        assert json.load(f)['stage_seconds'] == summary['stage_seconds']  # kept on a rerun
