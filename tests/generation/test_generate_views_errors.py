"""tools/generate_views.py on bad arguments: it ends early with one line naming the flag and
the fix, exit status 2, no traceback, nothing loaded or written. The checks of paths and counts
run before the tool imports anything heavy (a subprocess answers in well under a second)."""
import errno
import os
import os.path as osp
import shutil
import subprocess

import pytest

from gen_tool import cmd
from helpers import save_pca, tool_env


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
                                   unwritable_dir(tmp_path)), 'no file can be created in'),
        'out-dir is a file': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path,
                                  str(a_file)), 'is a file, not a folder'),
        'batch size 0': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                             '--batch-size', '0'), 'argument --batch-size: must be >= 1, got 0'),
        'batch size < 0': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                               '--batch-size', '-2'), '--batch-size: must be >= 1, got -2'),
        'no variations': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                              '--num-variations', '0'), '--num-variations: must be >= 1, got 0'),
        'quality 0': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out, '--quality', '0'),
                      'argument --quality: must be in 1..100, got 0'),
        'fail fraction 0': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                                '--max-fail-fraction', '0'),
                            'argument --max-fail-fraction: must be in (0, 1], got 0.0'),
        'gen size not a multiple of 8': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                                             '--gen-size', '36'),  # every image failed
                                         'argument --gen-size: must be a multiple of 8, got 36 '
                                         '(e.g. 32 or 40)'),
        'gen size below 8': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                                 '--gen-size', '4'),  # said '(e.g. 8 or 8)'
                             'argument --gen-size: must be a multiple of 8, got 4 (e.g. 8)'),
        'negative writers': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                                 '--writers', '-1'), 'argument --writers: must be >= 0, got -1'),
        'negative lock wait': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                                   '--lock-wait', '-1'),
                               'argument --lock-wait: must be >= 0, got -1.0'),
        'missing pipeline': (cmd(photo_dir, tiny_unclip_pca, str(tmp_path / 'none'),
                                 out), 'unCLIP pipeline folder not found'),
        'relative pipeline': (cmd(photo_dir, tiny_unclip_pca, 'models/unclip/sd21', out),
                              "--pretrained 'models/unclip/sd21': unCLIP pipeline folder not "
                              'found'),  # was taken for a hub id (one '/' at most)
        'pipeline a file': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_pca, out),
                            'is a file (a single-file checkpoint?), not a diffusers pipeline '
                            'folder; pass a folder saved with save_pretrained or a hub id'),
        'bad PCA path': (cmd(photo_dir, str(tmp_path / 'pca.pth'), tiny_unclip_path,
                             out), 'fit one with tools/fit_foreground_pca.py'),
        # an unset shell variable: the views, records and manifest went to the current folder
        # (slurm_generate.sh made /slurm for its logs)
        'empty out-dir': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, ''),
                          "--out-dir is empty: pass the folder for the views"),
        'empty pretrained': (cmd(photo_dir, tiny_unclip_pca, '', out),
                             '--pretrained is empty: pass an unCLIP pipeline folder or hub id'),
        # NaN passed every range check: the record then refused its own run ('nan -> nan'),
        # a lock wait spun forever, and any single failure ended the run with status 1
        'guidance nan': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                             '--guidance', 'nan'),
                         'argument --guidance: must be a finite number, got nan'),
        'guidance inf': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                             '--guidance', 'inf'),
                         'argument --guidance: must be a finite number, got inf'),
        'lock wait nan': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                              '--lock-wait', 'nan'),
                          'argument --lock-wait: must be a number, got nan'),
        'fail fraction nan': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                                  '--max-fail-fraction', 'nan'),
                              'argument --max-fail-fraction: must be a number, got nan'),
        # sizes the encoders cannot write: a WebP traceback after the first batch, or every
        # JPEG view a 'transient: write failed' (with a full-disk hint), retried by each rerun
        'webp too large': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                               '--output-size', '16384', '--ext', '.webp'),
                           '--output-size 16384: a .webp image is at most 16383 px a side: '
                           'pass a smaller size, or --ext .png'),
        'jpeg too large': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                               '--output-size', '65501'),
                           '--output-size 65501: a .jpg image is at most 65500 px a side'),
        # an abbreviation the tool took, but slurm_generate.sh did not pass to its merge job
        'abbreviated option': (cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out,
                                   '--data-r', str(tmp_path)),
                               'unrecognized arguments: --data-r'),
    }
    cwd = tmp_path / 'cwd'  # where an empty --out-dir wrote
    cwd.mkdir()
    procs = {name: subprocess.Popen(c, env=tool_env(), stdout=subprocess.PIPE, cwd=cwd,
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
    assert not osp.exists(out) and os.listdir(cwd) == []


@pytest.mark.parametrize('extra,shown', [
    (['--noise-levels', '0', '100', '200', '300', '1200'],
     '--noise-bins/--noise-levels: noise levels must be integers in 0..999'),
    (['--rank', '1'], '--rank and --world-size go together'),
    (['--rank', '2', '--world-size', '2'],
     '--rank/--world-size: need 0 <= rank < world size, got rank 2 of 2'),
    # ignored with a folder source: a user who meant another dataset got this one's images
    (['--data-root', 'DIR'], '--data-root applies to a list file or a config, but '),
    (['--dataset-key', 'val_dataloader.dataset'],
     '--dataset-key applies to an MMPretrain config (.py) source, but ')])
def test_errors_found_by_the_package(gen_main, photo_dir, tiny_unclip_pca, tiny_unclip_path,
                                     tmp_path, capsys, extra, shown):
    out = str(tmp_path / 'out')
    extra = [photo_dir if a == 'DIR' else a for a in extra]
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out, *extra)[2:]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'generate_views.py: error: {shown}') and err.count('\n') == 1, err
    assert not osp.exists(out)
    args = [a for a in cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out, *extra)[2:]
            if a not in ('--device', 'cpu')]  # slurm_generate.sh's check before it submits
    assert gen_main(args + ['--check-args']) == 2
    err = capsys.readouterr().err
    assert err.startswith(f'generate_views.py: error: {shown}') and err.count('\n') == 1, err


def test_check_args_refuses_what_a_task_would_refuse(gen_main, photo_dir, tiny_unclip_pca,
                                                     tiny_unclip_path, tmp_path, capsys):
    """slurm_generate.sh runs --check-args before it submits. It passed an --out-dir inside
    the source, an unknown --scheduler (found after the model loaded), a --rank without
    --world-size or out of range, and a bogus --device (a traceback): the array was queued,
    every task failed and the merge job waited forever. So did an --out-dir holding views
    this tool did not record (import_views.py's manifest), and a source folder without
    images: every task refuses them."""
    out = str(tmp_path / 'out')
    (tmp_path / 'imported').mkdir()
    (tmp_path / 'imported' / 'manifest.jsonl').write_text('')
    (tmp_path / 'empty' / 'a').mkdir(parents=True)  # no image: only a hidden one
    (tmp_path / 'empty' / 'a' / '._img.jpg').write_bytes(b'jpeg')
    (tmp_path / 'empty' / 'notes.txt').write_text('no images yet')
    empty = str(tmp_path / 'empty')
    # on a fresh --out-dir (no settings record to compare them with), a model folder that is
    # no pipeline, a PCA file without a threshold and an empty list passed too
    (tmp_path / 'no_model').mkdir()
    from genview_mm.foreground import ForegroundPCA
    scorer_only = ForegroundPCA.load(tiny_unclip_pca)
    scorer_only.alpha = None
    scorer_only.save(str(tmp_path / 'scorer_only.pth'))
    (tmp_path / 'empty.txt').write_text('\n')
    (tmp_path / 'inside.txt').write_text(f"{osp.join(out, 'imgs', 'a.jpg')}\n")  # under OUT
    for source, extra, shown in (
            (str(tmp_path / 'inside.txt'), [], f"--out-dir {out!r} holds source images"),
            (photo_dir, ['--pretrained', str(tmp_path / 'no_model')],
             f"{str(tmp_path / 'no_model')!r} is not a saved diffusers pipeline"),
            (photo_dir, ['--pca', str(tmp_path / 'scorer_only.pth')],
             'has no foreground threshold, which foreground ratios need'),
            (str(tmp_path / 'empty.txt'), [],
             f"no images found in source {str(tmp_path / 'empty.txt')!r}"),
            (photo_dir, ['--out-dir', osp.join(photo_dir, 'a', 'views')],
             'is inside the source folder'),
            (photo_dir, ['--out-dir', str(tmp_path / 'imported')],
             'holds images or manifests but no generation_settings.json of this tool'),
            (empty, [], f'no images found in source {empty!r}'),
            (photo_dir, ['--scheduler', 'Bogus'],
             "--scheduler: unknown diffusers scheduler 'Bogus'"),
            (photo_dir, ['--scheduler', 'UNet2DConditionModel'],  # a model class has from_config
             "--scheduler: unknown diffusers scheduler 'UNet2DConditionModel'"),
            (photo_dir, ['--rank', '0'], '--rank and --world-size go together'),
            (photo_dir, ['--rank', '5', '--world-size', '2'],
             'need 0 <= rank < world size, got rank 5'),
            (photo_dir, ['--device', 'bogus'], '--device bogus: ')):
        args = cmd(source, tiny_unclip_pca, tiny_unclip_path, out)[2:]
        args = [a for a in args if a not in ('--device', 'cpu')] + extra + ['--check-args']
        assert gen_main(args) == 2, extra
        err = capsys.readouterr().err
        assert err.startswith('generate_views.py: error: ') and shown in err, (extra, err)
        assert err.count('\n') == 1, err
    assert not osp.exists(out) and not osp.exists(osp.join(photo_dir, 'a', 'views'))
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:] + [
        '--scheduler', 'DDIMScheduler', '--rank', '1', '--world-size', '2', '--check-args']) == 0


def test_a_file_the_settings_cannot_read_is_one_line(gen_main, photo_dir, tiny_unclip_pca,
                                                     tiny_unclip_path, tmp_path, capsys,
                                                     monkeypatch):
    """The settings record hashes the PCA file and fingerprints the weights: one that could
    not be read (EIO, another user's file) ended in a traceback."""
    import errno

    from genview_mm.apis.generation import settings

    def unreadable(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, 'Permission denied', path)
    monkeypatch.setattr(settings, 'file_sha256', unreadable)
    out = str(tmp_path / 'out')
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]) == 1
    err = capsys.readouterr().err
    assert err == (f'generate_views.py: error: cannot read {tiny_unclip_pca} (Permission '
                   'denied): fix its permissions or its disk, or copy it again\n'), err


@pytest.mark.parametrize('which', ['record', 'journal'])
def test_a_shard_record_that_cannot_be_read_is_one_line(gen_main, photo_dir, tiny_unclip_pca,
                                                        tiny_unclip_path, tmp_path, capsys,
                                                        monkeypatch, which):
    """A shard record of another user (or a disk error) was a traceback when a rerun read the
    records, and "cannot write to OUT/shards" when read again inside the shard's lock."""
    from genview_mm.apis.generation import shards
    from genview_mm.structures import manifest
    out = str(tmp_path / 'out')
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]) == 0
    record = shards.shard_path(out, 0)
    if which == 'journal':  # a stopped run's journal: the shard is re-planned in its lock
        shutil.copy(record, shards.shard_path(out, 0, 'journal'))
    real_open, opened = open, []

    def refusing(path, *args, **kwargs):
        if path == record:
            opened.append(path)
            if which == 'record' or len(opened) > 1:  # journal: the read in the lock fails
                raise PermissionError(errno.EACCES, 'Permission denied', path)
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(manifest, 'open', refusing, raising=False)
    capsys.readouterr()
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f'generate_views.py: error: cannot read {record} (Permission denied): fix its '
        'permissions or its disk, or delete it (its shard is redone)'), err
    assert 'Traceback' not in err


def test_an_empty_scheduler_is_the_default(tiny_unclip_pca):
    """``--scheduler ''`` ran with the default scheduler but recorded '' for it, so a rerun
    without the flag was refused ('scheduler: '' -> None')."""
    from genview_mm.generation import AdaptiveNoiseGenerator
    assert AdaptiveNoiseGenerator(tiny_unclip_pca, scheduler='').scheduler is None
    with pytest.raises(ValueError, match="unknown diffusers scheduler 'Bogus'"):
        AdaptiveNoiseGenerator(tiny_unclip_pca, scheduler='Bogus')


def test_a_refused_start_leaves_no_settings_record(gen_main, photo_dir, tiny_unclip_pca,
                                                   tiny_unclip_path, tmp_path, capsys):
    """A wrong --pca or --pretrained is found when the model loads; on main the settings record
    was written before that, and the corrected command was then refused."""
    out = str(tmp_path / 'out')
    wrong_pca = save_pca(str(tmp_path / 'wrong.pth'), 'other/encoder', dim=16, grid=(2, 2),
                         input_size=28)
    not_a_model = tmp_path / 'empty_model'
    not_a_model.mkdir()
    # a scorer-only import (no threshold): every image failed as 'transient', exit 1, and the
    # folder's settings record pinned that file, so the corrected command was refused
    from genview_mm.foreground import ForegroundPCA
    no_threshold = ForegroundPCA.load(tiny_unclip_pca)
    no_threshold.alpha = None
    no_threshold.save(str(tmp_path / 'scorer_only.pth'))
    # a cut download: the weights' fingerprint failed with safetensors' traceback
    damaged = tmp_path / 'damaged_model'
    shutil.copytree(tiny_unclip_path, damaged)
    weights = sorted(damaged.glob('unet/*.safetensors'))[0]
    weights.write_bytes(weights.read_bytes()[:1000])
    for extra in (['--pretrained', str(damaged)], ['--pca', wrong_pca],
                  ['--pretrained', str(not_a_model)],
                  ['--pca', str(tmp_path / 'scorer_only.pth')]):
        args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:] + extra
        assert gen_main(args) == 1, extra
        full = capsys.readouterr().err
        err = full.splitlines()[-1]  # after diffusers' loading bar
        assert err.startswith('generate_views.py: error: ') and 'Traceback' not in full, full
        assert not osp.exists(out), extra  # no settings record, no folder
        if extra[1] == str(damaged):
            assert err.startswith(f'generate_views.py: error: cannot read the weights file '
                                  f'{weights} (') and err.endswith(
                ': it is damaged or incomplete; download the model again'), err
    assert 'has no foreground threshold, which foreground ratios need: re-import it' in err
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]) == 0


def test_out_dir_inside_or_around_the_source_is_refused(gen_main, photo_dir, tiny_unclip_pca,
                                                        tiny_unclip_path, tmp_path, capsys):
    """On main a rerun with --out-dir = source made views of views. A config whose dataset
    walks its folder (no annotation list) is that folder: its first run wrote views into the
    dataset, every rerun was then refused (they were listed as its images), and training
    would read them as a class."""
    src = tmp_path / 'src'
    shutil.copytree(photo_dir, src)
    listing = tmp_path / 'train.txt'
    listing.write_text('src/a/img_0000.jpg 0\n')
    config = tmp_path / 'cfg.py'
    config.write_text(f"train_dataloader = dict(dataset=dict(type='CustomDataset', "
                      f"data_root={str(src)!r}, with_label=False))\n")
    for source, out, shown in ((src, src, 'is inside the source folder'),
                               (src, src / 'views', 'is inside the source folder'),
                               (src / 'a', src, 'holds source images'),
                               (listing, tmp_path, 'holds source images'),
                               (config, src / 'views', 'is inside the source folder')):
        assert gen_main(cmd(str(source), tiny_unclip_pca, tiny_unclip_path, str(out))[2:]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f'generate_views.py: error: --out-dir {str(out)!r} {shown}')
        assert err.count('\n') == 1
    assert sorted(os.listdir(src)) == ['a', 'b']  # on main, an empty views/ was left there


def test_an_image_given_as_the_source_list(gen_main, merge_main, photo_dir, tiny_unclip_pca,
                                           tiny_unclip_path, tmp_path, capsys):
    """An image file passed where a list is expected: one line, exit 2 (a traceback on main);
    so for the merge tool's source, and its OUT_DIR without records."""
    image = osp.join(photo_dir, 'a', 'img_0000.jpg')
    out = str(tmp_path / 'out')
    assert gen_main(cmd(image, tiny_unclip_pca, tiny_unclip_path, out)[2:]) == 2
    err = capsys.readouterr().err
    assert err == (f'generate_views.py: error: {image!r} is not a text list of image paths (not '
                   'UTF-8 text): pass an image folder, an image list / MMPretrain annotation '
                   'file, or an MMPretrain config (.py)\n')
    assert not osp.exists(out)
    assert merge_main([str(tmp_path), '--source', image]) == 2
    assert capsys.readouterr().err.startswith(f'merge_manifests.py: error: {image!r} is not a')
    assert merge_main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith('merge_manifests.py: error: no shard records under')


def test_damaged_record_and_unwritable_shards_folder(gen_main, photo_dir, tiny_unclip_pca,
                                                     tiny_unclip_path, tmp_path, capsys):
    """A shard record damaged in its middle, or a shards/ folder that cannot be written: one
    line naming the file and the way out, exit 1 (tracebacks on main)."""
    out = tmp_path / 'out'
    args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, str(out), '--shard-size', '5')[2:]
    assert gen_main(args) == 0
    record = out / 'shards' / 'shard-00001.jsonl'
    lines = record.read_text().splitlines(keepends=True)
    record.write_text(lines[0] + '{"source": garbage\n' + ''.join(lines[2:]))
    capsys.readouterr()
    assert gen_main(args) == 1
    assert capsys.readouterr().err == (
        f'generate_views.py: error: {record}:2: corrupt manifest line (Expecting value: line 1 '
        'column 12 (char 11)): delete that file (its shard is redone) and rerun\n')
    views = sorted(p for p in out.rglob('*') if p.is_file())
    assert gen_main(args + ['--steps', '2', '--overwrite']) == 1  # was a ValueError traceback
    assert capsys.readouterr().err.splitlines()[-1] == (
        f'generate_views.py: error: {record}:2: corrupt manifest line (Expecting value: line 1 '
        'column 12 (char 11)): delete that file (its views are then not deleted, the new run '
        'writes over them) and rerun')
    assert sorted(p for p in out.rglob('*') if p.is_file()) == views  # nothing deleted
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'shards').write_text('not a folder')
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, str(other))[2:]) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err.startswith(f'generate_views.py: error: cannot write to {other}/shards (')
    assert err.endswith('free space, make it writable or pass another --out-dir')


def test_bad_device_and_undecodable_file_name(gen_main, photo_dir, tiny_unclip_pca,
                                              tiny_unclip_path, tmp_path, capsys, monkeypatch):
    """A device torch cannot parse or does not have, and a file name that is not UTF-8: one
    line before the model loads, exit 2 (tracebacks on main, the last one after loading)."""
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    out = tmp_path / 'out'
    for device, shown in (('gpu0', "--device gpu0: Invalid device string: 'gpu0' (e.g. cuda"),
                          ('cuda:1', '--device cuda:1: no CUDA device here (pass --device cpu')):
        args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, str(out), '--device', device)
        assert gen_main(args[2:]) == 2
        assert capsys.readouterr().err.startswith(f'generate_views.py: error: {shown}')
    src = tmp_path / 'src'
    shutil.copytree(osp.join(photo_dir, 'a'), src)
    bad = os.path.join(os.fsencode(src), b'caf\xe9.jpg')
    shutil.copy(osp.join(photo_dir, 'a', 'img_0000.jpg'), bad)
    assert gen_main(cmd(str(src), tiny_unclip_pca, tiny_unclip_path, str(out))[2:]) == 2
    assert capsys.readouterr().err == (
        f'generate_views.py: error: {os.fsdecode(bad)!r}: the file name is not valid UTF-8 '
        '(keys and manifests are UTF-8 text): rename it\n')
    assert not osp.exists(out)


def test_job_arrays_cannot_overwrite(gen_main, photo_dir, tiny_unclip_pca, tiny_unclip_path,
                                     tmp_path, capsys):
    out = str(tmp_path / 'out')
    args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out, '--overwrite', '--rank', '1',
               '--world-size', '2')[2:]
    assert gen_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith('generate_views.py: error: --overwrite with 2 workers (a job array '
                          'or torchrun) would let one delete what another already wrote')
    assert not osp.exists(out)


def test_a_full_disk_ends_in_one_line(gen_main, photo_dir, tiny_unclip_pca, tiny_unclip_path,
                                      tmp_path, capsys, monkeypatch):
    from PIL import Image
    out = str(tmp_path / 'out')
    real_save = Image.Image.save

    def full(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(Image.Image, 'save', full)
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if 'error' in line]
    # the view's folder (it named the shard's temporary folder, deleted before the tool ended)
    assert err == [f'generate_views.py: error: no space left on the device writing to '
                   f'{out}/images/a (No space left on device): free space or write '
                   'elsewhere, then rerun']
    assert not [f for _, _, fs in os.walk(out) for f in fs if '.partial' in f or '.tmp-' in f]

    # the journal fails too, as on a real full disk: its close raised before the shard's
    # temporary folder was removed (left behind) and before its file was closed (left open)
    from genview_mm.structures import manifest
    files, real_close = [], manifest.ManifestJournal.close

    def closing(journal):
        files.append(journal._f)
        real_close(journal)
    monkeypatch.setattr(manifest.ManifestJournal, 'close', closing)
    monkeypatch.setattr(manifest.ManifestJournal, 'flush', lambda journal: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, 'No space left on device')))
    real_fsync = os.fsync

    def fsync(fd):  # the journal's (the settings record, synced first, is written whole)
        if os.readlink(f'/proc/self/fd/{fd}').endswith('.journal'):
            raise OSError(errno.ENOSPC, 'No space left on device')
        real_fsync(fd)
    monkeypatch.setattr(os, 'fsync', fsync)
    shutil.rmtree(out)
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if 'error' in line]
    assert len(err) == 1 and 'No space left on device' in err[0], err
    assert sorted(os.listdir(osp.join(out, 'shards'))) == ['shard-00000.journal',
                                                          'shard-00000.lock']
    assert len(files) == 1 and files[0].closed


def test_a_full_disk_at_the_settings_record_or_the_merge_ends_in_one_line(
        gen_main, photo_dir, tiny_unclip_pca, tiny_unclip_path, tmp_path, capsys, monkeypatch):
    """The settings record and the merged manifest are written outside the shard loop: a full
    disk there is the same one line (exit status 1), not a traceback; a rerun with every shard
    done only merges, it does not write the existing settings record again."""
    from genview_mm.utils import atomic_write
    out = str(tmp_path / 'out')
    args = cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]

    def full_open(path, mode='r', *a, **kw):
        if 'w' in mode:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return open(path, mode, *a, **kw)

    def errors():
        return [line for line in capsys.readouterr().err.splitlines() if 'error' in line]

    line = (f'generate_views.py: error: no space left on the device writing to {out} (No space '
            'left on device): free space or write elsewhere, then rerun')
    monkeypatch.setattr(atomic_write, 'open', full_open, raising=False)
    assert gen_main(args) == 1
    assert errors() == [line] and os.listdir(out) == []  # refused with nothing written
    monkeypatch.undo()
    assert gen_main(args + ['--no-merge']) == 0
    capsys.readouterr()
    monkeypatch.setattr(atomic_write, 'open', full_open, raising=False)
    assert gen_main(args) == 1  # every shard done: only the merge writes
    assert errors() == [line]
    assert sorted(os.listdir(out)) == ['generation_settings.json', 'images', 'shards']


@pytest.mark.parametrize('locked', [False, True])
def test_an_os_error_at_the_start_is_one_line_naming_its_file(
        gen_main, photo_dir, tiny_unclip_pca, tiny_unclip_path, tmp_path, capsys, monkeypatch,
        locked):
    """The start (model load, settings record) runs before the first shard with work, or inside
    a shard's lock when its locked re-plan finds work the first plan did not (``locked``). An
    OSError there was a traceback before the lock and "cannot write to OUT/shards" inside it."""
    from genview_mm.apis.generation import job, shards
    out = str(tmp_path / 'out')
    record = osp.join(out, 'generation_settings.json')

    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, 'Permission denied', record)
    monkeypatch.setattr(job, 'write_settings', refused)
    if locked:  # the first plan of each shard finds nothing left, the locked one finds all
        real_plan, calls = shards.plan_images, []

        def plan(*args, **kwargs):
            calls.append(1)
            todo, counts = real_plan(*args, **kwargs)
            return ([], counts) if len(calls) == 1 else (todo, counts)
        monkeypatch.setattr(shards, 'plan_images', plan)
    assert gen_main(cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, out)[2:]) == 1
    full = capsys.readouterr().err
    assert 'Traceback' not in full
    assert full.splitlines()[-1] == (
        f'generate_views.py: error: cannot start: Permission denied ({record}): fix that and '
        'rerun')
    assert not osp.exists(osp.join(out, 'images'))


def test_make_generator_names_the_flag_only_for_what_it_checks(photo_dir, tiny_unclip_pca,
                                                              tiny_unclip_path, tmp_path):
    """The noise rule is checked as the flags' (one line naming them); another bad setting of a
    caller that bypasses argparse is not blamed on the noise flags."""
    from genview_mm.apis.generation import UsageError
    from genview_mm.apis.generation.job import make_generator
    from helpers import load_tool
    args = load_tool('generate_views').parse_args(
        cmd(photo_dir, tiny_unclip_pca, tiny_unclip_path, str(tmp_path / 'out'))[2:])
    args.noise_levels = [0, 100, 200, 300, 1200]
    with pytest.raises(UsageError, match=r'^--noise-bins/--noise-levels: noise levels must be '):
        make_generator(args, 'cpu')
    args.noise_levels, args.steps = [0, 100, 200, 300, 400], 0
    with pytest.raises(UsageError, match=r'^num_inference_steps must be an integer >= 1'):
        make_generator(args, 'cpu')
    args.steps, args.compile = 2, True  # --compile: the pipeline batch fixed at a full batch
    assert make_generator(args, 'cpu').max_batch_size == args.batch_size * args.num_variations
