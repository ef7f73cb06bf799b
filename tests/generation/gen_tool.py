"""Running tools/generate_views.py and tools/merge_manifests.py in the generation tests."""
import os
import os.path as osp

from PIL import Image

from genview_mm.structures.manifest import read_manifest
from helpers import tool_cmd

STEPS = '3'


def cmd(src, pca, model, out, *extra):
    """The tool's command line (tiny pipeline, 3 steps, 32 px, CPU); ``[2:]`` is its argv."""
    return tool_cmd('generate_views.py', src, '--pca', pca, '--pretrained', model, '--out-dir', out,
                    '--steps', STEPS, '--output-size', '32', '--device', 'cpu', '--no-progress',
                    *extra)


def check_complete(out, keys, size=32):
    """The merged manifest lists each key once, and every listed output decodes."""
    rows = read_manifest(out)
    assert sorted(r['key'] for r in rows) == sorted(keys)  # each image exactly once
    for r in rows:
        with Image.open(r['output']) as im:
            im.load()
            assert im.size == (size, size)
    assert not leftovers(out)
    return rows


def leftovers(out):
    """Temporary files (hidden ones too: ``.partial`` and ``atomic_write``'s ``.tmp-``) and
    journals under ``out``."""
    return [osp.join(d, f) for d, _, files in os.walk(out) for f in files
            if '.partial' in f or '.tmp-' in f or f.endswith('.journal')]
