"""tools/sample_extra_images.py: writes the list and its provenance, shows progress, and on too
few images says how many there are, writes nothing and exits with status 2."""
import functools
import json
import os
import os.path as osp
import shutil

import pytest

from helpers import run_script


@pytest.fixture
def folders(tmp_path):
    imagenet = tmp_path / 'imagenet' / 'train' / 'n01'
    imagenet.mkdir(parents=True)
    (imagenet / 'n01_1.JPEG').write_bytes(b'imagenet bytes')
    dump = tmp_path / 'dump'
    for i in range(6):
        (dump / f'part{i % 2}').mkdir(parents=True, exist_ok=True)
        (dump / f'part{i % 2}' / f'{i}.jpg').write_bytes(bytes([i]) * (20 + i))
    (dump / 'part0' / 'n01_1.JPEG').write_bytes(b'same name')
    (dump / 'part1' / 'copy.jpg').write_bytes(b'imagenet bytes')
    return str(tmp_path / 'imagenet' / 'train'), str(dump), tmp_path


def test_writes_the_list_and_its_provenance(folders, capsys):
    imagenet, dump, tmp = folders
    out = str(tmp / 'meta' / 'extra.txt')
    run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 6, '--out', out,
               '--seed', 3)
    listed = open(out).read().splitlines()
    assert listed == sorted(f'part{i % 2}/{i}.jpg' for i in range(6))
    meta = json.load(open(out + '.json'))
    assert {k: meta[k] for k in ('seed', 'num_asked', 'num_written', 'candidates',
                                 'excluded_by_name', 'excluded_by_content')} == dict(
        seed=3, num_asked=6, num_written=6, candidates=8, excluded_by_name=1,
        excluded_by_content=1)
    assert meta['data_root'] == osp.abspath(dump) and meta['content_check'] is True
    captured = capsys.readouterr()
    assert f'wrote {out}: 6 images' in captured.out
    assert 'dropped 0 missing, empty or not files; seed 3' in captured.out
    assert 'ImageNet: 1 file names, 1 distinct sizes' in captured.err
    assert '8 candidates, 1 excluded by name, 7 eligible by name' in captured.err
    assert sorted(os.listdir(tmp / 'meta')) == ['extra.txt', 'extra.txt.json']


def test_an_unmounted_val_share_is_refused_unless_names_only(folders, capsys):
    """ImageNet val files that are links to missing files (an unmounted share) had their bytes
    skipped in silence: a copy of a val image under another name was listed, and the record
    said content_check: true. The run is refused (exit 2, nothing written); --names-only runs,
    recorded as such."""
    imagenet, dump, tmp = folders
    val = tmp / 'imagenet' / 'val'
    val.mkdir()
    for i in range(3):
        os.symlink(tmp / 'unmounted' / f'ILSVRC_val_{i}.JPEG', val / f'ILSVRC_val_{i}.JPEG')
    out = str(tmp / 'extra.txt')
    args = [dump, '--imagenet', imagenet, str(val), '--num', 6, '--out', out]
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', *args)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"sample_extra_images.py: error: 3 ImageNet files are links to missing files (3 under "
        f"{val}, e.g. {val / 'ILSVRC_val_0.JPEG'}): their bytes cannot be compared with the "
        'extra images; mount or restore them, or pass --names-only to exclude ImageNet by file '
        'name only (nothing was written)')
    assert not [n for n in os.listdir(tmp) if n.startswith('extra.txt')]
    run_script('sample_extra_images.py', *args[:-4], '--num', 7, '--out', out, '--names-only')
    assert json.load(open(out + '.json'))['content_check'] is False
    assert 'part1/copy.jpg' in open(out).read().splitlines()  # bytes not compared, as asked


def test_too_few_images_writes_no_list_and_exits_2(folders, capsys):
    """Too few images: no list, exit status 2, and the finished scan kept for the rerun with
    --allow-fewer the message suggests (it was deleted: that rerun scanned the dump again)."""
    imagenet, dump, tmp = folders
    out = str(tmp / 'extra.txt')
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 7,
                   '--out', out)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'has 6 eligible images (8 image files, 1 excluded by name, 1 by content' in err
    # it said "pass --num 6 or --allow-fewer": --num 6 is another scan's settings, so that
    # rerun scanned the dump again
    assert err.endswith('pass --allow-fewer to write these 6 (the list --num 6 would write, '
                        'without scanning again) (no list was written; the scan is saved '
                        f'in {out}.scan: the same command (--allow-fewer too) goes on from it; '
                        'delete it to scan from the start)\n')
    assert 'Traceback' not in err and not osp.exists(out)
    run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 7, '--out', out,
               '--allow-fewer')
    assert f'going on from {out}.scan: pass 1, 8 candidates read, the scan is done' in \
        capsys.readouterr().err
    assert len(open(out).read().splitlines()) == 6 and not osp.exists(out + '.scan')


def test_names_only_and_a_list_source(folders, capsys):
    imagenet, dump, tmp = folders
    lst = tmp / 'candidates.txt'
    lst.write_text('part1/copy.jpg\npart0/n01_1.JPEG\npart0/0.jpg 5\n')
    out = str(tmp / 'extra.txt')
    run_script('sample_extra_images.py', str(lst), '--data-root', dump, '--imagenet', imagenet,
               '--num', 2, '--out', out, '--names-only')
    assert open(out).read().splitlines() == ['part0/0.jpg', 'part1/copy.jpg']


def test_missing_imagenet_is_a_usage_error(folders, capsys):
    _, dump, tmp = folders
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', dump, '--imagenet', str(tmp / 'nowhere'),
                   '--out', str(tmp / 'x.txt'))
    assert exit_info.value.code == 2
    assert f'ImageNet folder {tmp / "nowhere"} not found' in capsys.readouterr().err


def test_an_imagenet_file_is_said_to_be_a_file(folders, capsys):
    """An --imagenet that is a file (the train tar, a list) was said to be "not found"."""
    _, dump, tmp = folders
    archive = tmp / 'ILSVRC2012_img_train.tar'
    archive.write_bytes(b'tar')
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', dump, '--imagenet', str(archive),
                   '--out', str(tmp / 'x.txt'))
    assert exit_info.value.code == 2 and not osp.exists(tmp / 'x.txt')
    assert capsys.readouterr().err.splitlines()[-1] == (
        f'sample_extra_images.py: error: ImageNet folder {archive} is a file, not a folder: '
        "give --imagenet TRAIN VAL (the train/ and val/ folders of ImageNet-1K, unpacked: "
        "neither's images may be in the extra set)")


def test_a_data_root_without_the_source_is_refused_before_imagenet_is_walked(
        folders, capsys, monkeypatch):
    """A --data-root that does not hold the source folder was found only once ImageNet's
    folders had been walked (minutes on ImageNet)."""
    import genview_mm.apis.extra_images as extra_images
    imagenet, dump, tmp = folders
    walked = []
    monkeypatch.setattr(extra_images.ImageNetIndex, 'from_folders',
                        classmethod(lambda cls, roots, *args: walked.append(roots)))
    elsewhere = tmp / 'elsewhere'
    elsewhere.mkdir()
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--data-root',
                   str(elsewhere), '--out', str(tmp / 'x.txt'))
    assert exit_info.value.code == 2 and walked == []
    assert capsys.readouterr().err == (
        f'sample_extra_images.py: error: {dump} is not inside the data root {elsewhere}: give '
        '--data-root a folder that holds every extra image (nothing was written)\n')
    assert sorted(os.listdir(tmp)) == ['dump', 'elsewhere', 'imagenet']


def test_a_list_with_a_data_root_that_is_not_a_folder_is_refused_at_once(
        folders, capsys, monkeypatch):
    """A list source's --data-root that does not exist was found only after ImageNet's walk
    and the whole scan ('most drawn paths are missing')."""
    import genview_mm.apis.extra_images as extra_images
    imagenet, dump, tmp = folders
    walked = []
    monkeypatch.setattr(extra_images.ImageNetIndex, 'from_folders',
                        classmethod(lambda cls, roots, *args: walked.append(roots)))
    listed = tmp / 'extra.txt'
    listed.write_text('a/x.jpg\n')
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', str(listed), '--imagenet', imagenet,
                   '--data-root', str(tmp / 'gone'), '--out', str(tmp / 'x.txt'))
    assert exit_info.value.code == 2 and walked == []
    assert capsys.readouterr().err == (
        f'sample_extra_images.py: error: the data root {tmp / "gone"} is not a folder: give '
        '--data-root the folder that holds the extra images (nothing was written)\n')
    assert sorted(os.listdir(tmp)) == ['dump', 'extra.txt', 'imagenet']


def test_imagenet_val_is_excluded_by_default(folders, capsys, monkeypatch):
    """The default --imagenet is train and val: an ImageNet-21K dump holds val's images under
    its own names, and only train's were excluded (the baseline pretrained on the images it is
    evaluated on)."""
    imagenet, dump, tmp = folders
    monkeypatch.chdir(tmp)
    os.makedirs('data')
    os.symlink(osp.dirname(imagenet), 'data/imagenet')
    with pytest.raises(SystemExit) as exit_info:  # no val/: refused, nothing drawn without it
        run_script('sample_extra_images.py', dump, '--out', 'x.txt', '--num', 2)
    assert exit_info.value.code == 2 and not osp.exists('x.txt')
    assert 'ImageNet folder data/imagenet/val not found' in capsys.readouterr().err
    val_image = osp.join(osp.dirname(imagenet), 'val', 'ILSVRC2012_val_00000001.JPEG')
    os.makedirs(osp.dirname(val_image))
    with open(val_image, 'wb') as f:
        f.write(b'a val image')
    names = sorted(osp.relpath(osp.join(d, n), dump) for d, _, files in os.walk(dump)
                   for n in files)
    shutil.copy(val_image, osp.join(dump, 'n09_val.jpg'))  # its 21K copy, another name
    run_script('sample_extra_images.py', dump, '--out', 'x.txt', '--num', len(names),
               '--allow-fewer')
    assert 'n09_val.jpg' not in open('x.txt').read().split()
    assert json.load(open('x.txt.json'))['excluded_by_content'] >= 1


@pytest.mark.parametrize('allow_fewer', [[], ['--allow-fewer']], ids=['strict', 'allow-fewer'])
@pytest.mark.parametrize('source', ['empty', 'all-excluded'])
def test_no_eligible_image_writes_nothing_and_exits_2(folders, capsys, source, allow_fewer):
    """No eligible image advised '--num 0' (an invalid value), and with --allow-fewer wrote an
    empty list; now it says so and writes nothing, with or without --allow-fewer."""
    imagenet, _, tmp = folders
    src = tmp / source
    src.mkdir()
    if source == 'all-excluded':
        (src / 'n01_1.JPEG').write_bytes(b'same name')
        (src / 'copy.jpg').write_bytes(b'imagenet bytes')
    counts = '0 image files, 0 excluded by name, 0 by content' if source == 'empty' else \
        '2 image files, 1 excluded by name, 1 by content'
    out = tmp / 'extra.txt'
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', src, '--imagenet', imagenet, '--num', 3, '--out',
                   out, *allow_fewer)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f'sample_extra_images.py: error: {src} has no eligible images ({counts}, '
                   '0 missing, empty or not files, 0 listed twice): give a source holding '
                   f'images other than those of {imagenet} (nothing was written)')  # it said
    # "ImageNet-1K train images" also where val was excluded too
    assert not out.exists() and not osp.exists(f'{out}.json')


@pytest.mark.parametrize('out', ['candidates.txt', 'link.txt', 'list.json', 'list.scan'])
def test_out_is_never_the_candidate_list(folders, capsys, out):
    """--out naming the source list (or a link to it, or OUT.json being it) replaced the
    candidate list by its own sample; with OUT.scan being it (``cands.scan`` sampled to
    ``--out cands``), --overwrite let the scan's progress replace the list, then deleted it.
    Refused even with --overwrite."""
    imagenet, dump, tmp = folders
    lst = tmp / 'candidates.txt'
    lst.write_text('part0/0.jpg\npart1/1.jpg\n')
    (tmp / 'link.txt').symlink_to(lst)
    (tmp / 'list.json.json').symlink_to(lst)
    (tmp / 'list.scan.scan').symlink_to(lst)
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', lst, '--data-root', dump, '--imagenet', imagenet,
                   '--num', 1, '--out', tmp / out, '--overwrite')
    assert exit_info.value.code == 2
    written = tmp / {'list.json': 'list.json.json', 'list.scan': 'list.scan.scan'}.get(out, out)
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"sample_extra_images.py: error: --out {str(tmp / out)!r} would write {str(written)!r}, "
        f"which is the candidate list {str(lst)!r} itself: pass another --out (nothing was "
        'written)')
    assert lst.read_text() == 'part0/0.jpg\npart1/1.jpg\n'
    assert not (tmp / 'list.json').exists()


@pytest.mark.parametrize('mine', ['extra.txt', 'extra.txt.json', 'extra.txt.scan'])
def test_a_users_file_at_out_is_kept_unless_overwrite(folders, capsys, mine):
    """--out (or OUT.json, OUT.scan) naming a file this tool did not write: refused before the
    scan, the file kept; a list it wrote is replaced on a rerun, and --overwrite replaces the
    user's."""
    imagenet, dump, tmp = folders
    out = tmp / 'extra.txt'
    (tmp / mine).write_text('my notes\n')
    cmd = ['sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 2, '--out', out]
    with pytest.raises(SystemExit) as exit_info:
        run_script(*cmd)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f'{tmp / mine} exists and is not' in err and 'pass --overwrite' in err
    assert (tmp / mine).read_text() == 'my notes\n' and len(os.listdir(tmp)) == 3
    run_script(*cmd, '--overwrite')
    assert len(out.read_text().splitlines()) == 2
    run_script(*cmd, '--seed', 1)  # its own list: a rerun replaces it
    assert json.load(open(f'{out}.json'))['seed'] == 1


def test_a_run_stopped_between_its_two_files_is_rerun_as_is(folders, monkeypatch):
    """A kill after the list was renamed into place and before OUT.json was written left a
    list the rerun refused as not the tool's ('pass --overwrite'); the record goes first now,
    and a record without its list is the tool's own: the same command goes on."""
    import genview_mm.apis.extra_images.image_list as image_list
    imagenet, dump, tmp = folders
    out = tmp / 'extra.txt'
    real, calls = image_list.atomic_write, []

    def killed_at_the_second(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(image_list, 'atomic_write', killed_at_the_second)
    cmd = ['sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 2, '--out', out]
    with pytest.raises(KeyboardInterrupt):
        run_script(*cmd)
    monkeypatch.setattr(image_list, 'atomic_write', real)
    run_script(*cmd)  # no --overwrite
    assert len(out.read_text().splitlines()) == 2
    assert json.load(open(f'{out}.json'))['num_written'] == 2


def test_a_stopped_scan_goes_on_and_its_file_goes_once_the_list_is_written(folders, capsys,
                                                                           monkeypatch):
    """A run killed during the scan started over. The scan is saved to OUT.scan as it goes,
    the rerun goes on from it (the counts of the whole scan, ImageNet's name excluded once),
    and OUT.scan is removed once the list is written."""
    import genview_mm.apis.extra_images as extra_images
    from genview_mm.apis.extra_images import KeyedReservoir
    imagenet, dump, tmp = folders
    shutil.copy(osp.join(dump, 'part0', 'n01_1.JPEG'), osp.join(dump, 'part1'))  # whichever
    out = tmp / 'extra.txt'  # folder is walked first, it excludes a name
    real, offered = KeyedReservoir.offer, []

    def offer(self, item):
        if len(offered) == 4:
            raise KeyboardInterrupt
        offered.append(item)
        real(self, item)

    monkeypatch.setattr(KeyedReservoir, 'offer', offer)
    monkeypatch.setattr(extra_images, 'sample_extra_images', functools.partial(
        extra_images.sample_extra_images, save_every=0))  # saved at each folder's end
    cmd = ['sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 6, '--out', out]
    with pytest.raises(KeyboardInterrupt):
        run_script(*cmd)
    saved = json.load(open(f'{out}.scan'))
    assert (saved['candidates'], saved['excluded_by_name']) in ((4, 1), (5, 1))
    assert not out.exists()
    offered.clear()
    monkeypatch.setattr(KeyedReservoir, 'offer', lambda self, item: (offered.append(item),
                                                                   real(self, item)))
    capsys.readouterr()
    run_script(*cmd)
    err = capsys.readouterr().err
    assert f'going on from {out}.scan: pass 1, {saved["candidates"]} candidates read' in err
    assert len(offered) == 7 - saved['candidates'] + saved['excluded_by_name']
    meta = json.load(open(f'{out}.json'))
    assert (meta['candidates'], meta['excluded_by_name'], meta['num_written']) == (9, 2, 6)
    assert sorted(os.listdir(tmp)) == ['dump', 'extra.txt', 'extra.txt.json', 'imagenet']


def test_an_error_mid_scan_keeps_the_scan_and_says_how_to_start_over(folders, capsys,
                                                                     monkeypatch):
    import errno

    import genview_mm.apis.extra_images as extra_images
    imagenet, dump, tmp = folders
    out = tmp / 'extra.txt'
    monkeypatch.setattr(extra_images, 'sample_extra_images', functools.partial(
        extra_images.sample_extra_images, save_every=0))
    real = os.scandir

    def failing(path='.'):
        if str(path).endswith('part1'):
            raise OSError(errno.EIO, 'Input/output error', str(path))
        return real(path)

    monkeypatch.setattr(os, 'scandir', failing)
    cmd = ['sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 6, '--out', out]
    with pytest.raises(SystemExit) as exit_info:
        run_script(*cmd)
    assert exit_info.value.code == 2 and osp.isfile(f'{out}.scan')
    assert capsys.readouterr().err.endswith(
        f"part1' (no list was written; the scan is saved in {out}.scan: the same command goes "
        'on from it; delete it to scan from the start)\n')
    monkeypatch.setattr(os, 'scandir', real)
    run_script(*cmd)
    assert 'going on from' in capsys.readouterr().err and not osp.exists(f'{out}.scan')
    assert len(out.read_text().splitlines()) == 6


def test_an_entry_outside_the_data_root_mid_scan_keeps_no_scan(folders, capsys, monkeypatch):
    """A list entry outside --data-root met after the scan was saved: the error said "the same
    command goes on from it", and that command stopped on the same entry again. The scan is
    of no use (another --data-root or list scans from the start): it is removed."""
    import genview_mm.apis.extra_images as extra_images
    imagenet, dump, tmp = folders
    monkeypatch.setattr(extra_images, 'sample_extra_images', functools.partial(
        extra_images.sample_extra_images, save_every=0))
    lst = tmp / 'candidates.txt'
    lst.write_text(''.join(f'part0/{i}.jpg\n' for i in range(10_000)) + '../elsewhere.jpg\n')
    out = tmp / 'extra.txt'
    cmd = ['sample_extra_images.py', str(lst), '--data-root', dump, '--imagenet', imagenet,
           '--num', 2, '--out', out, '--names-only']
    for _ in range(2):  # the rerun was told to go on from the scan
        with pytest.raises(SystemExit) as exit_info:
            run_script(*cmd)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1] == (
            f'sample_extra_images.py: error: {lst}: ../elsewhere.jpg points outside the data '
            f'root {dump}: give --data-root a folder that holds it (nothing was written)')
        assert sorted(os.listdir(tmp)) == ['candidates.txt', 'dump', 'imagenet']


@pytest.mark.parametrize('where,message', [
    ('a_file/extra.txt', 'cannot write {out}: {tmp}/a_file is a file, not a folder; choose '
                         'another path'),
    ('a_file/deeper/extra.txt', 'cannot write {out}: {tmp}/a_file is a file, not a folder; '
                                'choose another path'),
], ids=['under-a-file', 'under-a-file-deeper'])
def test_an_out_that_cannot_be_written_is_refused_before_the_scan(folders, capsys, where,
                                                                 message):
    """An --out under a file was found unwritable only after the whole scan (hours on a real
    dump), as a FileExistsError traceback with exit 1."""
    imagenet, dump, tmp = folders
    (tmp / 'a_file').write_text('mine')
    out = tmp / where
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 2,
                   '--out', out)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == ('sample_extra_images.py: error: --out '
                                    + message.format(out=out, tmp=tmp) + ' (nothing was written)')
    assert 'ImageNet:' not in err  # nothing was scanned
    assert (tmp / 'a_file').read_text() == 'mine'
    assert sorted(os.listdir(tmp)) == ['a_file', 'dump', 'imagenet']


@pytest.mark.parametrize('out', ['', 'meta/'])
def test_an_out_without_a_file_name_is_a_usage_error(folders, capsys, out, monkeypatch):
    """``--out ''`` (an unset variable) scanned everything, then failed to write (exit 1) and
    left .json and .scan in the current folder."""
    imagenet, dump, tmp = folders
    monkeypatch.chdir(tmp)
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 2,
                   '--out', out)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (f'sample_extra_images.py: error: --out {out!r} names no '
                                    'file: give the path of the list to write (nothing was '
                                    'written)')
    assert 'ImageNet:' not in err and sorted(os.listdir(tmp)) == ['dump', 'imagenet']


def test_a_full_disk_at_the_end_is_one_line(folders, capsys, monkeypatch):
    """The disk fills up while the list is written: one line naming the folder, exit 1 (it was
    a DiskFull traceback)."""
    import errno

    import genview_mm.apis.extra_images as extra
    from genview_mm.utils.atomic_write import DiskFull
    imagenet, dump, tmp = folders

    def full(paths, out, provenance=None):
        raise DiskFull(errno.ENOSPC, 'No space left on device', str(tmp))

    monkeypatch.setattr(extra, 'write_image_list', full)
    out = tmp / 'extra.txt'
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 2,
                   '--out', out)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        f'sample_extra_images.py: error: cannot write {out}: no space left on the device '
        f'writing to {tmp} (No space left on device): free space or write elsewhere, then rerun')
    assert 'Traceback' not in err and not out.exists()


def test_a_seed_too_long_for_the_hash_key_is_a_usage_error(folders, capsys):
    """A seed of more than 64 digits keys no BLAKE2b: it ended in 'maximum key length is 64
    bytes' after the ImageNet scan, naming no option."""
    imagenet, dump, tmp = folders
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 2,
                   '--out', tmp / 'x.txt', '--seed', '9' * 65)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        'sample_extra_images.py: error: --seed may have at most 64 characters, got 65 (nothing '
        'was written)')
    run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 2,
               '--out', tmp / 'x.txt', '--seed', '9' * 64)  # the longest seed still draws
    assert len(open(tmp / 'x.txt').read().splitlines()) == 2


def test_verify_decodes_what_it_keeps(folders, capsys):
    """--verify: the fixture's 'images' are bytes that no decoder reads, so none is kept (they
    were listed, and training failed on the first); the provenance records the check."""
    imagenet, dump, tmp = folders
    out = str(tmp / 'extra.txt')
    with pytest.raises(SystemExit) as exit_:
        run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 6, '--out',
                   out, '--verify')
    assert exit_.value.code == 2
    assert '6 missing, empty, undecodable or not files' in capsys.readouterr().err
    assert not osp.exists(out)
    run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 6, '--out', out)
    assert json.load(open(out + '.json'))['decoded'] is False
