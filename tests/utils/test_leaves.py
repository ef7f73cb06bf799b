"""The leaves in genview_mm.utils: the one annotation-list reader and the one atomic writer."""
import os

import pytest

from genview_mm.utils.annotation_list import parse_annotation_line, read_annotation_list
from genview_mm.utils.atomic_write import atomic_write, create_once, temp_name


def test_annotation_lines_split_a_trailing_integer_label():
    assert parse_annotation_line('n01/a b.JPEG 3\n') == ('n01/a b.JPEG', 3)
    assert parse_annotation_line('n01/a.JPEG -1') == ('n01/a.JPEG', -1)
    assert parse_annotation_line('n01/a b.JPEG') == ('n01/a b.JPEG', None)
    assert parse_annotation_line('n01/a.JPEG x3') == ('n01/a.JPEG x3', None)
    assert parse_annotation_line('   ') is None
    assert parse_annotation_line('# a comment 3') is None


def test_annotation_list_streams_entries(tmp_path):
    path = tmp_path / 'train.txt'
    path.write_text('a/1.JPEG 0\n\n# skipped\nb/2.JPEG 1\nc/3.png\n')
    entries = read_annotation_list(str(path))
    assert not isinstance(entries, list)  # a generator: lists are streamed
    assert list(entries) == [('a/1.JPEG', 0), ('b/2.JPEG', 1), ('c/3.png', None)]


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
