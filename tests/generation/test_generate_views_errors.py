"""tools/generate_views.py on bad arguments: it ends early with one line naming the flag and
the fix, exit status 2, no traceback, nothing loaded or written. The checks of paths and counts
run before the tool imports anything heavy (a subprocess answers in well under a second)."""
import os
import os.path as osp
import subprocess

import pytest

from gen_tool import cmd
from helpers import tool_env


def unwritable_dir(tmp_path):
    """A folder this process cannot write to (root ignores permission bits: use sysfs)."""
    folder = tmp_path / 'read_only'
    folder.mkdir()
    folder.chmod(0o555)
    return str(folder / 'out') if not os.access(folder, os.W_OK) else '/sys/genview-test-out'


def test_clear_early_errors(photo_dir, tiny_unclip_pca, tiny_unclip_path, tmp_path):
    out = str(tmp_path / 'out')
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    cases = {
        'missing source': (cmd(str(tmp_path / 'no_such_folder'), tiny_unclip_pca,
                               tiny_unclip_path, out),
                           f"source {str(tmp_path / 'no_such_folder')!r} does not exist: pass "
                           'an image folder'),
        'unwritable out-dir': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path,
                                   unwritable_dir(tmp_path)), 'is not writable'),
        'out-dir is a file': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path,
                                  str(a_file)), 'is a file, not a folder'),
        'batch size 0': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                             '--batch-size', '0'), 'argument --batch-size: must be >= 1, got 0'),
        'batch size < 0': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                               '--batch-size', '-2'), '--batch-size: must be >= 1, got -2'),
        'no variations': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                              '--num-variations', '0'), '--num-variations: must be >= 1, got 0'),
        'missing pipeline': (cmd(photo_dir, tiny_unclip_pca, str(tmp_path / 'none'),
                                 out), 'unCLIP pipeline folder not found'),
        'bad PCA path': (cmd(photo_dir, str(tmp_path / 'pca.pth'), tiny_unclip_path,
                             out), 'fit one with tools/fit_foreground_pca.py'),
    }
    procs = {name: subprocess.Popen(c, env=tool_env(), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
             for name, (c, _) in cases.items()}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        lines = [line for line in stderr.splitlines() if 'warn' not in line.lower()]
        assert proc.returncode == 2, (name, stderr[-2000:])
        assert len(lines) == 1 and lines[0].startswith('generate_views.py: error: '), \
            (name, stderr)
        assert cases[name][1] in lines[0], (name, lines[0])
        assert 'Traceback' not in stderr and stdout == ''
    assert not osp.exists(osp.join(out, 'images')) and not osp.exists(osp.join(out, 'manifests'))


@pytest.mark.parametrize('extra,shown', [
    (['--noise-levels', '0', '100', '200', '300', '1200'],
     '--noise-bins/--noise-levels: noise levels must be integers in 0..999'),
    (['--rank', '1'], '--rank and --world-size go together'),
    (['--rank', '2', '--world-size', '2'],
     '--rank/--world-size: need 0 <= rank < world size, got rank 2 of 2'),
    (['--quality', '0'], '--quality must be in 1..100, got 0')])
def test_errors_found_by_the_package(gen_main, photo_dir, tiny_unclip_pca, tiny_unclip_path,
                                     tmp_path, capsys, extra, shown):
    out = str(tmp_path / 'out')
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out, *extra)[2:]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'generate_views.py: error: {shown}') and err.count('\n') == 1, err
    assert os.listdir(out) == []
