"""The views manifest: writer/reader round trip, a truncated or corrupt line, merging parts
(duplicates, the newest ok row wins, missing images and files), and the source listings."""
import json

import pytest

from genview_mm.generation import read_manifest
from genview_mm.generation.manifest import FIELDS, ManifestWriter, iter_rows, part_path
from genview_mm.generation.merge import merge_manifests
from genview_mm.generation.sources import ImageItem, list_file, list_folder


def row(key, status='ok', variation=0, level=100):
    ok = status == 'ok'
    return dict(source=f'/data/{key}', key=key, variation=variation,
                output=f'images/{key}' if ok else None, noise_level=level if ok else None,
                fg_ratio=0.3 if ok else None, seed=7, generator='g',
                clip_sim=0.9 if ok else None, status=status, reason='' if ok else 'bad')


def test_writer_reader_round_trip_and_status_filter(tmp_path):
    path = str(tmp_path / 'm.jsonl')
    with ManifestWriter(path) as w:
        w.write(row('a.jpg'))
        w.write(row('b.jpg', 'failed'))
    rows = read_manifest(path)
    assert [r['key'] for r in rows] == ['a.jpg']
    assert rows[0]['output'] == str(tmp_path / 'images' / 'a.jpg')
    assert set(rows[0]) == set(FIELDS)
    assert len(read_manifest(path, status=None)) == 2
    assert read_manifest(path, status='failed')[0]['reason'] == 'bad'
    assert read_manifest(str(tmp_path / 'm.jsonl'), absolute=False)[0]['output'] == 'images/a.jpg'
    with pytest.raises(KeyError, match='lacks'):
        ManifestWriter(path).write({'key': 'x'})


def test_truncated_last_line_ignored_then_repaired(tmp_path):
    path = str(tmp_path / 'm.jsonl')
    with open(path, 'w') as f:
        f.write(json.dumps(row('a.jpg')) + '\n' + json.dumps(row('b.jpg'))[:25])
    assert [r['key'] for r in iter_rows(path)] == ['a.jpg']
    with ManifestWriter(path) as w:  # appending first drops the half line
        w.write(row('c.jpg'))
    assert [r['key'] for r in iter_rows(path)] == ['a.jpg', 'c.jpg']


def test_corrupt_middle_line_raises(tmp_path):
    path = tmp_path / 'm.jsonl'
    path.write_text('{"broken\n' + json.dumps(row('a.jpg')) + '\n')
    with pytest.raises(ValueError, match='corrupt manifest line'):
        list(iter_rows(str(path)))


def test_missing_manifest_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match='merge_manifests.py'):
        read_manifest(str(tmp_path))


def test_merge_dedups_sorts_and_reports_missing(tmp_path):
    out = str(tmp_path)
    with ManifestWriter(part_path(out, 0, 2)) as w:
        w.write(row('c.jpg', 'failed'))
        w.write(row('a.jpg'))
    with ManifestWriter(part_path(out, 1, 2)) as w:
        w.write(row('c.jpg'))  # a retry succeeded
        w.write(row('a.jpg'))  # duplicate from a resumed run
        w.write(row('d.jpg', 'failed'))
    (tmp_path / 'images').mkdir()
    (tmp_path / 'images' / 'a.jpg').write_bytes(b'x')
    items = [ImageItem(f'/data/{k}', k) for k in ('a.jpg', 'b.jpg', 'c.jpg', 'd.jpg')]
    rep = merge_manifests(out, items, check_files=True)
    assert (rep['rows'], rep['ok'], rep['failed'], rep['duplicates']) == (3, 2, 1, 2)
    assert rep['missing'] == ['b.jpg#0']
    assert rep['missing_files'] == ['images/c.jpg']
    merged = read_manifest(out, status=None)
    assert [(r['key'], r['status']) for r in merged] == [
        ('a.jpg', 'ok'), ('c.jpg', 'ok'), ('d.jpg', 'failed')]


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


def test_sources_mmpretrain_config(tmp_path, photo_dir):
    from genview_mm.generation.sources import list_images
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(f"train_dataloader = dict(dataset=dict(type='CustomDataset', "
                   f"data_root={photo_dir!r}, data_prefix='', pipeline=[]))\n")
    items = list_images(str(cfg))
    assert [it.key for it in items] == [it.key for it in list_folder(photo_dir)]
    assert len(items) == 10 and items[0].key == 'a/img_0000.jpg'


def test_merge_prefers_the_newer_ok_row_across_parts(tmp_path):
    """A rerun with another world size redid a lost output: its part sorts first by name but
    was written last, and its row wins."""
    import os
    out = str(tmp_path)
    old, new = part_path(out, 0, 2), part_path(out, 0, 1)
    assert new < old  # by name the newer part comes first
    with ManifestWriter(old) as w:
        w.write(dict(row('a.jpg'), clip_sim=0.1))
        w.write(dict(row('b.jpg'), clip_sim=0.1))
    with ManifestWriter(new) as w:
        w.write(dict(row('a.jpg'), clip_sim=0.2))
        w.write(row('b.jpg', 'failed'))  # a failed retry does not replace an ok row
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(new, (2_000_000, 2_000_000))
    rep = merge_manifests(out)
    assert (rep['rows'], rep['duplicates']) == (2, 2)
    merged = read_manifest(out, status=None)
    assert [(r['key'], r['status'], r['clip_sim']) for r in merged] == [
        ('a.jpg', 'ok', 0.2), ('b.jpg', 'ok', 0.1)]
    assert not [f for f in os.listdir(out) if 'partial' in f]
