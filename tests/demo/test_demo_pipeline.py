"""tools/genview_demo.py (the README's main command; tools/run_demo.sh runs it after the
bootstrap): end to end on a small setting, then a rerun that resumes with every stage done; sizes
a later stage would fail on are usage errors; every stage runs under the demo's interpreter; the
embedded photos say when they repeat."""
import json
import logging
import os
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

from genview_mm.demo.photos import sample_photos
from genview_mm.demo.pipeline import Demo
from helpers import ROOT, free_port, load_tool, run_tool


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
    assert len(summary['stage_seconds']) == 8 and '(done earlier, skipped)' not in log
    # a normal run prints no warning from genview_mm or its tools
    assert not [line for line in log.splitlines() if 'warn' in line.lower()
                and ('genview_mm' in line or 'tools/' in line)], log[-3000:]

    again = run_demo(str(tmp_path), 'demo')
    assert again.count('(done earlier, skipped)') == 8
    with open(osp.join(out, 'summary.json')) as f:
        assert json.load(f)['stage_seconds'] == summary['stage_seconds']  # kept on a rerun


def test_a_stage_is_done_only_once_finished_with_the_same_settings(tmp_path, capsys):
    """A stage cut short runs again (on main, stage 1 counted as done once its second folder
    existed, so a demo killed while writing photos went on with part of the dataset), and one
    whose settings changed starts over from a clean output (main kept the old outputs)."""
    demo, ran = Demo(str(tmp_path / 'demo')), []
    out = demo.path('data', 'images')

    def write(n, fail=False):
        os.makedirs(out, exist_ok=True)
        for i in range(n):
            open(osp.join(out, f'{i}.jpg'), 'w').close()
            if fail and i == 1:
                raise KeyboardInterrupt  # killed in the middle
        ran.append(n)

    with pytest.raises(KeyboardInterrupt):
        demo.stage('1/7 photos', 'photos', dict(images=4), [out], write, 4, True)
    demo.stage('1/7 photos', 'photos', dict(images=4), [out], write, 4)  # runs again
    demo.stage('1/7 photos', 'photos', dict(images=4), [out], write, 4)  # done: skipped
    assert ran == [4] and len(os.listdir(out)) == 4
    assert capsys.readouterr().out.count('(done earlier, skipped)') == 1
    open(osp.join(tmp_path, 'mine.txt'), 'w').close()
    demo.stage('1/7 photos', 'photos', dict(images=2), [out, str(tmp_path / 'mine.txt')],
               write, 2)
    assert ran == [4, 2] and sorted(os.listdir(out)) == ['0.jpg', '1.jpg']
    assert 'settings changed' in capsys.readouterr().out
    assert osp.isfile(tmp_path / 'mine.txt')  # outside the demo's folder: never deleted
    with open(demo.path('stages', 'photos.json')) as f:
        assert json.load(f) == dict(settings=dict(images=2), done=True, seq=3)
    # cut short after a change of settings: the next run resumes (no second clean start)
    with pytest.raises(KeyboardInterrupt):
        demo.stage('1/7 photos', 'photos', dict(images=3), [out], write, 3, True)
    assert 'settings changed' in capsys.readouterr().out
    demo.stage('1/7 photos', 'photos', dict(images=3), [out], write, 3)
    assert 'settings changed' not in capsys.readouterr().out and ran == [4, 2, 3]


def test_a_stage_cut_short_and_rerun_with_other_settings_starts_over(tmp_path, capsys):
    """A stage's settings were recorded only once it finished: a demo killed in a stage and
    rerun with other settings resumed the old work (--epochs 20 after a cut 60-epoch run:
    'resumed epoch 40', recorded as done with 20 epochs, and every rerun then failed on the
    missing epoch_20.pth). The settings a stage starts with are recorded now."""
    out = str(tmp_path / 'demo' / 'data' / 'images')

    def write(n, fail=False):
        os.makedirs(out, exist_ok=True)
        for i in range(n):
            open(osp.join(out, f'{i}.jpg'), 'w').close()
            if fail and i == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Demo(str(tmp_path / 'demo')).stage('1/7 photos', 'photos', dict(images=6), [out], write,
                                           6, True)
    Demo(str(tmp_path / 'demo')).stage('1/7 photos', 'photos', dict(images=2), [out], write, 2)
    assert sorted(os.listdir(out)) == ['0.jpg', '1.jpg']  # the cut run's 2.jpg, 3.jpg: gone
    assert "settings changed ({'images': 6} -> {'images': 2})" in capsys.readouterr().out


def test_a_stage_after_one_that_ran_again_runs_again(tmp_path, capsys):
    """Its record was from earlier inputs: a stage whose earlier stage ran in this run starts
    over, whatever its record says; one whose earlier stages were all skipped is skipped."""
    ran = []
    first = Demo(str(tmp_path / 'demo'))
    first.stage('a', 'a', dict(x=1), [], ran.append, 'a1')
    first.stage('b', 'b', dict(y=1), [], ran.append, 'b1')
    second = Demo(str(tmp_path / 'demo'))
    second.stage('a', 'a', dict(x=1), [], ran.append, 'a2')
    second.stage('b', 'b', dict(y=1), [], ran.append, 'b2')
    assert ran == ['a1', 'b1'] and capsys.readouterr().out.count('skipped') == 2
    third = Demo(str(tmp_path / 'demo'))
    third.stage('a', 'a', dict(x=2), [], ran.append, 'a3')
    third.stage('b', 'b', dict(y=1), [], ran.append, 'b3')
    assert ran == ['a1', 'b1', 'a3', 'b3']
    assert 'a stage it uses ran again: starting over' in capsys.readouterr().out


def test_a_stage_after_one_that_ran_again_in_a_stopped_demo_runs_again(tmp_path, capsys):
    """A demo stopped after a stage ran again but before the next stage's record was written
    (Ctrl-C or a kill in the second the config takes to write, or while the next stage's old
    outputs are deleted): the rerun skipped the next stage, its record done with the same
    settings, and kept its output made from the old input (a training on the old scorer PCA,
    its checkpoint older than the PCA file). It starts over now; a stage after others that
    were all made before it is still skipped."""
    ran = []
    first = Demo(str(tmp_path / 'demo'))
    for key in 'abc':
        first.stage(key, key, dict(x=1), [], ran.append, f'{key}1')
    Demo(str(tmp_path / 'demo')).stage('a', 'a', dict(x=1), [str(tmp_path / 'demo' / 'f')],
                                       ran.append, 'a2')  # ran again; stopped before b
    capsys.readouterr()
    third = Demo(str(tmp_path / 'demo'))
    third.stage('a', 'a', dict(x=1), [], ran.append, 'a3')
    third.stage('b', 'b', dict(x=1), [], ran.append, 'b3')
    third.stage('c', 'c', dict(x=1), [], ran.append, 'c3', after=('a', ))
    assert ran == ['a1', 'b1', 'c1', 'a2', 'b3', 'c3']
    out = capsys.readouterr().out
    assert out.count('a stage it uses ran again: starting over') == 2
    fourth = Demo(str(tmp_path / 'demo'))  # all made in order: every stage skipped
    for key in 'abc':
        fourth.stage(key, key, dict(x=1), [], ran.append, f'{key}4')
    assert len(ran) == 6 and capsys.readouterr().out.count('(done earlier, skipped)') == 3


def test_the_number_of_processes_is_a_training_setting(tmp_path, monkeypatch):
    """--gpus 1 after a finished 2-process demo reused the 2-process training (12 iterations
    where 1 process makes 24) under a '1 processes' header."""
    calls = []
    made = dict(write_photos=lambda d, a: d.images,
                save_model=lambda d, a: d.path('models', dict(unclip='tiny_unclip',
                                                              scorer='tiny_clip')[a[0]]),
                fit_pca=lambda d, a: a[-1], generate=lambda d, a: d.views,
                train=lambda d, a: d.work, visualize=lambda d, a: d.path('pairs.png'))

    def stub(self, *args, _n):  # each stage leaves its output: a done stage's is checked
        calls.append(_n)
        os.makedirs(made[_n](self, args), exist_ok=True)
        files = dict(generate=['manifest.jsonl', 'images/'],
                     train=[f'epoch_{self.epochs}.pth']).get(_n, [])
        for name in files:  # the files a done stage's rerun checks (folders alone were)
            path = osp.join(made[_n](self, args), name)
            os.makedirs(path) if name.endswith('/') else open(path, 'w').close()
    for name in made:
        monkeypatch.setattr(Demo, name, lambda self, *a, _n=name: stub(self, *a, _n=_n))
    monkeypatch.setattr(Demo, 'write_config', lambda self, scorer: 'cfg.py')
    monkeypatch.setattr(Demo, 'summary', lambda self, *a: {})
    Demo(str(tmp_path / 'demo'), gpus=2).run()
    assert calls == ['write_photos', 'save_model', 'save_model', 'fit_pca', 'fit_pca',
                     'generate', 'train', 'visualize']
    calls.clear()
    Demo(str(tmp_path / 'demo'), gpus=2).run()
    assert calls == []
    Demo(str(tmp_path / 'demo'), gpus=1).run()
    assert calls == ['train', 'visualize']
    calls.clear()  # a real scorer CLIP: its PCA and the training again, not the views
    scorer = tmp_path / 'clip'
    scorer.mkdir()
    Demo(str(tmp_path / 'demo'), scorer_clip=str(scorer), gpus=1).run()
    assert calls == ['save_model', 'fit_pca', 'train', 'visualize']
    # the manifest or the checkpoint deleted from a finished demo: every stage was skipped and
    # the summary named files that were not there (or ended in a traceback)
    for gone, again in (('views/manifest.jsonl', ['generate', 'train', 'visualize']),
                        ('views/images', ['generate', 'train', 'visualize']),
                        ('train/epoch_4.pth', ['train', 'visualize'])):  # 4 epochs
        calls.clear()
        path = tmp_path / 'demo' / gone
        os.rmdir(path) if path.is_dir() else os.remove(path)
        Demo(str(tmp_path / 'demo'), scorer_clip=str(scorer), gpus=1).run()
        assert calls == again, gone
        assert path.exists()
    calls.clear()  # and a real generator: its PCA, the views and the training
    Demo(str(tmp_path / 'demo'), unclip=str(scorer), scorer_clip=str(scorer), gpus=1).run()
    assert calls == ['save_model', 'fit_pca', 'generate', 'train', 'visualize']
    calls.clear()  # done: no tiny model to look for
    Demo(str(tmp_path / 'demo'), unclip=str(scorer), scorer_clip=str(scorer), gpus=1).run()
    assert calls == []


BAD_SIZES = [  # arguments, the error line (after "genview_demo.py: error: ")
    (['--epochs', '0'], '--epochs must be >= 1, got 0'),
    (['--gpus', '3'], '--gpus must be one of 1, 2, 4, 8 (the MoCo queue of 64 keys takes 8 per '
     'process at each step), got 3'),
    (['--gpus', '0'], '--gpus must be one of 1, 2, 4, 8 (the MoCo queue of 64 keys takes 8 per '
     'process at each step), got 0'),
    (['--num-images', '8'], '--num-images must be >= 16 with --gpus 2 (8 images per process in '
     'a training step), got 8'),
    (['--num-images', '24', '--gpus', '4'], '--num-images must be >= 32 with --gpus 4 (8 images '
     'per process in a training step), got 24'),
]


@pytest.mark.parametrize('args, message', BAD_SIZES, ids=['-'.join(a) for a, _ in BAD_SIZES])
def test_sizes_a_stage_would_fail_on_are_usage_errors(tmp_path, args, message):
    """--epochs 0 died in stage 5 (the LR scheduler: 'end should be larger than begin'),
    --gpus 3 there too (MoCo's queue assert), after a minute of stages 1-4; --num-images 8
    trained 0 iterations and reported success; now nothing runs."""
    run = run_tool('genview_demo.py', '--out-dir', tmp_path / 'demo', *args, returncode=2,
                   timeout=60)
    assert run.stderr.splitlines()[-1] == f'genview_demo.py: error: {message}'
    assert not osp.exists(tmp_path / 'demo')


def test_more_gpus_than_cuda_shows_is_a_usage_error(tmp_path, monkeypatch, capsys):
    """--gpus 2 (the default) on a one-GPU machine ran stages 1-4, then stage 5's second rank
    failed on 'invalid device ordinal'; now nothing runs."""
    import torch

    from genview_mm.utils import interrupt
    monkeypatch.setattr(interrupt, 'exit_on_sigterm', lambda: None)  # pytest's own SIGTERM
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 1)
    monkeypatch.setattr(sys, 'argv', ['genview_demo.py', '--out-dir', str(tmp_path / 'demo')])
    with pytest.raises(SystemExit) as exc:
        load_tool('genview_demo').main()
    assert exc.value.code == 2 and capsys.readouterr().err.splitlines()[-1] == (
        'genview_demo.py: error: --gpus=2 starts one process per GPU, but this node has 1 CUDA '
        'device (CUDA_VISIBLE_DEVICES counts): pass --gpus <= 1')
    assert not osp.exists(tmp_path / 'demo')


def test_out_dir_must_be_new_empty_or_a_demos_own(tmp_path):
    """An --out-dir holding the user's files was written into (data/images/a/img_0000.jpg
    replaced, other images taken into the dataset), and a change of settings deleted its
    data/images with them. Refused now before anything is written; a file is refused too (a
    NotADirectoryError traceback), and so is a local model folder that does not exist (stages 1
    and 2 ran, then a traceback)."""
    mine = tmp_path / 'mine'
    (mine / 'data' / 'images' / 'a').mkdir(parents=True)
    (mine / 'data' / 'images' / 'a' / 'img_0000.jpg').write_bytes(b'my photo')
    (tmp_path / 'afile').write_text('x')
    for out, said in ((mine, 'holds files that a demo did not write'), (tmp_path / 'afile',
                                                                        'is a file')):
        run = run_tool('genview_demo.py', '--out-dir', out, returncode=2, timeout=120)
        assert run.stderr.splitlines()[-1].startswith(f'genview_demo.py: error: --out-dir {out} '
                                                      f'{said}')
    assert (mine / 'data' / 'images' / 'a' / 'img_0000.jpg').read_bytes() == b'my photo'
    assert sorted(os.listdir(mine)) == ['data']
    run = run_tool('genview_demo.py', '--out-dir', tmp_path / 'new', '--unclip',
                   str(tmp_path / 'gone'), returncode=2, timeout=60)
    assert run.stderr.splitlines()[-1] == (f'genview_demo.py: error: --unclip {tmp_path}/gone: '
                                           'no such folder; pass a folder saved with '
                                           'save_pretrained or a hub id')
    assert not osp.exists(tmp_path / 'new')
    from genview_mm.demo.pipeline import MARK, check_out_dir
    for ok in ('new', 'empty', 'old_demo', 'marked'):
        (tmp_path / ok).mkdir(exist_ok=True)
    (tmp_path / 'old_demo' / 'stages').mkdir()  # a demo from before the mark
    (tmp_path / 'old_demo' / 'stages' / 'photos.json').write_text('{"images": 48}')
    (tmp_path / 'marked' / MARK).write_text('')
    (tmp_path / 'marked' / 'logs').mkdir()
    for ok in ('new', 'empty', 'old_demo', 'marked', 'not_there'):
        check_out_dir(str(tmp_path / ok))
    # a folder of the user's that happens to hold a stages/ folder: its summary.json was
    # replaced and data/, models/, train/ written beside it
    (tmp_path / 'users' / 'stages').mkdir(parents=True)
    (tmp_path / 'users' / 'summary.json').write_text('my results')
    with pytest.raises(ValueError, match='holds files that a demo did not write'):
        check_out_dir(str(tmp_path / 'users'))
    # '' (an unset variable) was the working folder: a ValueError traceback from the run, as
    # was a folder under a file (NotADirectoryError)
    with pytest.raises(ValueError, match=r'^--out-dir is empty \(an unset variable\?\)'):
        check_out_dir('')
    with pytest.raises(ValueError, match=f'^--out-dir {tmp_path}/users/summary.json/x: '
                       f'{tmp_path}/users/summary.json is a file, not a folder'):
        check_out_dir(str(tmp_path / 'users' / 'summary.json' / 'x'))


def test_the_size_checks_follow_the_demo_config():
    from mmengine.config import Config

    demo = load_tool('genview_demo')
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', 'genview_mocov2_r18_tiny_cpu.py'))
    assert cfg.train_dataloader.batch_size == demo.BATCH_SIZE and cfg.train_dataloader.drop_last
    assert cfg.model.queue_len == demo.QUEUE_LEN


def test_stages_run_under_the_demo_interpreter(tmp_path, monkeypatch):
    """From a conda env (or any python) without the repo's .venv, the stages run as
    sys.executable but tools/dist_train.sh picked python/python3 from the PATH."""
    for name in ('PYTHON', 'VIRTUAL_ENV', 'CONDA_PREFIX'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv('GENVIEW_VENV', str(tmp_path / 'no_venv'))
    demo = Demo(str(tmp_path / 'demo'))
    demo.run_tool(['bash', '-c', 'source tools/_python.sh && echo "PYTHON=$PYTHON"'], 'python')
    with open(demo.path('logs', 'python.log')) as f:
        assert f.read() == f'PYTHON={sys.executable}\n'


def test_photos_beyond_the_distinct_ones_repeat_and_say_so(caplog):
    """sample_photos said all n photos are distinct, but photo 76 is photo 0 again (19 files x 4
    rotations), and nothing told a demo run with --num-images 100 that a quarter repeated."""
    with caplog.at_level(logging.WARNING, logger='genview_mm.demo.photos'):
        photos = sample_photos(76, size=8)
    assert caplog.records == []
    assert len({p.tobytes() for p in photos}) == 76
    with caplog.at_level(logging.WARNING, logger='genview_mm.demo.photos'):
        more = sample_photos(78, size=8)
    assert [r.getMessage() for r in caplog.records] == [
        '78 photos asked for, but the embedded set has 76 distinct ones (19 files x 4 '
        'rotations): photos 77-78 repeat them']
    assert np.array_equal(more[76], more[0]) and np.array_equal(more[77], more[1])


def test_summary_leaves_out_similarities_recorded_as_unknown(tmp_path):
    """A view whose similarity is unknown (null: its embedding overflowed in fp16) made the
    summary's mean a TypeError at the last stage."""
    from types import SimpleNamespace

    from genview_mm.structures.manifest import ManifestRow, write_manifest
    manifest = str(tmp_path / 'manifest.jsonl')
    write_manifest(manifest, [
        ManifestRow('/s/a.jpg', 'a.jpg', 0, 'images/a.jpg', 100, 0.3, 1, 'g', 0.8),
        ManifestRow('/s/b.jpg', 'b.jpg', 0, 'images/b.jpg', 200, 0.5, 2, 'g', None)])
    demo = SimpleNamespace(unclip='u', scorer_clip='c', num_images=2, work=str(tmp_path),
                           epochs=1, times={}, path=lambda name: str(tmp_path / name))
    summary = Demo.summary(demo, 'u', 'c', manifest)
    assert summary['mean_clip_sim'] == 0.8 and summary['mean_fg_ratio'] == 0.4
    write_manifest(manifest, [ManifestRow('/s/b.jpg', 'b.jpg', 0, 'images/b.jpg', 200, 0.5, 2,
                                          'g', None)])
    assert Demo.summary(demo, 'u', 'c', manifest)['mean_clip_sim'] is None


def test_a_done_stage_whose_output_is_gone_runs_again(tmp_path, capsys):
    """A stage recorded as done was skipped although its output had been moved away: the
    summary then ended in a traceback (the manifest not found)."""
    ran = []
    out = tmp_path / 'demo' / 'views'

    def make(tag):
        out.mkdir(parents=True, exist_ok=True)
        ran.append(tag)

    Demo(str(tmp_path / 'demo')).stage('v', 'views', dict(x=1), [str(out)], make, 1)
    Demo(str(tmp_path / 'demo')).stage('v', 'views', dict(x=1), [str(out)], make, 2)
    assert ran == [1] and 'skipped' in capsys.readouterr().out
    out.rmdir()
    again = Demo(str(tmp_path / 'demo'))
    again.stage('v', 'views', dict(x=1), [str(out)], make, 3)
    again.stage('t', 'train', dict(y=1), [], make, 4)  # a later stage runs again too
    assert ran == [1, 3, 4] and out.is_dir()
    assert f'its output {out} is gone: starting over' in capsys.readouterr().out


def test_summary_counts_a_resumed_runs_iterations_once(tmp_path):
    """A training stage resumed from epoch 2 logs epoch 3's iterations again (the cut run had
    logged some of them): the summary counted 23 iterations for 7 epochs of 3."""
    from types import SimpleNamespace

    from genview_mm.structures.manifest import ManifestRow, write_manifest
    manifest = str(tmp_path / 'manifest.jsonl')
    write_manifest(manifest, [ManifestRow('/s/a.jpg', 'a.jpg', 0, 'images/a.jpg', 100, 0.3, 1,
                                          'g', 0.8)])
    for run, iters in (('20261206_010000', range(1, 9)), ('20261206_020000', range(7, 22))):
        os.makedirs(tmp_path / 'train' / run / 'vis_data')
        with open(tmp_path / 'train' / run / 'vis_data' / 'scalars.json', 'w') as f:
            for i in iters:
                f.write(json.dumps(dict(loss=float(i) + (0.5 if run.endswith('2') else 0),
                                        genview_w_std=0.1, iter=i, step=i)) + '\n')
            f.write(json.dumps(dict(coco_mAP=0.1, step=21)) + '\n')  # a row without a loss
    demo = SimpleNamespace(unclip='u', scorer_clip='c', num_images=1, epochs=7, times={},
                           work=str(tmp_path / 'train'), path=lambda name: str(tmp_path / name))
    summary = Demo.summary(demo, 'u', 'c', manifest)
    assert summary['iterations'] == 21
    assert (summary['loss_first'], summary['loss_last']) == (1.0, 21.0)


def test_the_training_stage_takes_a_free_port(tmp_path, monkeypatch):
    """dist_train.sh's default port 29500: two demos at once (or a demo beside another job)
    failed with EADDRINUSE, and nothing said PORT."""
    seen = []
    monkeypatch.delenv('PORT', raising=False)
    demo = Demo(str(tmp_path / 'demo'))
    demo.run_tool = lambda cmd, log, env=None: seen.append(env)
    demo.train('cfg.py')
    monkeypatch.setenv('PORT', '29611')
    demo.train('cfg.py')
    assert seen[0]['PORT'] != '29500' and int(seen[0]['PORT']) > 0
    assert seen[1] == {'PORT': '29611'}
