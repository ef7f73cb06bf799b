"""How far one image travels: tools/generate_views.py -> its manifest row runs code in at most 8
job-side files (issue 16's target), counted as the issue counts them: one image run in a fresh
interpreter under a profiler, every repository file whose code ran (module bodies on import
included), the job side being tools/, genview_mm/apis/generation/ and genview_mm/structures/
without the packages' __init__ files."""
import json
import os.path as osp
import sys

import pytest

from helpers import ROOT, run_cmd, write_photos

TRACE = r'''
import json, os.path as osp, sys, threading, importlib.util
root, argv = sys.argv[1], json.loads(sys.argv[2])
sys.path.insert(0, root)
seen = {}
def prof(frame, event, arg):
    f = frame.f_code.co_filename
    if event == 'call' and f.startswith(root + '/') and f not in seen:
        seen[f] = len(seen)
spec = importlib.util.spec_from_file_location('tool', osp.join(root, 'tools', 'generate_views.py'))
tool = importlib.util.module_from_spec(spec)
sys.setprofile(prof)
threading.setprofile(prof)
spec.loader.exec_module(tool)
rc = tool.main(argv)
sys.setprofile(None)
print(json.dumps([rc, sorted(osp.relpath(f, root) for f in seen)]))
'''


@pytest.mark.slow
def test_one_image_from_the_tool_to_its_row_visits_at_most_8_job_files(
        tiny_unclip_path, tiny_unclip_pca, tmp_path):
    write_photos(str(tmp_path / 'src' / 'a'), 1, 48)
    argv = [str(tmp_path / 'src'), '--pca', tiny_unclip_pca, '--pretrained', tiny_unclip_path,
            '--out-dir', str(tmp_path / 'out'), '--steps', '2', '--output-size', '32',
            '--device', 'cpu', '--no-progress']  # merging included
    res = run_cmd([sys.executable, '-c', TRACE, ROOT, json.dumps(argv)], timeout=300)
    rc, files = json.loads(res.stdout.strip().splitlines()[-1])
    assert rc == 0
    job = [f for f in files if f.startswith(('tools/', 'genview_mm/apis/generation/',
                                             'genview_mm/structures/'))
           and osp.basename(f) != '__init__.py']
    assert len(job) <= 8, job
    assert sorted(job) == sorted([  # _early: the argument checks' rules, from the library
        'tools/generate_views.py', 'tools/_early.py', 'genview_mm/structures/manifest.py',
        'genview_mm/apis/generation/job.py', 'genview_mm/apis/generation/settings.py',
        'genview_mm/apis/generation/runner.py',
        'genview_mm/apis/generation/shards.py'])
