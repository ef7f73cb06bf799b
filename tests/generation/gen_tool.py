"""Helpers to run tools/generate_views.py and tools/merge_manifests.py in tests."""
import glob
import importlib.util
import os
import os.path as osp
import sys

from PIL import Image

from genview_mm.generation import read_manifest

STEPS = '3'
DIST_VARS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT',
             'TORCHELASTIC_RUN_ID')


def cmd(repo_root, src, pca, model, out, *extra):
    """The tool's command line (tiny pipeline, 3 steps, 32 px, CPU)."""
    return [sys.executable, osp.join(repo_root, 'tools', 'generate_views.py'), src, '--pca', pca,
            '--pretrained', model, '--out-dir', out, '--steps', STEPS, '--output-size', '32',
            '--device', 'cpu', '--no-progress', *extra]


def env(**extra):
    """Environment of a tool subprocess: one thread, offline, no launcher variables."""
    e = dict(os.environ, OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1')
    for k in DIST_VARS:
        e.pop(k, None)
    e.update(extra)
    return e


def tool_main(repo_root, name):
    """``main`` of tools/<name>.py, run in this process (saves a ~7 s interpreter start)."""
    spec = importlib.util.spec_from_file_location(f'tool_{name}',
                                                  osp.join(repo_root, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def check_complete(out, keys, size=32):
    """The merged manifest lists each key once, and every listed output decodes."""
    rows = read_manifest(out)
    assert sorted(r['key'] for r in rows) == sorted(keys)  # each image exactly once
    for r in rows:
        with Image.open(r['output']) as im:
            im.load()
            assert im.size == (size, size)
    assert not glob.glob(osp.join(out, '**', '*.partial*'), recursive=True)
    return rows
