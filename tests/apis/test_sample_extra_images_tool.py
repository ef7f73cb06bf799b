"""tools/sample_extra_images.py: writes the list and its provenance, shows progress, and on too
few images says how many there are, writes nothing and exits with status 2."""
import json
import os
import os.path as osp

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
    assert 'ImageNet: 1 file names, 1 distinct sizes' in captured.err
    assert '8 candidates, 1 excluded by name, 7 eligible by name' in captured.err
    assert sorted(os.listdir(tmp / 'meta')) == ['extra.txt', 'extra.txt.json']


def test_too_few_images_writes_nothing_and_exits_2(folders, capsys):
    imagenet, dump, tmp = folders
    out = str(tmp / 'extra.txt')
    with pytest.raises(SystemExit) as exit_info:
        run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 7,
                   '--out', out)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert 'has 6 eligible images (8 image files, 1 excluded by name, 1 by content' in err
    assert 'pass --num 6 or --allow-fewer (nothing was written)' in err
    assert 'Traceback' not in err and not osp.exists(out)
    run_script('sample_extra_images.py', dump, '--imagenet', imagenet, '--num', 7, '--out', out,
               '--allow-fewer')
    assert len(open(out).read().splitlines()) == 6


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
    assert 'ImageNet train folder' in capsys.readouterr().err
