"""The generation settings file (what a rerun must match), the launch modes read from the
environment, and the final barrier that gives up after its timeout."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from genview_mm.generation.errors import SettingsMismatch, UsageError
from genview_mm.generation.launch import launch_from
from genview_mm.generation.settings import (
    SETTINGS_NAME,
    check_settings,
    clear_outputs,
    settings_diff,
    write_settings,
)
from helpers import free_port, tool_env


def base():
    return dict(format=2, pretrained='/m/unclip', pca_sha256='ab', dtype='float32', steps=20,
                guidance=10.0, seed=0, prompt='', ext='.jpg', quality=95, num_variations=1)


def test_settings_diff_lists_old_and_new():
    new = dict(base(), steps=30, pca_sha256='cd')
    assert settings_diff(base(), new) == ["pca_sha256: 'ab' -> 'cd'", 'steps: 20 -> 30']
    assert settings_diff(base(), base()) == []
    assert settings_diff({}, {'seed': 1}) == ["seed: '(not recorded)' -> 1"]


def test_write_then_check_and_refuse(tmp_path):
    out = str(tmp_path / 'out')
    check_settings(out, base())  # nothing there yet
    write_settings(out, base())
    assert json.load(open(osp.join(out, SETTINGS_NAME))) == base()
    write_settings(out, base())  # a second rank with the same settings
    assert [f for f in os.listdir(out) if 'partial' in f] == []
    with pytest.raises(SettingsMismatch) as err:
        write_settings(out, dict(base(), seed=1))
    msg = str(err.value)
    assert 'seed: 0 -> 1' in msg and '--overwrite' in msg and 'new --out-dir' in msg
    assert json.load(open(osp.join(out, SETTINGS_NAME))) == base()  # the first one stays


def test_views_without_settings_file_are_refused_then_cleared(tmp_path):
    out = tmp_path / 'out'
    (out / 'images' / 'a').mkdir(parents=True)
    (out / 'images' / 'a' / 'x.jpg').write_bytes(b'x')
    (out / 'manifests').mkdir()
    (out / 'manifests' / 'part-00000-of-00001.jsonl').write_text('')
    (out / 'keep.txt').write_text('mine')
    with pytest.raises(SettingsMismatch, match='no generation_settings.json'):
        check_settings(str(out), base())
    clear_outputs(str(out))
    assert sorted(os.listdir(out)) == ['keep.txt']
    check_settings(str(out), base())


def test_launch_modes():
    assert launch_from(env={}) == (0, 1, 0, False)
    # a job-array task: fixed RANK/WORLD_SIZE, no MASTER_ADDR -> no process group, GPU 0
    assert launch_from(env={'RANK': '3', 'WORLD_SIZE': '4'}) == (3, 4, 0, False)
    torchrun = {'RANK': '3', 'WORLD_SIZE': '4', 'LOCAL_RANK': '1', 'MASTER_ADDR': 'h',
                'TORCHELASTIC_RUN_ID': 'x'}
    assert launch_from(env=torchrun) == (3, 4, 1, True)
    assert launch_from(env={'WORLD_SIZE': '1', 'MASTER_ADDR': 'h'}).torchrun is False
    assert launch_from(1, 2, env=torchrun) == (1, 2, 0, False)  # flags win: separate launch
    with pytest.raises(UsageError, match='go together'):
        launch_from(rank=1)
    with pytest.raises(UsageError, match='rank 2 of 2'):
        launch_from(2, 2)
    with pytest.raises(UsageError, match='RANK/WORLD_SIZE'):
        launch_from(env={'RANK': '5', 'WORLD_SIZE': '2'})
    with pytest.raises(UsageError, match='not an integer'):
        launch_from(env={'RANK': 'x'})


BARRIER = r'''
import datetime, logging, os, sys, time
import torch.distributed as dist
logging.basicConfig(level=logging.INFO, format='%(message)s')
rank, flag = int(os.environ['RANK']), sys.argv[1]
if rank == 0:
    from genview_mm.generation.launch import Launch, close_group, final_barrier, init_group
    init_group(2.0)
    start = time.time()
    arrived = final_barrier(Launch(0, 2, 0, True), timeout_min=0.05)  # 3 s
    print('arrived', arrived, 'after', round(time.time() - start), 's', flush=True)
    open(flag, 'w').close()
    close_group()
else:  # joins the group, then is still busy with its share until rank 0 gave up
    dist.init_process_group('gloo', timeout=datetime.timedelta(minutes=2))
    while not os.path.exists(flag):
        time.sleep(0.1)
    os._exit(0)
'''


@pytest.mark.slow
def test_final_barrier_gives_up_after_its_timeout(tmp_path):
    port = str(free_port())
    flag = str(tmp_path / 'rank0_done')
    procs = [subprocess.Popen([sys.executable, '-c', BARRIER, flag],
                              env=tool_env(MASTER_ADDR='127.0.0.1', MASTER_PORT=port,
                                           WORLD_SIZE='2', RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in (0, 1)]
    logs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert 'waiting up to 0.05 min (--barrier-timeout) at the final barrier for the other 1 ' \
           'ranks' in logs[0]
    assert 'arrived False after 3 s' in logs[0] or 'arrived False after 4 s' in logs[0], logs[0]
    assert 'did not all finish within 0.05 min' in logs[0] and 'merge_manifests.py' in logs[0]
    assert 'Rank 1' in logs[0]  # gloo's monitored barrier names the missing rank
