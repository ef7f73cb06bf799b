"""The leaves in genview_mm.utils: the one annotation-list reader, the one atomic writer and
the one image-file writer."""
import errno
import os
import os.path as osp
import socket
import subprocess
import sys
import time

import pytest
from PIL import Image

from genview_mm.utils.annotation_list import parse_annotation_line, read_annotation_list
from genview_mm.utils.atomic_write import (
    STALE_AFTER,
    DiskFull,
    atomic_write,
    create_once,
    temp_name,
)
from genview_mm.utils.image_files import image_file_ok, remembered_check, save_image


def test_annotation_lines_split_a_trailing_integer_label():
    assert parse_annotation_line('n01/a b.JPEG 3\n') == ('n01/a b.JPEG', 3)
    assert parse_annotation_line('n01/a.JPEG -1') == ('n01/a.JPEG', -1)
    assert parse_annotation_line('n01/a b.JPEG') == ('n01/a b.JPEG', None)
    assert parse_annotation_line('n01/a.JPEG x3') == ('n01/a.JPEG x3', None)
    # a label as MMPretrain's int() reads it: '+1' and '1_0' are labels, '²' (a digit to
    # str.isdigit) is none and no crash
    assert parse_annotation_line('n01/a.JPEG +1') == ('n01/a.JPEG', 1)
    assert parse_annotation_line('n01/a.JPEG 1_0') == ('n01/a.JPEG', 10)
    assert parse_annotation_line('n01/a.JPEG \u00b2') == ('n01/a.JPEG \u00b2', None)
    assert parse_annotation_line(' 3') == ('3', None)
    assert parse_annotation_line('   ') is None
    assert parse_annotation_line('# a comment 3') is None


def test_annotation_list_streams_entries(tmp_path):
    path = tmp_path / 'train.txt'
    path.write_text('a/1.JPEG 0\n\n# skipped\nb/2.JPEG 1\nc/3.png\n')
    entries = read_annotation_list(str(path))
    assert not isinstance(entries, list)  # a generator: lists are streamed
    assert list(entries) == [('a/1.JPEG', 0), ('b/2.JPEG', 1), ('c/3.png', None)]


def test_an_annotation_list_that_is_not_text_names_the_file(tmp_path):
    """An image given as the list was "'utf-8' codec can't decode byte 0xff ...", naming no
    file (make_semi_subsets --train-list, sample_extra_images SOURCE, generate_views)."""
    path = tmp_path / 'photo.jpg'
    path.write_bytes(b'\xff\xd8\xff\xe0\x00\x10JFIF')
    with pytest.raises(ValueError) as exc:
        list(read_annotation_list(str(path)))
    assert str(exc.value) == (f'{path} is not UTF-8 text (invalid start byte): give an '
                              'annotation list, one "relative/path.JPEG [label]" per line')


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    path = tmp_path / 'sub' / 'list.txt'
    with atomic_write(str(path)) as f:
        f.write('first\n')
        assert not path.exists()  # nothing visible until the block ends
        assert os.path.basename(f.name) == os.path.basename(temp_name(str(path)))
    assert path.read_text() == 'first\n'
    with pytest.raises(RuntimeError):
        with atomic_write(str(path)) as f:
            f.write('half')
            raise RuntimeError('crash while writing')
    assert path.read_text() == 'first\n'  # the old file is untouched
    assert sorted(os.listdir(path.parent)) == ['list.txt']  # no temporary file left
    with atomic_write(str(path), 'wb') as f:
        f.write(b'\x00\x01')
    assert path.read_bytes() == b'\x00\x01'
    with pytest.raises(ValueError, match='mode'):
        with atomic_write(str(path), 'a'):
            pass


def test_a_write_clears_what_killed_writers_of_the_same_file_left(tmp_path):
    """A process killed while writing (SIGKILL, a preempted job) leaves its hidden temporary
    file; the next write of that file removes it, never a live writer's or another host's."""
    path = str(tmp_path / 'epoch_1.pth')
    gone, gone_too = (subprocess.Popen([sys.executable, '-c', 'pass']) for _ in range(2))
    gone.wait(), gone_too.wait()  # pids no process has now
    prefix = osp.join(str(tmp_path), f'.epoch_1.pth.tmp-{socket.gethostname()}-')
    killed, recent = prefix + str(gone.pid), prefix + str(gone_too.pid)
    alive = prefix + str(os.getppid())
    other_host = osp.join(str(tmp_path), f'.epoch_1.pth.tmp-othernode-{gone.pid}')
    other_file = osp.join(str(tmp_path), f'.epoch_2.pth.tmp-{socket.gethostname()}-{gone.pid}')
    old = time.time() - 2 * STALE_AFTER
    for stray in (killed, alive, other_host, other_file, recent):
        open(stray, 'wb').write(b'half a checkpoint')
        if stray != recent:
            os.utime(stray, (old, old))
    with atomic_write(path, 'wb') as f:
        f.write(b'whole')
    assert open(path, 'rb').read() == b'whole'
    assert not osp.exists(killed)  # its process is gone and it is an hour old
    assert all(osp.exists(p) for p in (alive, other_host, other_file, recent))


def test_atomic_write_and_create_once_take_a_bare_file_name(tmp_path, monkeypatch):
    """A path without a folder (``--out list.txt``) is in the cwd: the temporary file's folder
    was '' and every tool failed with "No such file or directory: ''"."""
    monkeypatch.chdir(tmp_path)
    with atomic_write('list.txt') as f:
        f.write('x\n')
    assert (tmp_path / 'list.txt').read_text() == 'x\n'
    assert create_once('record.json', '{}') and (tmp_path / 'record.json').read_text() == '{}'
    assert sorted(os.listdir(tmp_path)) == ['list.txt', 'record.json']


def test_atomic_write_into_a_temp_folder(tmp_path):
    """``tmp_dir``: the temporary file lives there (a folder its owner clears after a kill),
    and an error leaves neither it nor the target."""
    path, scratch = tmp_path / 'out' / 'v.bin', tmp_path / 'scratch'
    with atomic_write(str(path), 'wb', tmp_dir=str(scratch)) as f:
        assert os.path.dirname(f.name) == str(scratch) and not path.exists()
        f.write(b'x')
    assert path.read_bytes() == b'x' and os.listdir(scratch) == []
    with pytest.raises(RuntimeError):
        with atomic_write(str(tmp_path / 'out' / 'w.bin'), 'wb', tmp_dir=str(scratch)):
            raise RuntimeError('crash while writing')
    assert os.listdir(scratch) == [] and sorted(os.listdir(path.parent)) == ['v.bin']


def test_atomic_write_from_a_temp_folder_on_another_filesystem(tmp_path, monkeypatch):
    """A rename across filesystems fails (EXDEV): the file is copied next to the target and
    renamed from there; nothing is left in either folder."""
    import errno
    path, scratch = tmp_path / 'out' / 'v.bin', tmp_path / 'scratch'
    real_replace, calls = os.replace, []

    def replace(src, dst):
        calls.append(os.path.dirname(src))
        if os.path.dirname(src) == str(scratch):
            raise OSError(errno.EXDEV, 'Invalid cross-device link')
        return real_replace(src, dst)
    monkeypatch.setattr(os, 'replace', replace)
    with atomic_write(str(path), 'wb', tmp_dir=str(scratch)) as f:
        f.write(b'payload')
    assert path.read_bytes() == b'payload'
    assert calls == [str(scratch), str(path.parent)]
    assert os.listdir(scratch) == [] and os.listdir(path.parent) == ['v.bin']
    monkeypatch.setattr(os, 'replace', lambda a, b: (_ for _ in ()).throw(
        OSError(errno.EACCES, 'Permission denied')))  # any other error is raised
    with pytest.raises(PermissionError):
        with atomic_write(str(path), 'wb', tmp_dir=str(scratch)) as f:
            f.write(b'new')
    assert path.read_bytes() == b'payload' and os.listdir(scratch) == []
    # the target's disk full while copying across: DiskFull names the target's folder (it
    # named tmp_dir's, the disk with room)
    import shutil

    from genview_mm.utils.atomic_write import DiskFull
    monkeypatch.setattr(os, 'replace', replace)
    monkeypatch.setattr(shutil, 'copyfile', lambda a, b: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, 'No space left on device')))
    with pytest.raises(DiskFull) as full:
        with atomic_write(str(path), 'wb', tmp_dir=str(scratch)) as f:
            f.write(b'new')
    assert str(path.parent) in str(full.value) and str(scratch) not in str(full.value)
    assert path.read_bytes() == b'payload' and os.listdir(scratch) == []


def test_create_once_keeps_the_first_writer(tmp_path, monkeypatch):
    path = tmp_path / 'rec' / 'settings.json'
    assert create_once(str(path), 'first\n') is True
    assert create_once(str(path), 'second\n') is False
    assert path.read_text() == 'first\n' and os.listdir(path.parent) == ['settings.json']

    def no_links(src, dst):
        raise OSError(1, 'Operation not permitted')  # a filesystem without hard links
    monkeypatch.setattr(os, 'link', no_links)
    other = tmp_path / 'rec' / 'other.json'
    assert create_once(str(other), 'a') is True and other.read_text() == 'a'
    assert create_once(str(other), 'b') is False and other.read_text() == 'a'
    assert sorted(os.listdir(path.parent)) == ['other.json', 'settings.json']


def test_create_once_puts_the_text_on_disk_before_it_has_the_name(tmp_path, monkeypatch):
    """A crash just after the link could leave the settings record empty (read as damaged:
    only --overwrite went on): the temporary file is now synced before it is linked."""
    path, synced, real_fsync = tmp_path / 'settings.json', [], os.fsync

    def fsync(fd):
        synced.append((os.readlink(f'/proc/self/fd/{fd}'), os.fstat(fd).st_size, path.exists()))
        real_fsync(fd)
    monkeypatch.setattr(os, 'fsync', fsync)
    assert create_once(str(path), 'first\n') is True
    assert synced == [(temp_name(str(path)), 6, False)]


def test_remembered_check_decodes_a_file_again_only_once_it_changed(tmp_path, monkeypatch):
    path = str(tmp_path / 'v.jpg')
    Image.effect_noise((64, 64), 50).convert('RGB').save(path)
    opened, real_open = [], Image.open
    monkeypatch.setattr(Image, 'open', lambda p, *a, **k: opened.append(p) or real_open(p))
    assert remembered_check(False) is image_file_ok  # no decode: nothing to remember
    ok = remembered_check(True)
    assert ok(path) and ok(path) and len(opened) == 1
    with open(path, 'r+b') as f:  # cut short (another size): decoded again, now bad
        f.truncate(os.path.getsize(path) // 2)
    assert not ok(path) and not ok(path) and len(opened) == 2
    os.remove(path)
    assert not ok(path) and len(opened) == 2  # gone: no decode


def test_save_image_writes_atomically_through_a_temp_name_of_this_process(tmp_path,
                                                                           monkeypatch):
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, 'replace', lambda a, b: seen.append(a) or real_replace(a, b))
    target = str(tmp_path / 'o' / 'v.png')
    save_image(Image.new('RGB', (4, 4)), target, tmp_dir=str(tmp_path))
    assert len(seen) == 1 and os.path.basename(seen[0]) == os.path.basename(temp_name(target))
    assert os.path.dirname(seen[0]) == str(tmp_path)
    assert os.listdir(tmp_path) == ['o'] and image_file_ok(target, verify=True)
    with Image.open(target) as img:
        assert img.format == 'PNG'
    save_image(Image.new('RGB', (4, 4)), str(tmp_path / 'o' / 'v.JPG'), quality=50)
    with Image.open(tmp_path / 'o' / 'v.JPG') as img:
        assert img.format == 'JPEG'
    with pytest.raises(ValueError, match=r"one of \['.jpeg', '.jpg', '.png', '.webp'\], "
                                         r"got '.gif'"):
        save_image(Image.new('RGB', (4, 4)), str(tmp_path / 'v.gif'))


@pytest.mark.parametrize('code', [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_is_one_line_naming_the_folder_and_leaves_nothing(tmp_path, code):
    path = tmp_path / 'out' / 'list.txt'
    with pytest.raises(DiskFull) as err:
        with atomic_write(str(path)) as f:
            f.write('half')
            raise OSError(code, os.strerror(code))
    assert err.value.errno == code and isinstance(err.value, OSError)
    assert str(err.value) == (f'no space left on the device writing to {path.parent} '
                              f'({os.strerror(code)}): free space or write elsewhere, then rerun')
    assert os.listdir(path.parent) == []
    with pytest.raises(OSError) as other:  # any other error passes through as it was
        with atomic_write(str(path)):
            raise OSError(errno.EACCES, 'Permission denied')
    assert type(other.value) is PermissionError


def test_a_full_disk_making_the_folder_is_disk_full_too(tmp_path, monkeypatch):
    """A view into a new class folder on a full disk: the folder's mkdir fails first; that was
    a bare OSError, which the view writer records as a failed view and goes on with the next."""
    def full(path, *args, **kwargs):
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(os, 'makedirs', full)
    for tmp_dir in (None, str(tmp_path / 'scratch')):
        with pytest.raises(DiskFull, match='^no space left on the device writing to '):
            with atomic_write(str(tmp_path / 'new' / 'v.jpg'), 'wb', tmp_dir=tmp_dir):
                pass
    # the settings record of a first run into a new --out-dir: a traceback of a bare OSError
    with pytest.raises(DiskFull, match=f'^no space left on the device writing to {tmp_path}/new '):
        create_once(str(tmp_path / 'new' / 'settings.json'), '{}')
    assert os.listdir(tmp_path) == []


def test_torch_save_filling_the_disk_is_disk_full(tmp_path, monkeypatch):
    """torch.save's zip writer turns ENOSPC into a RuntimeError ('unexpected pos ...'): with
    no block left on the filesystem that is DiskFull (one line naming the folder); any other
    RuntimeError passes through as it was."""
    import types

    import torch
    path = tmp_path / 'out' / 'w.pth'

    class Full(RuntimeError):
        pass

    def write(free):
        monkeypatch.setattr(os, 'statvfs', lambda p: types.SimpleNamespace(f_bavail=free))
        with atomic_write(str(path), 'wb') as f:
            torch.save({'w': torch.zeros(4)}, f)
            raise Full('[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0')

    with pytest.raises(DiskFull) as err:
        write(0)
    assert str(err.value).startswith(f'no space left on the device writing to {path.parent} (')
    assert isinstance(err.value.__cause__, Full) and os.listdir(path.parent) == []
    with pytest.raises(Full):
        write(1000)


def test_atomic_write_keeps_the_mode_and_never_writes_through_a_link(tmp_path):
    """A replaced file came back 0644 (a private 0600 record became readable by everyone, a
    0750 script lost its x bit). A link is replaced by the new file and its target is left
    as it was (a link in an output folder may point at a user's file elsewhere; see
    tests/tools/test_file_safety.py)."""
    private = tmp_path / 'private.json'
    private.write_text('old')
    os.chmod(private, 0o600)
    with atomic_write(str(private)) as f:
        f.write('new')
    assert private.read_text() == 'new' and os.stat(private).st_mode & 0o777 == 0o600
    real = tmp_path / 'shared' / 'manifest.jsonl'
    real.parent.mkdir()
    real.write_text('old')
    link = tmp_path / 'manifest.jsonl'
    os.symlink(real, link)
    os.chmod(real, 0o600)
    with atomic_write(str(link)) as f:
        f.write('new')
    assert not osp.islink(link) and link.read_text() == 'new' and real.read_text() == 'old'
    assert os.stat(link).st_mode & 0o777 != 0o600  # the target's mode is not the link's


def test_a_name_near_the_limit_gets_a_temporary_name_within_it(tmp_path):
    """The temporary name adds '.', '.tmp-', the host and the pid to the target's: a view
    named with 250 bytes (78 CJK characters) could never be written (File name too long),
    and each rerun retried it as a transient failure."""
    name = '\u4e2d' * 78 + '-0123.png'
    assert len(name.encode()) <= 255
    target = tmp_path / name
    assert len(osp.basename(temp_name(str(target))).encode()) <= 255
    with atomic_write(str(target), 'wb') as f:
        f.write(b'view')
    assert target.read_bytes() == b'view' and os.listdir(tmp_path) == [name]


def test_a_marked_picture_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    """A contact sheet or pair grid was written in place: a kill or a full disk mid-write left
    half a PNG (the mark comes first, so a rerun took it for its own and nothing warned)."""
    from PIL import Image

    from genview_mm.visualization.marks import is_marked, save_marked
    path = str(tmp_path / 'sheet.png')
    save_marked(Image.new('RGB', (8, 8), 'red'), path, 'sheet')
    before = open(path, 'rb').read()
    real = Image.Image.save

    def cut_short(self, fp, *args, **kwargs):
        real(self, fp, *args, **kwargs)
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(Image.Image, 'save', cut_short)
    with pytest.raises(OSError):
        save_marked(Image.new('RGB', (64, 64), 'blue'), path, 'sheet')
    assert open(path, 'rb').read() == before and os.listdir(tmp_path) == ['sheet.png']
    monkeypatch.setattr(Image.Image, 'save', real)
    for name in ('grid.jpg', 'sheet.png'):
        save_marked(Image.new('RGB', (8, 8)), str(tmp_path / name), 'x')
        assert is_marked(str(tmp_path / name), 'x')
