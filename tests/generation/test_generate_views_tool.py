import glob
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from genview_mm.generation import read_manifest
from genview_mm.generation.manifest import iter_rows

STEPS = '3'


def cmd(repo_root, src, pca, model, out, *extra):
    return [sys.executable, osp.join(repo_root, 'tools', 'generate_views.py'), src, '--pca', pca,
            '--pretrained', model, '--out-dir', out, '--steps', STEPS, '--output-size', '32',
            '--device', 'cpu', '--no-progress', *extra]


def env():
    e = dict(os.environ, OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1')
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        e.pop(k, None)
    return e


def tool_main(repo_root, name):
    """``main`` of tools/<name>.py, run in this process (saves a ~15 s interpreter start)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'tool_{name}',
                                                  osp.join(repo_root, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


@pytest.fixture
def no_dist_env(monkeypatch):
    for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(k, raising=False)


def check_complete(out, keys):
    rows = read_manifest(out)
    assert sorted(r['key'] for r in rows) == sorted(keys)  # each image exactly once
    for r in rows:
        with Image.open(r['output']) as im:
            im.load()
            assert im.size == (32, 32)
    assert not glob.glob(osp.join(out, '**', '*.partial*'), recursive=True)
    return rows


def test_run_mirrors_layout_and_records_failures(repo_root, photo_dir, tiny_unclip_pca,
                                                 tiny_unclip_path, tmp_path, no_dist_env):
    src = str(tmp_path / 'src')
    shutil.copytree(photo_dir, src)
    with open(osp.join(src, 'b', 'zz_broken.jpg'), 'wb') as f:
        f.write(b'\x00not a jpeg')
    out = str(tmp_path / 'out')
    assert tool_main(repo_root, 'generate_views')(
        cmd(repo_root, src, tiny_unclip_pca, tiny_unclip_path, out, '--ext', '.png',
            '--batch-size', '4')[2:]) == 0
    rows = read_manifest(out)
    assert len(rows) == 10
    assert {r['output'] for r in rows} == {
        osp.join(out, 'images', k.replace('.jpg', '.png')) for k in (r['key'] for r in rows)}
    assert all(r['generator'] == tiny_unclip_path and r['noise_level'] in (0, 100, 200, 300, 400)
               for r in rows)
    failed = read_manifest(out, status='failed')
    assert [r['key'] for r in failed] == ['b/zz_broken.jpg']
    assert 'unreadable image' in failed[0]['reason']


def test_kill_and_resume(repo_root, photo_dir, tiny_unclip_pca, tiny_unclip_path, tmp_path,
                         no_dist_env):
    src = str(tmp_path / 'src')
    for i in range(2):  # 20 images
        shutil.copytree(photo_dir, osp.join(src, f'part{i}'))
    keys = [osp.relpath(p, src) for p in glob.glob(osp.join(src, '**', '*.jpg'), recursive=True)]
    out = str(tmp_path / 'out')
    args = cmd(repo_root, src, tiny_unclip_pca, tiny_unclip_path, out, '--batch-size', '1',
               '--no-merge')
    part = osp.join(out, 'manifests', 'part-00000-of-00001.jsonl')
    proc = subprocess.Popen(args, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if osp.isfile(part) and len(list(iter_rows(part))) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, 'run finished before it could be killed: ' + \
        proc.stderr.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = len(list(iter_rows(part)))
    assert 2 <= first < 20
    # resume with the same arguments (in this process)
    assert tool_main(repo_root, 'generate_views')(args[2:-1]) == 0
    assert len(list(iter_rows(part))) == 20  # nothing that finished was redone
    check_complete(out, keys)
    merge = tool_main(repo_root, 'merge_manifests')
    assert merge([out, '--source', src, '--check-files']) == 0
    os.remove(read_manifest(out)[0]['output'])
    assert merge([out, '--source', src, '--check-files']) == 1  # a listed file went missing


def test_torchrun_two_processes(repo_root, photo_dir, tiny_unclip_pca, tiny_unclip_path,
                                tmp_path):
    out = str(tmp_path / 'out')
    args = cmd(repo_root, photo_dir, tiny_unclip_pca, tiny_unclip_path, out, '--batch-size', '2')
    run = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
           '2'] + args[1:]
    res = subprocess.run(run, capture_output=True, text=True, timeout=300, env=env())
    assert res.returncode == 0, res.stderr[-3000:]
    parts = sorted(glob.glob(osp.join(out, 'manifests', '*.jsonl')))
    assert [osp.basename(p) for p in parts] == ['part-00000-of-00002.jsonl',
                                                'part-00001-of-00002.jsonl']
    shares = [{r['key'] for r in iter_rows(p)} for p in parts]
    assert len(shares[0]) == len(shares[1]) == 5 and not shares[0] & shares[1]
    keys = [osp.relpath(p, photo_dir) for p in glob.glob(osp.join(photo_dir, '*', '*.jpg'))]
    check_complete(out, keys)  # merged by rank 0 after the barrier


def test_cli_errors(repo_root, photo_dir, tiny_unclip_pca, tiny_unclip_path, tmp_path,
                    no_dist_env):
    main = tool_main(repo_root, 'generate_views')
    with pytest.raises(ValueError, match=r'integers in 0\.\.999'):
        main(cmd(repo_root, photo_dir, tiny_unclip_pca, tiny_unclip_path, str(tmp_path / 'o'),
                 '--noise-levels', '0', '100', '200', '300', '1200')[2:])
    with pytest.raises(FileNotFoundError, match='unCLIP pipeline folder not found'):
        main(cmd(repo_root, photo_dir, tiny_unclip_pca, str(tmp_path / 'none'),
                 str(tmp_path / 'o'))[2:])
