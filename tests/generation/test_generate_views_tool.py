"""tools/generate_views.py end to end on the tiny pipeline: the output layout and manifest,
failures recorded, a killed run resumed, torchrun and job-array launches (no barrier: the last
finisher merges), and a second writer of the same shard refused."""
import glob
import json
import os
import os.path as osp
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from gen_tool import check_complete, cmd
from genview_mm.structures.manifest import read_manifest, read_rows
from helpers import run_cmd, tool_env


def test_run_mirrors_layout_and_records_failures(gen_main, photo_dir, tiny_unclip_pca,
                                                 tiny_unclip_path, tmp_path):
    from genview_mm.apis.generation.shards import output_relpath
    src = str(tmp_path / 'src')
    shutil.copytree(photo_dir, src)
    with open(osp.join(src, 'b', 'zz_broken.jpg'), 'wb') as f:
        f.write(b'\x00not a jpeg')
    out = str(tmp_path / 'out')
    assert gen_main(cmd(src, tiny_unclip_pca, tiny_unclip_path, out, '--ext', '.png',
                        '--batch-size', '4')[2:]) == 0
    rows = read_manifest(out)
    assert len(rows) == 10
    assert {r['output'] for r in rows} == {
        osp.join(out, output_relpath(r['key'], 0, 1, '.png')) for r in rows}
    assert all(osp.dirname(r['output']) == osp.join(out, 'images', r['key'][0]) for r in rows)
    assert all(r['generator'] == tiny_unclip_path and r['noise_level'] in (0, 100, 200, 300, 400)
               for r in rows)
    failed = read_manifest(out, status='failed')
    assert [r['key'] for r in failed] == ['b/zz_broken.jpg']
    assert failed[0]['reason'].startswith('undecodable: undecodable image:')
    settings = json.load(open(osp.join(out, 'generation_settings.json')))
    assert settings['steps'] == 3 and settings['ext'] == '.png' and settings['quality'] is None


def started_until_journaled(args, journal: str, rows: int = 2) -> subprocess.Popen:
    """The tool started with ``args``, once ``journal`` holds ``rows`` rows (still running)."""
    proc = subprocess.Popen(args, env=tool_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if osp.isfile(journal) and len(list(read_rows(journal))) >= rows:
            break
        time.sleep(0.02)
    assert proc.poll() is None, 'run finished before it could be stopped: ' + \
        proc.stderr.read().decode()[-2000:]
    return proc


@pytest.mark.slow
def test_kill_and_resume(gen_main, merge_main, photo_dir, tiny_unclip_pca, tiny_unclip_path,
                         tmp_path, capsys):
    """A killed worker loses at most the images in flight of its current shard: finished
    shards keep their records, the current one its journal."""
    src = str(tmp_path / 'src')
    for i in range(2):  # 20 images, shards of 6: 0-5, 6-11, 12-17, 18-19
        shutil.copytree(photo_dir, osp.join(src, f'part{i}'))
    keys = [osp.relpath(p, src) for p in glob.glob(osp.join(src, '**', '*.jpg'), recursive=True)]
    out = str(tmp_path / 'out')
    args = cmd(src, tiny_unclip_pca, tiny_unclip_path, out, '--batch-size', '1',
               '--shard-size', '6', '--no-merge')
    journal = osp.join(out, 'shards', 'shard-00001.journal')
    proc = started_until_journaled(args, journal)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(list(read_rows(osp.join(out, 'shards', 'shard-00000.jsonl')))) == 6
    done = 6 + len(list(read_rows(journal)))
    assert 8 <= done < 20
    assert osp.isdir(osp.join(out, 'shards', 'shard-00001.tmp'))  # the writers' temp files
    capsys.readouterr()
    # resume with the same arguments and two workers in turn; the killed run's lock is gone
    assert gen_main(args[2:-1] + ['--rank', '1', '--world-size', '2']) == 0  # shards 1, 3
    assert gen_main(args[2:-1] + ['--rank', '0', '--world-size', '2']) == 0  # 0 (done), 2
    logs = capsys.readouterr().out
    assert f'share 8, skipped {done - 6}, new {14 - done}' in logs  # nothing finished redone
    assert 'share 12, skipped 6, new 6' in logs
    rows = [r for p in sorted(glob.glob(osp.join(out, 'shards', '*.jsonl')))
            for r in read_rows(p)]
    assert sorted(r.key for r in rows) == sorted(keys)  # each image once
    check_complete(out, keys)  # merged by the worker that finished last
    assert not glob.glob(osp.join(out, 'shards', '*.tmp'))  # the killed run's temp files too
    assert merge_main([out, '--source', src, '--check-files']) == 0
    os.remove(read_manifest(out)[0]['output'])
    assert merge_main([out, '--source', src, '--check-files']) == 1  # a listed file went missing


@pytest.mark.slow
def test_sigterm_journals_the_written_views_and_cleans_up(photo_dir, tiny_unclip_pca,
                                                          tiny_unclip_path, tmp_path):
    """SIGTERM (a Slurm time limit, scancel) ended the process at once: no finally ran, so
    the views written since the journal's last row were redone and the writers' temporary
    folder stayed. It ends as SystemExit(143) now, after journaling what was written."""
    out = str(tmp_path / 'out')
    args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out, '--batch-size', '1',
               '--shard-size', '100', '--no-merge')
    journal = osp.join(out, 'shards', 'shard-00000.journal')
    proc = started_until_journaled(args, journal)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM, proc.stderr.read().decode()[-2000:]
    assert not osp.isdir(osp.join(out, 'shards', 'shard-00000.tmp'))
    journaled = {osp.normpath(osp.join(out, r.output)) for r in read_rows(journal) if r.ok}
    written = set(glob.glob(osp.join(out, 'images', '**', '*.*'), recursive=True))
    # every row's view is on disk; views without their rows only if the signal fell while the
    # main thread journaled the rows the writers had just handed back (a few, in microseconds;
    # test_a_kill_journals_the_views_the_writers_finished checks the writers' part exactly)
    assert journaled and journaled <= written and len(written - journaled) <= 4


@pytest.mark.slow
def test_torchrun_two_processes(photo_dir, tiny_unclip_pca, tiny_unclip_path, tmp_path):
    out = str(tmp_path / 'out')
    args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out, '--batch-size', '2',
               '--shard-size', '3')
    run = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node',
           '2'] + args[1:]
    res = run_cmd(run, timeout=300)
    assert 'launch: torchrun' in res.stderr and 'barrier' not in res.stderr
    records = sorted(glob.glob(osp.join(out, 'shards', '*.jsonl')))
    assert [osp.basename(p) for p in records] == [f'shard-0000{s}.jsonl' for s in range(4)]
    assert 'worker 0/2: 2 shards (2 run), share 6' in res.stdout
    assert 'worker 1/2: 2 shards (2 run), share 4' in res.stdout
    # merged by the last finisher; two that finish together may both see every shard done and
    # both merge (idempotent: the same rows), never neither
    assert res.stdout.count('"rows": 10') in (1, 2)
    keys = [osp.relpath(p, photo_dir) for p in glob.glob(osp.join(photo_dir, '*', '*.jpg'))]
    check_complete(out, keys)


@pytest.mark.slow
def test_job_array_tasks_without_process_group(merge_main, photo_dir, tiny_unclip_pca,
                                               tiny_unclip_path, tmp_path):
    """Separate launches: RANK/WORLD_SIZE (with a MASTER_ADDR but no torchrun agent: no wait)
    or --rank/--world-size; the task that finishes last merges."""
    out = str(tmp_path / 'out')
    args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out, '--batch-size', '3',
               '--shard-size', '5')
    procs = [subprocess.Popen(args, env=tool_env(RANK='0', WORLD_SIZE='2',
                                                 MASTER_ADDR='127.0.0.1', MASTER_PORT='1'),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
             subprocess.Popen(args + ['--rank', '1', '--world-size', '2'],
                              env=tool_env(RANK='0', WORLD_SIZE='1'),  # flags win over the env
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], '\n'.join(x[-2000:] for x in logs)
    assert 'launch: RANK/WORLD_SIZE from the environment, no torchrun agent' in logs[0]
    assert 'launch: separate task (--rank/--world-size)' in logs[1]
    assert 'worker 0/2: 1 shards (1 run), share 5, skipped 0, new 5' in logs[0]
    assert 'worker 1/2: 1 shards (1 run), share 5, skipped 0, new 5' in logs[1]
    assert sum('every shard done: merged 10 rows' in x for x in logs) >= 1
    keys = [osp.relpath(p, photo_dir) for p in glob.glob(osp.join(photo_dir, '*', '*.jpg'))]
    check_complete(out, keys)
    assert merge_main([out, '--source', photo_dir, '--check-files']) == 0  # idempotent
    check_complete(out, keys)


HOLDER = r'''
import fcntl, json, os, socket, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.ftruncate(fd, 0)  # as FileLock does: a longer record of the last holder would stay behind
os.write(fd, json.dumps(dict(pid=os.getpid(), host=socket.gethostname(),
                             since='2024-01-01T00:00:00')).encode())
print('locked', flush=True)
time.sleep(300)
'''


def test_second_writer_of_a_part_is_refused(gen_main, photo_dir, tiny_unclip_pca,
                                            tiny_unclip_path, tmp_path, capsys):
    """A double launch (or an overlapping requeue) of the same shard: the second process
    refuses, naming the live holder, and writes nothing; once the holder is gone it runs."""
    out = str(tmp_path / 'out')
    args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]
    main = gen_main
    assert main(args) == 0
    part = osp.join(out, 'shards', 'shard-00000.jsonl')
    lost = [r['output'] for r in read_manifest(out)[:2]]
    for path in lost:  # work left for a rerun
        os.remove(path)
    before = open(part).read()
    holder = subprocess.Popen([sys.executable, '-c', HOLDER, part[:-6] + '.lock'],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'locked'
        assert main(args) == 1
        err = capsys.readouterr().err
        assert f'pid {holder.pid} on host {socket.gethostname()}' in err
        assert 'another live process' in err and '--lock-wait' in err
        assert open(part).read() == before  # nothing touched
        assert not any(osp.exists(p) for p in lost)
    finally:
        holder.kill()
        holder.wait()
    assert main(args) == 0  # the holder is gone: its lock went with it
    assert all(osp.isfile(p) for p in lost)
    assert len(list(read_rows(part))) == 10 and len(read_manifest(out)) == 10


def spy_generator(monkeypatch):
    """Record the generator each run of the tool builds."""
    import genview_mm.apis.generation.job as job
    built, real = [], job.make_generator
    monkeypatch.setattr(job, 'make_generator',
                        lambda *a, **k: built.append(real(*a, **k)) or built[-1])
    return built


def test_output_flag_reaches_the_generator_and_the_record(gen_main, photo_dir, tiny_unclip_pca,
                                                          tiny_unclip_path, tmp_path,
                                                          monkeypatch):
    """--output tensor: the generator returns device-resized tensors and the record says so;
    the default on CPU is PIL."""
    built = spy_generator(monkeypatch)
    runs = {}
    for name, extra in (('default', []), ('tensor', ['--output', 'tensor'])):
        out = str(tmp_path / name)
        assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out, '--output-size',
                            '24', *extra)[2:]) == 0
        settings = json.load(open(osp.join(out, 'generation_settings.json')))
        runs[name] = (built[-1].output, settings['output'])
        keys = [r['key'] for r in read_manifest(out)]
        check_complete(out, keys, size=24)
    assert runs == {'default': ('pil', 'pil'), 'tensor': ('tensor', 'tensor')}
    pil, ten = (read_manifest(str(tmp_path / n)) for n in ('default', 'tensor'))
    import numpy as np
    from PIL import Image
    for a, b in zip(pil, ten):  # resized 32 -> 24 on the device or by PIL: close, recorded
        pa, pb = (np.asarray(Image.open(r['output']), np.int16) for r in (a, b))
        assert np.abs(pa - pb).max() <= 8 and a['seed'] == b['seed']


def test_compile_flag_compiles_at_a_fixed_batch(gen_main, photo_dir, tiny_unclip_pca,
                                                tiny_unclip_path, tmp_path, monkeypatch):
    """--compile: torch.compile of the UNet and the VAE decoder at one shape (dynamic=False),
    every pipeline call padded to --batch-size x --num-variations; the views are the plain
    run's (torch.compile stubbed here: the eager-backend run is the slow test below)."""
    import torch
    built, compiled = spy_generator(monkeypatch), []
    monkeypatch.setattr(torch, 'compile', lambda fn, **kw: compiled.append(kw) or fn)
    out, plain = str(tmp_path / 'compiled'), str(tmp_path / 'plain')
    args = ['--batch-size', '3', '--num-variations', '2']
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out, '--compile',
                        *args)[2:]) == 0
    gen = built[-1]
    assert (gen.compile, gen.max_batch_size) == (True, 6)
    assert [(k['backend'], k['dynamic']) for k in compiled] == [('inductor', False)] * 2
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, plain, *args)[2:]) == 0
    assert built[-1].compile is False and built[-1].max_batch_size is None
    a, b = read_manifest(out), read_manifest(plain)
    assert len(a) == 20 and [r['key'] for r in a] == [r['key'] for r in b]
    import numpy as np
    from PIL import Image
    for ra, rb in zip(a, b):  # padded calls of 6: the same seeds, rounding-level differences
        pa, pb = (np.asarray(Image.open(r['output']), np.int16) for r in (ra, rb))
        assert np.abs(pa - pb).max() <= 3 and ra['seed'] == rb['seed']


@pytest.mark.slow
def test_compile_flag_end_to_end_with_the_eager_backend(gen_main, photo_dir, tiny_unclip_pca,
                                                        tiny_unclip_path, tmp_path,
                                                        monkeypatch):
    """The real torch.compile (dynamo's 'eager' backend: graph capture without a C++
    toolchain) behind --compile: the run completes and every view decodes."""
    import torch
    real, backends = torch.compile, []

    def eager(fn, **kw):
        backends.append(kw.pop('backend'))
        return real(fn, backend='eager', **kw)
    monkeypatch.setattr(torch, 'compile', eager)
    out = str(tmp_path / 'out')
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out, '--compile',
                        '--batch-size', '4', '--output', 'tensor')[2:]) == 0
    assert backends == ['inductor', 'inductor']
    check_complete(out, [r['key'] for r in read_manifest(out)])
    assert len(read_manifest(out)) == 10
