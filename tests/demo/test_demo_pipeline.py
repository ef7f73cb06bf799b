"""tools/genview_demo.py (the README's main command; tools/run_demo.sh runs it after the
bootstrap): end to end on a small setting, then a rerun that resumes with every stage done."""
import json
import os.path as osp

import pytest
from PIL import Image

from helpers import free_port, run_tool


def run_demo(out):
    return run_tool('genview_demo.py', '--out-dir', out, '--num-images', '16', '--epochs', '1',
                    '--gpus', '2', timeout=900, env=dict(PORT=str(free_port()))).stdout


@pytest.mark.slow
def test_demo_runs_every_stage_and_resumes(tmp_path):
    out = str(tmp_path / 'demo')
    log = run_demo(out)
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

    again = run_demo(out)
    assert again.count('(done earlier, skipped)') == 7
