"""The views manifest (structures.manifest): row type, reader and writer round trip, a truncated
or corrupt line, the matching rule, reading without the heavy stack; merging shard records
(duplicates, the newest ok row wins, conflicts, missing images and files); the source listings."""
import json
import os
import os.path as osp
import re
import shutil
import sys

import pytest

from genview_mm.apis.generation.shards import merge_manifests, shard_path
from genview_mm.datasets.image_sources import ImageItem, list_file, list_folder
from genview_mm.structures.manifest import (
    FIELDS,
    ManifestRow,
    RowMatcher,
    read_manifest,
    read_rows,
    write_manifest,
)
from helpers import run_cmd


def row(key, status='ok', variation=0, level=100, **extra):
    ok = status == 'ok'
    return ManifestRow(f'/data/{key}', key, variation, f'images/{key}' if ok else None,
                       level if ok else None, 0.3 if ok else None, 7, 'g', 0.9 if ok else None,
                       status, '' if ok else 'bad', **extra)


def test_writer_reader_round_trip_and_status_filter(tmp_path):
    path = str(tmp_path / 'm.jsonl')
    assert write_manifest(path, [row('a.jpg'), row('b.jpg', 'failed')]) == 2
    rows = read_manifest(path)
    assert [r['key'] for r in rows] == ['a.jpg']
    assert rows[0]['output'] == str(tmp_path / 'images' / 'a.jpg')
    assert list(rows[0]) == list(FIELDS)
    assert len(read_manifest(path, status=None)) == 2
    assert read_manifest(path, status='failed')[0]['reason'] == 'bad'
    assert read_manifest(str(tmp_path / 'm.jsonl'), absolute=False)[0]['output'] == 'images/a.jpg'
    assert os.listdir(tmp_path) == ['m.jsonl']  # no temporary file left


def test_a_truncated_last_line_is_skipped_in_a_journal_only(tmp_path):
    """A journal's last line cut by a kill is skipped; any other file is written whole, so a
    cut last line is a truncated copy: it was skipped too, and the rows lost with the rest of
    the file went unnoticed."""
    path = str(tmp_path / 'm.jsonl')
    with open(path, 'w') as f:
        f.write(row('a.jpg').to_line() + row('b.jpg').to_line()[:25])
    assert [r.key for r in read_rows(path, journal=True)] == ['a.jpg']
    with pytest.raises(ValueError, match=r'm\.jsonl:2: the last line is cut short \(.*\): the '
                       r'file is truncated \(a copy or download cut off\?\), so rows may be '
                       'lost: copy it again, or make it again$'):
        list(read_rows(path))
    with open(path, 'w') as f:  # a file written by hand without a final line end: complete
        f.write(row('a.jpg').to_line() + row('b.jpg').to_line().rstrip('\n'))
    assert [r.key for r in read_rows(path)] == ['a.jpg', 'b.jpg']


def test_a_cut_shard_record_names_one_fix(tmp_path):
    """A shard record cut short: the reader's 'copy it again, or make it again' and the
    merge's 'delete that file ... and merge again' were chained into one line."""
    from genview_mm.apis.generation import SetupError
    from genview_mm.apis.generation.shards import recorded_rows
    out = str(tmp_path)
    write_record(out, 0, [row('a.jpg'), row('b.jpg')])
    record = shard_path(out, 0, 'jsonl')
    text = open(record).read()
    open(record, 'w').write(text[:len(text) - 20])
    with pytest.raises(ValueError) as exc:
        merge_manifests(out)
    assert str(exc.value).startswith(f'{record}:2: the last line is cut short (')
    assert str(exc.value).endswith('the file is truncated (a copy or download cut off?), so '
                                   'rows may be lost: delete that file (tools/generate_views.py '
                                   'redoes its shard) and merge again')
    with pytest.raises(SetupError) as exc:
        recorded_rows([record])
    assert str(exc.value).endswith('so rows may be lost: delete that file (its shard is redone) '
                                   'and rerun')


def test_a_record_with_a_read_error_is_named(tmp_path, monkeypatch):
    """A disk error while reading (EIO) names no file: the line said 'cannot read None'."""
    import errno
    import io

    from genview_mm.apis.generation import SetupError
    from genview_mm.apis.generation.shards import recorded_rows
    from genview_mm.structures import manifest
    write_record(str(tmp_path), 0, [row('a.jpg')])
    record = shard_path(str(tmp_path), 0, 'jsonl')

    class Failing(io.StringIO):
        def readlines(self, *args):
            raise OSError(errno.EIO, 'Input/output error')
    monkeypatch.setattr(manifest, 'open', lambda *a, **k: Failing(), raising=False)
    with pytest.raises(SetupError) as exc:
        recorded_rows([record])
    assert str(exc.value) == (f'cannot read {record} (Input/output error): fix its '
                              'permissions or its disk, or delete it (its shard is redone)')


def test_a_journal_cut_after_a_brace_inside_a_reason_is_cut_short(tmp_path):
    """A kill while a failed row was written left '..."reason": "transient: KeyError: {}' as
    the journal's last line: read as a complete, damaged line, the merge (and the generator's
    start) refused and told to delete the journal, and with it the shard's finished rows. A
    journal's rows all end their line; a manifest's last line ending in '}' still counts as
    complete, and is named when it does not decode."""
    out = str(tmp_path)
    cut = row('b.jpg', 'failed').to_line().replace('"bad"', '"transient: KeyError: {}"')
    cut = cut[:cut.index('{}') + 2]
    write_record(out, 0, [row('c.jpg')])
    with open(shard_path(out, 1, 'journal'), 'w') as f:
        f.write(row('a.jpg').to_line() + cut)
    report = merge_manifests(out)
    assert (report['rows'], report['ok'], report['failed']) == (2, 2, 0)
    (tmp_path / 'm.jsonl').write_text(row('a.jpg').to_line() + cut)
    with pytest.raises(ValueError, match='m.jsonl:2: corrupt manifest line'):
        list(read_rows(str(tmp_path / 'm.jsonl')))


def test_corrupt_middle_line_raises(tmp_path):
    path = tmp_path / 'm.jsonl'
    path.write_text('{"broken\n' + row('a.jpg').to_line())
    with pytest.raises(ValueError, match='corrupt manifest line'):
        list(read_rows(str(path)))


def test_missing_manifest_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match='merge_manifests.py'):
        read_manifest(str(tmp_path))


def test_matching_rule():
    m = RowMatcher('/data/imagenet/train')
    for key, source in (('n01/x.JPEG', '/old/mount/train/n01/x.JPEG'), ('y.jpg', '/s/y.jpg')):
        m.add(ManifestRow(source, key))
    assert m.match('/old/mount/train/n01/x.JPEG') == 'n01/x.JPEG'  # the recorded source
    assert m.match('/data/imagenet/train/n01/x.JPEG') == 'n01/x.JPEG'  # the key under the root
    assert m.match('/data/imagenet/train/n02/x.JPEG') is None  # under the root: no suffix guess
    # outside the root: no key (its trailing part paired b/0.jpg with a/0.jpg's view, and the
    # hook's advice to set source_root to the manifest's folder changed nothing)
    assert m.match('/elsewhere/n01/x.JPEG') is None
    assert RowMatcher().match('/elsewhere/n01/x.JPEG') is None  # no row has this trailing part
    m = RowMatcher()
    m.add(ManifestRow('/old/mount/train/n01/x.JPEG', 'n01/x.JPEG'))
    assert m.match('/elsewhere/n01/x.JPEG') == 'n01/x.JPEG'  # no root: the longest trailing key
    assert RowMatcher('/').match('/n01/x.JPEG') is None  # the root '/': the whole path is the key
    assert RowMatcher().match('/x/z.jpg') is None


def test_source_root_through_a_link_on_either_side(tmp_path):
    """A data root that is a link to the folder source_root names (data/imagenet -> a mount),
    or the reverse: the key under it is found (strict source_root refused these runs)."""
    real = tmp_path / 'real'
    (real / 'n01').mkdir(parents=True)
    (real / 'n01' / 'x.JPEG').write_bytes(b'x')
    os.symlink(real, tmp_path / 'link')
    for root, image in ((real, tmp_path / 'link' / 'n01' / 'x.JPEG'),
                        (tmp_path / 'link', real / 'n01' / 'x.JPEG')):
        m = RowMatcher(str(root))
        m.add(ManifestRow('/gone/n01/x.JPEG', 'n01/x.JPEG'))
        assert m.match(str(image)) == 'n01/x.JPEG', root
        assert m.match(str(tmp_path / 'n01' / 'x.JPEG')) is None  # outside, linked or not
    # links inside the tree: a class folder linked from elsewhere (ImageNet-100 subsets), files
    # linked one by one into a store: the folders' links are resolved, the file keeps its name
    (tmp_path / 'store').mkdir()
    (tmp_path / 'store' / 'blob1').write_bytes(b'y')
    (real / 'n02').mkdir()
    os.symlink(tmp_path / 'store' / 'blob1', real / 'n02' / 'y.JPEG')
    os.symlink(tmp_path / 'store', real / 'n03')
    m = RowMatcher(str(real))
    for key in ('n02/y.JPEG', 'n03/blob1'):
        m.add(ManifestRow(f'/gone/{key}', key))
    assert m.match(str(tmp_path / 'link' / 'n02' / 'y.JPEG')) == 'n02/y.JPEG'
    assert m.match(str(tmp_path / 'link' / 'n03' / 'blob1')) == 'n03/blob1'
    asked = len(m._real_dirs)  # each folder's real path once
    assert m.match(str(tmp_path / 'link' / 'n03' / 'blob1')) == 'n03/blob1'
    assert len(m._real_dirs) == asked
    # a subset made of links inside the root (in100/n01 -> imagenet/train/n01), read through
    # the real root while source_root names the link: the key generation wrote, in100/n01/x,
    # not the class folder's real place (the nearest folder was resolved first)
    (real / 'imagenet' / 'train' / 'n01').mkdir(parents=True)
    (real / 'in100').mkdir()
    os.symlink(real / 'imagenet' / 'train' / 'n01', real / 'in100' / 'n01')
    m = RowMatcher(str(tmp_path / 'link'))
    m.add(ManifestRow(str(tmp_path / 'link' / 'in100' / 'n01' / 'x.jpg'), 'in100/n01/x.jpg'))
    assert m.match(str(real / 'in100' / 'n01' / 'x.jpg')) == 'in100/n01/x.jpg'
    # a subset outside the root whose class folders are links into it: the nearest folder
    (tmp_path / 'subset').mkdir()
    os.symlink(real / 'n01', tmp_path / 'subset' / 'n01')
    m = RowMatcher(str(real))
    m.add(ManifestRow('/gone/n01/x.JPEG', 'n01/x.JPEG'))
    assert m.match(str(tmp_path / 'subset' / 'n01' / 'x.JPEG')) == 'n01/x.JPEG'


READ = r'''
import importlib, sys, types
root = importlib.util.find_spec('genview_mm').submodule_search_locations[0]
pkg = types.ModuleType('genview_mm'); pkg.__path__ = [root]; sys.modules['genview_mm'] = pkg
from genview_mm.structures.manifest import RowMatcher, read_manifest, read_rows
rows = read_manifest(sys.argv[1])
m = RowMatcher()
for r in read_rows(sys.argv[1]):
    m.add(r)
print(len(rows), m.match('/data/a.jpg'), sorted(k for k in ('torch', 'diffusers',
      'transformers', 'mmengine', 'mmpretrain') if k in sys.modules))
'''


@pytest.mark.slow
def test_reading_a_manifest_imports_no_heavy_stack(tmp_path):
    path = str(tmp_path / 'm.jsonl')
    write_manifest(path, [row('a.jpg'), row('b.jpg')])
    res = run_cmd([sys.executable, '-c', READ, path], timeout=60)
    assert res.stdout.split() == ['2', 'a.jpg', '[]']


def write_record(out, shard, rows, mtime=None):
    path = shard_path(out, shard)
    write_manifest(path, rows)
    if mtime:
        os.utime(path, (mtime, mtime))
    return path


def test_merge_dedups_sorts_and_reports_missing(tmp_path):
    out = str(tmp_path)
    write_record(out, 0, [row('c.jpg', 'failed'), row('a.jpg')], 1_000_000)
    write_record(out, 1, [row('c.jpg'), row('a.jpg'), row('d.jpg', 'failed')], 2_000_000)
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / 'a.jpg').write_bytes(b'x')
    items = [ImageItem(f'/data/{k}', k) for k in ('a.jpg', 'b.jpg', 'c.jpg', 'd.jpg')]
    rep = merge_manifests(out, items, check_files=True)
    assert (rep['rows'], rep['ok'], rep['failed'], rep['duplicates']) == (3, 2, 1, 2)
    assert rep['conflicts'] == []  # the same view listed twice is a plain duplicate
    assert rep['missing'] == ['b.jpg#0']
    assert rep['missing_files'] == ['images/c.jpg']
    merged = read_manifest(out, status=None)
    assert [(r['key'], r['status']) for r in merged] == [
        ('a.jpg', 'ok'), ('c.jpg', 'ok'), ('d.jpg', 'failed')]
    first = open(osp.join(out, 'manifest.jsonl')).read()
    merge_manifests(out, items)
    assert open(osp.join(out, 'manifest.jsonl')).read() == first  # idempotent


def test_merge_elsewhere_keeps_the_outputs_reachable(tmp_path):
    """``--out`` outside OUT_DIR: the outputs are rewritten relative to the manifest's folder
    (they were left relative to OUT_DIR, so every view was reported missing)."""
    out = str(tmp_path / 'gen')
    write_record(out, 0, [row('a/x.jpg'), row('b.jpg', 'failed')], 1_000_000)
    os.makedirs(osp.join(out, 'images', 'a'))
    open(osp.join(out, 'images', 'a', 'x.jpg'), 'wb').write(b'x')
    elsewhere = str(tmp_path / 'lists' / 'm.jsonl')
    rep = merge_manifests(out, check_files=True, out=elsewhere)
    assert rep['path'] == elsewhere and rep['missing_files'] == []
    assert [r['output'] for r in read_manifest(elsewhere, absolute=False)] == [
        '../gen/images/a/x.jpg']
    assert read_manifest(elsewhere)[0]['output'] == osp.join(out, 'images', 'a', 'x.jpg')
    os.remove(osp.join(out, 'images', 'a', 'x.jpg'))
    assert merge_manifests(out, check_files=True, out=elsewhere)['missing_files'] == [
        '../gen/images/a/x.jpg']


def test_merge_tool_replaces_only_a_manifest(tmp_path, capsys):
    """``merge_manifests.py OUT --out mylist.txt``: a user's list there was replaced by the
    merged rows (exit 0). Now one line, exit 2, the file as it was; a manifest there (a rerun)
    is replaced, the list with --overwrite."""
    from helpers import load_tool
    out = str(tmp_path / 'gen')
    write_record(out, 0, [row('a.jpg')], 1_000_000)
    mine = tmp_path / 'mylist.txt'
    mine.write_text('my precious list\nline2\n')
    tool = load_tool('merge_manifests')
    assert tool.main([out, '--out', str(mine)]) == 2
    assert capsys.readouterr().err == (
        f'merge_manifests.py: error: {mine} exists and is not a GenView manifest (written by '
        'genview_mm): writing would replace it and its 23 bytes would be lost; pass '
        '--overwrite to replace it, or choose another path\n')
    assert mine.read_text() == 'my precious list\nline2\n'
    assert tool.main([out, '--out', str(mine), '--overwrite']) == 0
    assert [r['key'] for r in read_manifest(str(mine))] == ['a.jpg']
    assert tool.main([out, '--out', str(mine)]) == 0  # its own manifest: a rerun replaces it
    assert tool.main([out]) == 0 and tool.main([out]) == 0  # OUT/manifest.jsonl, rerun
    capsys.readouterr()  # a file where --out's folder would be: '[Errno 17] File exists'
    assert tool.main([out, '--out', str(mine / 'm.jsonl')]) == 2
    assert capsys.readouterr().err == (f'merge_manifests.py: error: cannot write '
                                       f'{mine / "m.jsonl"}: {mine} is a file, not a folder; '
                                       'choose another path\n')

@pytest.mark.parametrize('damage', ['null variation', 'text variation', 'not utf-8'])
def test_a_damaged_record_is_named_with_the_way_out(tmp_path, capsys, damage):
    """A record line with ``"variation": null`` was a TypeError traceback from int(); with
    ``"zero"`` or bytes that are not UTF-8, an error naming no file. Now one line naming the
    file (and line), with what to do, exit 2."""
    from helpers import load_tool
    out = str(tmp_path)
    record = write_record(out, 0, [row('a.jpg'), row('b.jpg'), row('c.jpg')])
    with open(record, 'rb') as f:
        lines = f.readlines()
    if damage == 'not utf-8':
        lines.insert(1, b'\xff\xfe\n')
    else:
        lines[1] = lines[1].replace(b'"variation": 0', b'"variation": ' + (
            b'null' if damage == 'null variation' else b'"zero"'))
    with open(record, 'wb') as f:
        f.writelines(lines)
    assert load_tool('merge_manifests').main([out]) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith(f'merge_manifests.py: error: {record}')
    assert err.endswith(': delete that file (tools/generate_views.py redoes its shard) and '
                        'merge again\n')
    assert ('not UTF-8 text' if damage == 'not utf-8' else
            ':2: not a manifest row (key must be a string, variation an integer') in err
    with pytest.raises(ValueError, match=record):
        list(read_rows(record))  # training's reader too

@pytest.mark.parametrize('field, value, said', [
    ('noise_level', '"abc"', "noise_level must be an integer in 0..999 or null: got 'abc'"),
    ('clip_sim', '"0.5"', "clip_sim must be a number or null: got '0.5'"),
    ('output', '5', 'output must be a string or null: got 5'),
    ('attempt', 'null', 'attempt must be an integer: got None'),
    ('attempt', '"2"', "attempt must be an integer: got '2'"),
    ('output', 'null', "an ok row needs an output (its view's path): got None"),
    ('output', '""', "an ok row needs an output (its view's path): got ''"),
    # another status ('OK', 'success' in a manifest written by hand) was read as a failure:
    # the image silently had no view, and the hook advised rerunning the generation
    ('status', '"OK"', "status must be 'ok' or 'failed': got 'OK'"),
    ('status', '"success"', "status must be 'ok' or 'failed': got 'success'"),
    # read, then an AttributeError in the merge or a rerun's retry rule (failure_kind)
    ('reason', '5', 'reason must be a string or null: got 5'),
    ('generator', '[1]', 'generator must be a string or null: got [1]'),
    # read and kept: a level or ratio out of range was reported as the view's
    ('noise_level', '1000', 'noise_level must be an integer in 0..999 or null: got 1000'),
    ('noise_level', '-1', 'noise_level must be an integer in 0..999 or null: got -1'),
    ('fg_ratio', '1.5', 'fg_ratio must be a number in [0, 1] or null: got 1.5'),
    ('fg_ratio', 'NaN', 'fg_ratio must be a number in [0, 1] or null: got nan'),
])
def test_a_field_of_the_wrong_type_names_the_line(tmp_path, field, value, said):
    """A hand-edited row ("noise_level": "abc", "clip_sim": "0.5", "output": 5) passed the
    reader and failed in training's index or the preflight with a traceback naming no file;
    an ok row without an output counted as covered and ended the start check in a TypeError."""
    from genview_mm.datasets.manifest_index import ManifestIndex
    path = tmp_path / 'manifest.jsonl'
    rows = [dict(source=f'/d/{n}.jpg', key=f'{n}.jpg', output=f'images/{n}.jpg', noise_level=100,
                 clip_sim=0.9) for n in 'abc']
    lines = [json.dumps(r) for r in rows]
    lines[1] = json.dumps(dict(rows[1], **{field: None}))
    lines[1] = lines[1].replace(f'"{field}": null', f'"{field}": {value}')
    path.write_text('\n'.join(lines) + '\n')
    for read in (lambda: list(read_rows(str(path))), lambda: ManifestIndex(str(path))):
        with pytest.raises(ValueError) as exc:
            read()
        assert str(exc.value) == f'{path}:2: not a manifest row ({said})'


def test_the_fast_type_check_agrees_with_the_one_that_explains():
    from genview_mm.structures.manifest import ManifestRow, _type_error, _typed
    fields = ('key', 'variation', 'source', 'status', 'output', 'noise_level', 'seed',
              'fg_ratio', 'clip_sim', 'attempt', 'reason', 'generator')
    verdicts = set()
    for status in ('ok', 'failed'):
        for field in fields:
            for value in (None, True, 1, 1.5, -1, 1000, float('nan'), float('inf'), 's', '',
                          [1]):
                row = ManifestRow(**dict(dict(source='/a', key='k', variation=0, output='o.jpg',
                                              status=status), **{field: value}))
                assert _typed(row) == (_type_error(row) is None), (status, field, value)
                verdicts.add(_typed(row))
    assert verdicts == {True, False}


def test_merge_into_a_linked_folder_checks_the_outputs_its_readers_open(tmp_path):
    """``--out`` in a folder reached through a symlink: the relative outputs resolve as
    read_manifest resolves them (lexically, from the manifest's folder as named); the check
    resolved them through the link instead and called every view missing."""
    out = str(tmp_path / 'gen')
    write_record(out, 0, [row('a/x.jpg')], 1_000_000)
    os.makedirs(osp.join(out, 'images', 'a'))
    open(osp.join(out, 'images', 'a', 'x.jpg'), 'wb').write(b'x')
    os.makedirs(tmp_path / 'real' / 'deep')
    os.symlink(tmp_path / 'real' / 'deep', tmp_path / 'lists')
    elsewhere = str(tmp_path / 'lists' / 'm.jsonl')
    rep = merge_manifests(out, check_files=True, out=elsewhere)
    assert read_manifest(elsewhere)[0]['output'] == osp.join(out, 'images', 'a', 'x.jpg')
    assert rep['missing_files'] == []


def test_merge_prefers_the_newer_ok_row_and_reports_conflicts(tmp_path, capsys):
    """Two different ok rows of one image (on main: counted as a plain duplicate): reported,
    the newer kept, and ``--strict`` fails."""
    out = str(tmp_path)
    old = write_record(out, 1, [row('a.jpg'), row('b.jpg')], 1_000_000)
    new = write_record(out, 0, [ManifestRow(**dict(row('a.jpg').as_dict(), seed=8,
                                                   output='images/a2.jpg')),
                                row('b.jpg', 'failed')], 2_000_000)
    assert new < old  # by name the newer record comes first
    rep = merge_manifests(out)
    assert (rep['rows'], rep['duplicates'], rep['conflicts']) == (2, 2, ['a.jpg#0'])
    merged = read_manifest(out, status=None, absolute=False)
    assert [(r['key'], r['status'], r['output']) for r in merged] == [
        ('a.jpg', 'ok', 'images/a2.jpg'), ('b.jpg', 'ok', 'images/b.jpg')]
    assert not [f for f in os.listdir(out) if 'partial' in f]
    from helpers import load_tool
    tool = load_tool('merge_manifests')
    assert tool.main([out]) == 0
    assert tool.main([out, '--strict']) == 1
    # the model folder named another way (relative, moved): the same view, no conflict
    write_record(out, 2, [ManifestRow(**dict(row('b.jpg').as_dict(), generator='../g'))],
                 3_000_000)
    assert merge_manifests(out)['conflicts'] == ['a.jpg#0']
    captured = capsys.readouterr()
    assert '"conflicts": 1' in captured.out and 'conflicts: a.jpg#0' in captured.out
    assert '1 images have two different ok rows (kept the newer' in captured.err


def test_sources_folder_and_list(tmp_path):
    (tmp_path / 'x' / 'n01').mkdir(parents=True)
    for name in ('n01/b.jpg', 'n01/a.png', 'c.JPEG', 'skip.txt'):
        (tmp_path / 'x' / name).write_bytes(b'')
    keys = [it.key for it in list_folder(str(tmp_path / 'x'))]
    assert keys == ['c.JPEG', 'n01/a.png', 'n01/b.jpg']
    ann = tmp_path / 'train.txt'
    ann.write_text('n01/b.jpg 3\nn01/a.png 0\n\nc.JPEG\n')
    items = list_file(str(ann), data_root=str(tmp_path / 'x'))
    assert [it.key for it in items] == keys
    assert items[0].path == str(tmp_path / 'x' / 'c.JPEG')


def test_sources_skip_hidden_files_and_symlink_cycles(tmp_path, caplog):
    """As mmengine's listing: no ``.x`` or ``._x`` (macOS resource forks) files, no dangling
    links or other non-files, but the images in hidden folders (MMPretrain's datasets train on
    them: skipped, they had no view); a symlink back to an ancestor is skipped with a warning
    (on main a loop listed 164 keys for 4 images)."""
    root = tmp_path / 'src'
    (root / 'a' / 'deep').mkdir(parents=True)
    (root / '.cache').mkdir()
    for name in ('a/1.jpg', 'a/2.jpg', 'a/deep/3.jpg', '4.jpg', 'a/._1.jpg', 'a/.hidden.jpg',
                 '.cache/5.jpg'):
        (root / name).write_bytes(b'')
    os.symlink('..', root / 'a' / 'deep' / 'loop')  # deep/loop -> a
    os.symlink(str(root), root / 'a' / 'root')  # a/root -> the source root
    # a dangling link and a FIFO are no images (listed, they failed as 'missing file' on every
    # rerun, each time loading the model); a link to an image is one
    os.symlink('nowhere.jpg', root / 'a' / 'dangling.jpg')
    os.mkfifo(root / 'a' / 'pipe.jpg')
    os.symlink('1.jpg', root / 'a' / 'link.jpg')
    with caplog.at_level('WARNING'):
        keys = [it.key for it in list_folder(str(root))]
    assert keys == ['.cache/5.jpg', '4.jpg', 'a/1.jpg', 'a/2.jpg', 'a/deep/3.jpg', 'a/link.jpg']
    from mmpretrain.datasets import CustomDataset  # what training reads (without the loops)
    plain = tmp_path / 'plain'
    shutil.copytree(root, plain, symlinks=True, ignore=lambda d, names: [
        n for n in names if n in ('loop', 'root', 'dangling.jpg', 'pipe.jpg')])
    dataset = CustomDataset(data_root=str(plain), with_label=False, pipeline=[])
    assert sorted(osp.relpath(dataset.get_data_info(i)['img_path'], str(plain))
                  for i in range(len(dataset))) == keys
    assert caplog.text.count('symlink cycle') == 2
    # a config's dataset is listed by MMPretrain, which follows the loop to the OS's limit: a
    # line naming the cycle (it was the bare ELOOP error), not a skip training would not make
    from genview_mm.datasets.image_sources import list_images
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"train_dataloader = dict(dataset=dict(type='CustomDataset', "
                   f"data_root={str(root)!r}, data_prefix='', pipeline=[]))\n")
    with pytest.raises(ValueError) as exc:
        list_images(str(cfg))
    assert str(exc.value) == (
        f'the dataset at train_dataloader.dataset of {cfg} cannot be listed: a symlink cycle '
        f'under its folder ({root / "a" / "root"} links back to a folder above it); MMPretrain '
        'would stop there in training too: remove that link')


def test_sources_mmpretrain_config(tmp_path, photo_dir):
    from genview_mm.datasets.image_sources import list_images
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"train_dataloader = dict(dataset=dict(type='CustomDataset', "
                   f"data_root={photo_dir!r}, data_prefix='', pipeline=[]))\n")
    items = list_images(str(cfg))
    assert [it.key for it in items] == [it.key for it in list_folder(photo_dir)]
    assert len(items) == 10 and items[0].key == 'a/img_0000.jpg'
    assert json.dumps(items[0].key)


def test_a_config_source_with_a_wrong_dataset_key_is_one_line(tmp_path, photo_dir, gen_main,
                                                               merge_main, capsys,
                                                               tiny_unclip_pca, tiny_unclip_path):
    """A misspelt --dataset-key, a key naming no dataset, a dataset that cannot be built: a
    KeyError traceback from both tools (the docs promise status 2 and one line)."""
    from genview_mm.datasets.image_sources import list_images
    cfg = tmp_path / 'cfg.py'
    dataset = f"dict(type='CustomDataset', data_root={photo_dir!r}, data_prefix='', pipeline=[])"
    cfg.write_text(f"train_dataloader = dict(dataset={dataset})\n"
                   f"concat = dict(datasets=[{dataset}])\n"
                   "odd = dict(dataset=dict(type='NoSuchDataset'), batch_size=2)\n")
    assert len(list_images(str(cfg), dataset_key='concat.datasets.0')) == 10  # a list's item
    for key, shown in (
            ('train_dataloader.datset', f"--dataset-key 'train_dataloader.datset': {cfg} has no "
             "'train_dataloader.datset': pass the dotted key of its dataset, e.g. "
             'train_dataloader.dataset'),
            ('val_dataloader.dataset', f"{cfg} has no 'val_dataloader': pass"),
            ('concat.datasets.1', f"{cfg} has no 'concat.datasets.1': pass"),
            ('odd.batch_size', "--dataset-key 'odd.batch_size': that entry of "
             f'{cfg} is not a dataset (a dict with a type)'),
            ('odd.dataset', f'the dataset at odd.dataset of {cfg} cannot be built (KeyError: ')):
        with pytest.raises(ValueError, match=re.escape(shown)):
            list_images(str(cfg), dataset_key=key)
    out = tmp_path / 'out'
    from gen_tool import cmd
    assert gen_main(cmd(str(cfg), tiny_unclip_pca, tiny_unclip_path, str(out), '--dataset-key',
                        'train_dataloader.datset')[2:]) == 2
    err = capsys.readouterr().err
    assert err.startswith("generate_views.py: error: --dataset-key 'train_dataloader.datset': ")
    assert err.count('\n') == 1 and not out.exists()
    (out / 'shards').mkdir(parents=True)
    assert merge_main([str(out), '--source', str(cfg), '--dataset-key', 'val_dataloader.x']) == 2
    err = capsys.readouterr().err
    assert err.startswith("merge_manifests.py: error: --dataset-key 'val_dataloader.x': ")
    assert err.count('\n') == 1


def test_list_options_a_source_ignores_are_refused(tmp_path, photo_dir, merge_main, capsys):
    """--data-root with a folder, --dataset-key with a folder or list: ignored, so the images
    of another dataset than the one meant were listed (and generated, fitted or merged)."""
    from genview_mm.datasets.image_sources import list_images
    listing = tmp_path / 'list.txt'
    listing.write_text('a/img_0000.jpg\n')
    with pytest.raises(ValueError, match='^--data-root applies to a list file or a config, but '):
        list_images(photo_dir, data_root=str(tmp_path))
    for source in (photo_dir, str(listing)):
        with pytest.raises(ValueError, match=r'^--dataset-key applies to an MMPretrain config '):
            list_images(source, data_root=None, dataset_key='train_dataloader.dataset')
    assert [it.key for it in list_images(str(listing), data_root=photo_dir)] == ['a/img_0000.jpg']
    assert len(list_images(photo_dir)) == 10
    (tmp_path / 'out' / 'shards').mkdir(parents=True)
    assert merge_main([str(tmp_path / 'out'), '--source', photo_dir, '--data-root',
                       str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('merge_manifests.py: error: --data-root applies to a list file or a '
                          'config, but ') and err.count('\n') == 1
    assert not osp.exists(tmp_path / 'out' / 'manifest.jsonl')
    for flag in ('--data-root', '--dataset-key'):  # without --source: merged, not a word
        with pytest.raises(SystemExit) as exit_:
            merge_main([str(tmp_path / 'out'), flag, str(tmp_path)])
        assert exit_.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(  # prog: pytest's argv[0]
            f'.py: error: {flag} describes --source, which is not given: pass the --source of '
            'generate_views.py too (to report images without a row), or drop it')
    assert not osp.exists(tmp_path / 'out' / 'manifest.jsonl')


def test_a_config_source_that_does_not_parse_is_one_line(tmp_path, gen_main, merge_main, capsys,
                                                         tiny_unclip_pca, tiny_unclip_path):
    """A config with a syntax error or an undefined name: a SyntaxError / NameError traceback
    (exit 1) from both tools, and --check-args (run by slurm_generate.sh before sbatch) passed
    it, so every array task failed after queueing. One line, exit 2, before any model."""
    from gen_tool import cmd
    for text, said in (('train_dataloader = dict(dataset=dict(type="CustomDataset"\n',
                        'SyntaxError'), ('x = undefined_name\n', 'NameError')):
        cfg = tmp_path / 'bad.py'
        cfg.write_text(text)
        out = tmp_path / 'out'
        for extra in ([], ['--check-args']):
            assert gen_main(cmd(str(cfg), tiny_unclip_pca, tiny_unclip_path, str(out))[2:]
                            + extra) == 2
            err = capsys.readouterr().err
            assert err.startswith(f'generate_views.py: error: {cfg} cannot be read as an '
                                  f'MMPretrain config ({said}'), err
            assert err.count('\n') == 1 and not out.exists()
        (out / 'shards').mkdir(parents=True)
        assert merge_main([str(out), '--source', str(cfg)]) == 2
        assert capsys.readouterr().err.startswith(f'merge_manifests.py: error: {cfg} cannot be '
                                                  'read as an MMPretrain config')
        shutil.rmtree(out)


def test_merge_while_a_shard_finishes_loses_no_rows(tmp_path, monkeypatch):
    """A worker finishes a shard by writing its record, then removing its journal. A merge
    running meanwhile listed the journal and found it gone (FileNotFoundError, exit 2), or
    listed the records before the new one and the journals after the old one was gone (its
    rows silently left out, exit 0)."""
    from genview_mm.apis.generation import shards
    out = str(tmp_path)
    os.makedirs(osp.join(out, 'shards'))
    write_manifest(shard_path(out, 0), [row('a.jpg')])
    write_manifest(shard_path(out, 1, 'journal'), [row('b.jpg')])

    def finish():  # what the worker does at the end of shard 1
        if osp.exists(shard_path(out, 1, 'journal')):
            write_manifest(shard_path(out, 1), [row('b.jpg')])
            os.remove(shard_path(out, 1, 'journal'))
    listed = shards.row_files(out)
    finish()
    monkeypatch.setattr(shards, 'row_files', lambda _: listed)  # listed before it finished
    assert merge_manifests(out)['rows'] == 2
    monkeypatch.undo()
    os.remove(shard_path(out, 1))
    write_manifest(shard_path(out, 1, 'journal'), [row('b.jpg')])
    real_glob = shards.glob.glob

    def glob_then_finish(pattern):  # the shard finishes between the two listings
        found = real_glob(pattern)
        finish()
        return found
    monkeypatch.setattr(shards.glob, 'glob', glob_then_finish)
    report = merge_manifests(out)
    monkeypatch.undo()
    assert [r['key'] for r in read_manifest(report['path'])] == ['a.jpg', 'b.jpg']


def test_merge_elsewhere_through_links_resolves_from_any_path(tmp_path):
    """``--out`` through a linked folder: the outputs (``../gen/...``) were spelled from the
    link's path and climbed to the wrong folder when the manifest was read through its real
    path; spelled from the real folders now."""
    real = tmp_path / 'real'
    out = str(real / 'gen')
    write_record(out, 0, [row('a/x.jpg')], 1_000_000)
    os.makedirs(osp.join(out, 'images', 'a'))
    open(osp.join(out, 'images', 'a', 'x.jpg'), 'wb').write(b'x')
    (real / 'lists').mkdir()
    (tmp_path / 'lists_link').symlink_to(real / 'lists')
    (tmp_path / 'gen_link').symlink_to(real / 'gen')
    rep = merge_manifests(str(tmp_path / 'gen_link'), check_files=True,
                          out=str(tmp_path / 'lists_link' / 'm.jsonl'))
    assert rep['missing_files'] == []
    for spelling in (tmp_path / 'lists_link' / 'm.jsonl', real / 'lists' / 'm.jsonl'):
        assert read_manifest(str(spelling))[0]['output'] == osp.join(out, 'images', 'a',
                                                                     'x.jpg'), spelling


def test_merge_tool_out_folder_empty_out_and_variations(tmp_path, capsys):
    """``--out newdir/`` was a raw 'Not a directory' rename error that left newdir/ behind; a
    folder gets manifest.jsonl inside, as import_views.py does. ``--out ''`` (an unset
    variable) and ``--num-variations 0`` or ``-3`` are usage errors: -3 listed no image as
    missing (exit 0)."""
    from helpers import load_tool
    out = str(tmp_path / 'gen')
    write_record(out, 0, [row('a.jpg')], 1_000_000)
    tool = load_tool('merge_manifests')
    assert tool.main([out, '--out', str(tmp_path / 'newdir') + '/']) == 0
    assert [r['key'] for r in read_manifest(str(tmp_path / 'newdir' / 'manifest.jsonl'))] == \
        ['a.jpg']
    (tmp_path / 'src').mkdir()
    for name in ('a.jpg', 'b.jpg'):  # listed by name: the contents are not read
        (tmp_path / 'src' / name).write_bytes(b'\xff\xd8')
    for bad, said in ((['--out', ''], '--out is empty'),
                      (['--num-variations', '0'], 'must be >= 1, got 0'),
                      (['--num-variations', '-3'], 'must be >= 1, got -3')):
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            tool.main([out, '--source', str(tmp_path / 'src'), *bad])
        assert exc.value.code == 2 and said in capsys.readouterr().err
    assert tool.main([out, '--source', str(tmp_path / 'src')]) == 1  # b.jpg has no row


def test_a_source_key_inside_the_root_may_start_with_two_dots(tmp_path):
    """'..hidden/x.jpg' and '...jpg' lie inside the root, but a name starting with '..' was
    read as outside it: the key (and so the seed, the output name and the manifest match) was
    built from the absolute path."""
    from genview_mm.structures.manifest import source_key
    root = str(tmp_path / 'root')
    assert source_key(osp.join(root, '..hidden', 'x.jpg'), root) == '..hidden/x.jpg'
    assert source_key(osp.join(root, '...jpg'), root) == '...jpg'
    assert source_key(str(tmp_path / 'other' / 'y.jpg'), root) == \
        str(tmp_path / 'other' / 'y.jpg').lstrip('/')
    assert source_key('/data/x.jpg', None) == 'data/x.jpg'  # the docstring's promise


def test_keys_of_a_config_source_without_a_root_do_not_follow_the_cwd(tmp_path, photo_dir,
                                                                      monkeypatch):
    """A config whose dataset lists absolute paths without a data_root keyed its images
    relative to the folder the tool ran from: a rerun from elsewhere generated every image
    again under other keys, seeds and names. They are keyed by their absolute paths."""
    from genview_mm.datasets.image_sources import list_images
    ann = tmp_path / 'ann.txt'
    ann.write_text(''.join(f'{photo_dir}/a/img_{i:04d}.jpg 0\n' for i in range(2)))
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"train_dataloader = dict(dataset=dict(type='CustomDataset', "
                   f"ann_file={str(ann)!r}, pipeline=[]))\n")
    keys = []
    for cwd in (tmp_path, photo_dir):
        monkeypatch.chdir(cwd)
        keys.append([it.key for it in list_images(str(cfg))])
    expected = [f'{photo_dir}/a/img_{i:04d}.jpg'.lstrip('/') for i in range(2)]
    assert keys == [expected, expected]
    # relative entries are read from the current folder (by MMPretrain too): keyed as written
    ann.write_text('a/img_0000.jpg 0\n')
    assert [it.key for it in list_images(str(cfg))] == ['a/img_0000.jpg']


def test_two_images_of_one_key_are_refused(tmp_path, photo_dir, monkeypatch):
    """'x.jpg' under --data-root and '/x.jpg' outside it (its key: the absolute path without
    its slash) shared one key: one output file, one seed and one row (naming one source with
    the other's foreground ratio) for two images. Refused, naming both."""
    from genview_mm.datasets.image_sources import list_images
    root = tmp_path / 'root'
    inner = root / photo_dir.lstrip('/') / 'a'
    inner.mkdir(parents=True)
    (inner / 'img_0000.jpg').write_bytes(open(f'{photo_dir}/a/img_0000.jpg', 'rb').read())
    listing = tmp_path / 'list.txt'
    listing.write_text(f'{photo_dir.lstrip("/")}/a/img_0000.jpg\n{photo_dir}/a/img_0000.jpg\n')
    first, second = sorted((str(inner / 'img_0000.jpg'), f'{photo_dir}/a/img_0000.jpg'))
    with pytest.raises(ValueError, match=re.escape(
            f"{first!r} and {second!r} have the same key "
            f"{photo_dir.lstrip('/') + '/a/img_0000.jpg'!r} (paths relative to {root}, else "
            'absolute): list one of them')):
        list_images(str(listing), data_root=str(root))


def test_a_manifest_with_a_byte_order_mark_reads(tmp_path):
    """A manifest saved by a Windows editor starts with a BOM: its first row was 'corrupt'."""
    from genview_mm.structures.manifest import ManifestRow, read_rows
    rows = [ManifestRow(f'/s/{n}', n, 0, f'o/{n}') for n in ('a.jpg', 'b.jpg')]
    path = tmp_path / 'manifest.jsonl'
    path.write_bytes(b'\xef\xbb\xbf' + ''.join(r.to_line() for r in rows).encode())
    assert [r.key for r in read_rows(str(path))] == ['a.jpg', 'b.jpg']


def test_a_missing_manifest_names_the_tools_that_make_one(tmp_path):
    """Training's own error named only generate_views.py and merge_manifests.py; a user who
    pointed genview.manifest at the released views' folder needs import_views.py."""
    from genview_mm.datasets.manifest_index import ManifestIndex
    (tmp_path / 'views').mkdir()
    for read in (lambda: list(read_rows(str(tmp_path / 'views'))),
                 lambda: ManifestIndex(str(tmp_path / 'views'))):
        with pytest.raises(FileNotFoundError) as exc:
            read()
        said = str(exc.value)
        assert said.startswith(f"Manifest not found: '{tmp_path / 'views' / 'manifest.jsonl'}'")
        assert said.endswith('for views made elsewhere (the released ones), write one with '
                             'tools/import_views.py VIEWS_ROOT.')
