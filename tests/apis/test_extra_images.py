"""The extra-image sampler (genview_mm.apis.extra_images): which files are candidates, the
seeded reservoir, ImageNet exclusion by name and by content, too few images, memory."""
import json
import os
import os.path as osp
import random
import tracemalloc

import pytest

from genview_mm.apis.extra_images import (
    ImageNetIndex,
    KeyedReservoir,
    NotEnoughImages,
    count_list_images,
    item_key,
    sample_extra_images,
    write_image_list,
)
from genview_mm.apis.extra_images.candidates import iter_folder, iter_list


def write(path, data: bytes) -> str:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    return path


@pytest.fixture
def imagenet(tmp_path):
    """A fake ImageNet train folder: 30 files of distinct bytes and sizes 200..229."""
    root = tmp_path / 'imagenet' / 'train'
    for i in range(30):
        write(str(root / f'n0{i % 3}' / f'n0{i % 3}_{i}.JPEG'), bytes([i]) * (200 + i))
    return str(root)


def test_folder_walk_takes_images_and_skips_dot_files(tmp_path):
    for rel in ('a/1.jpg', 'a/b/2.PNG', 'c.webp', 'a/notes.txt', '.hidden.jpg', 'a/.x.jpg',
                '.cache/3.jpg', 'a/.git/4.jpg'):
        write(str(tmp_path / 'src' / rel), b'x')
    found = sorted(iter_folder(str(tmp_path / 'src'), str(tmp_path / 'src')))
    assert found == ['a/1.jpg', 'a/b/2.PNG', 'c.webp']
    # relative to a data root above the folder
    assert sorted(iter_folder(str(tmp_path / 'src' / 'a'), str(tmp_path))) == [
        'src/a/1.jpg', 'src/a/b/2.PNG']
    with pytest.raises(ValueError, match='not inside the data root'):
        list(iter_folder(str(tmp_path / 'src'), str(tmp_path / 'src' / 'a')))


def test_names_starting_with_a_hash_or_a_space_are_listed_and_accepted(tmp_path):
    """'#tag.jpg' and ' lead.jpg' are file names MMPretrain reads verbatim from a
    with_label=False list; the preflight refused the sampler's own list for them (a '#' line or
    spaces around a path are refused only when they name no file)."""
    for rel in ('#tag1.jpg', ' lead.jpg', 'ok.jpg', 'a/#inner.jpg'):
        write(str(tmp_path / 'src' / rel), b'x' * 3)
    report = sample_extra_images(str(tmp_path / 'src'), 4, None)
    assert sorted(report.paths) == sorted([' lead.jpg', '#tag1.jpg', 'a/#inner.jpg', 'ok.jpg'])
    lst = str(tmp_path / 'l.txt')
    write_image_list(report.paths, lst)
    assert count_list_images(lst, str(tmp_path / 'src')) == (4, None)
    with open(lst, 'a') as f:
        f.write('# a comment\n')  # names no file: refused
    count, problem = count_list_images(lst, str(tmp_path / 'src'))
    assert count == 5 and problem == "line 5 ('# a comment') is a comment"


def test_names_a_list_cannot_hold_are_skipped_and_counted(tmp_path, caplog):
    """A file name that is not UTF-8 ended the whole run after the scan (hours on a large
    source) with "'utf-8' codec can't encode character '\\udce9'", naming no file."""
    src = os.fsencode(str(tmp_path / 'src'))
    os.makedirs(src + b'/caf\xe9')
    for name in (b'ok.jpg', b'caf\xe9.jpg', b'caf\xe9/inside.jpg', b'two\nlines.jpg'):
        with open(src + b'/' + name, 'wb') as f:
            f.write(b'x')
    with caplog.at_level('WARNING'):
        found = sorted(iter_folder(str(tmp_path / 'src'), str(tmp_path)))
    assert found == ['src/ok.jpg']
    (message,) = caplog.messages  # one warning per walk, whatever the order of the names
    assert message.startswith(f"{tmp_path / 'src'}: skipped 3 names that a list cannot hold (a "
                              'line break, or bytes that are not UTF-8), e.g. ')
    assert message.endswith(': rename them to include them')
    report = sample_extra_images(str(tmp_path / 'src'), 1, None, str(tmp_path), seed=0)
    assert report.paths == ['src/ok.jpg']


def test_list_source_drops_labels_comments_and_non_images(tmp_path):
    lst = tmp_path / 'list.txt'
    lst.write_text(f'# header\nx/1.jpg 17\n\n./x/2.jpeg\nx/notes.txt\nx/.3.jpg\n'
                   f'{tmp_path}/y/4.png\nwith space/5.jpg\n')
    assert list(iter_list(str(lst), str(tmp_path))) == ['x/1.jpg', 'x/2.jpeg', 'y/4.png',
                                                         'with space/5.jpg']
    lst.write_text('../outside/6.jpg\n')
    with pytest.raises(ValueError, match='points outside the data root'):
        list(iter_list(str(lst), str(tmp_path)))


def test_a_list_saved_with_a_byte_order_mark_draws_as_the_plain_list(tmp_path):
    """A list saved as UTF-8 with BOM (an editor's 'UTF-8 BOM'): the mark went into its first
    path, whose image was then never drawn and was counted as missing."""
    names = [f'x/{i}.jpg' for i in range(5)]
    for name in names:
        write(str(tmp_path / name), b'x')
    for first in (names[0], f'{tmp_path}/{names[0]}'):  # relative or absolute
        write(str(tmp_path / 'bom.txt'), '\n'.join([first] + names[1:]).encode('utf-8-sig'))
        assert list(iter_list(str(tmp_path / 'bom.txt'), str(tmp_path))) == names
        report = sample_extra_images(str(tmp_path / 'bom.txt'), 5, None)
        assert (report.paths, report.unreadable) == (names, 0)
    write(str(tmp_path / 'bom.txt'), '# header x.jpg\nx/1.jpg\n'.encode('utf-8-sig'))
    assert list(iter_list(str(tmp_path / 'bom.txt'), str(tmp_path))) == ['x/1.jpg']


def test_reservoir_keeps_the_smallest_keys_whatever_the_order():
    items = [f'img/{i}.jpg' for i in range(500)]
    expected = sorted(items, key=lambda s: item_key(s, 3))[:40]
    for order in range(3):
        random.Random(order).shuffle(items)
        reservoir = KeyedReservoir(40, seed=3)
        for item in items:
            reservoir.offer(item)
        assert reservoir.overflowed and reservoir.offered == 500
        assert reservoir.ranked() == expected
    other = KeyedReservoir(40, seed=4)
    for item in items:
        other.offer(item)
    assert len(set(other.ranked()) & set(expected)) < 20  # another seed, another sample


def test_reservoir_is_roughly_uniform():
    """Each of 20 items lands in a 5-item sample with probability 1/4 (over 400 seeds)."""
    counts = dict.fromkeys(range(20), 0)
    for seed in range(400):
        reservoir = KeyedReservoir(5, seed)
        for i in range(20):
            reservoir.offer(str(i))
        for item in reservoir.ranked():
            counts[int(item)] += 1
    assert all(60 <= c <= 140 for c in counts.values()), counts  # mean 100, sd ~8.7


def test_folder_walk_follows_links_to_folders_once(tmp_path):
    write(str(tmp_path / 'dump' / 'in21k' / 'a.jpg'), b'x')
    os.symlink(tmp_path / 'dump', tmp_path / 'dump' / 'in21k' / 'loop')  # a cycle
    write(str(tmp_path / 'laion' / 'b.jpg'), b'y')
    os.symlink(tmp_path / 'laion', tmp_path / 'dump' / 'laion')  # a dump linked in
    assert sorted(iter_folder(str(tmp_path / 'dump'), str(tmp_path / 'dump'))) == [
        'in21k/a.jpg', 'laion/b.jpg']


def test_links_inside_the_source_are_not_walked_twice(tmp_path):
    """A link to a folder (or file) inside the source itself: the first path to reach the
    folder won, so the sample's paths, and through them its hashes and images, depended on the
    listing order (another file system); a linked file was offered twice."""
    for i in range(6):
        write(str(tmp_path / 'o1' / 'real' / f'img{i}.jpg'), bytes([i]))
    os.symlink(tmp_path / 'o1' / 'real', tmp_path / 'o1' / 'alias')
    os.symlink(tmp_path / 'o1' / 'real' / 'img0.jpg', tmp_path / 'o1' / 'real' / 'copy.jpg')
    root = str(tmp_path / 'o1')
    assert sorted(iter_folder(root, root)) == [f'real/img{i}.jpg' for i in range(6)]


class _Listing:
    """``os.scandir``'s entries of a folder in a given order (a context manager, closable)."""

    def __init__(self, entries):
        self.entries = entries

    def __enter__(self):
        return iter(self.entries)

    def __exit__(self, *exc):
        return False

    def close(self):
        pass


@pytest.mark.parametrize('target', ['ext', 'ext/sub'])
def test_two_links_to_one_folder_elsewhere_give_one_path_whatever_the_order(
        tmp_path, monkeypatch, target):
    """Two links to one folder outside the source (or to it and to a folder in it): the link
    the walk reached first won, so the paths, and with them the sample, depended on the
    listing order (another file system, a copy of the dump)."""
    for i in range(4):
        write(str(tmp_path / 'ext' / 'sub' / f'img{i}.jpg'), bytes([i]))
    os.makedirs(tmp_path / 'dump')
    os.symlink(tmp_path / 'ext', tmp_path / 'dump' / 'a')
    os.symlink(tmp_path / target, tmp_path / 'dump' / 'b')
    root, real = str(tmp_path / 'dump'), os.scandir

    def listing(path, backwards):
        with real(path) as entries:
            return _Listing(sorted(entries, key=lambda e: e.name, reverse=backwards))

    walks = []
    for backwards in (False, True):
        monkeypatch.setattr(os, 'scandir', lambda path: listing(path, backwards))
        walks.append(sorted(iter_folder(root, root)))
    assert walks[0] == walks[1] and len(walks[0]) == 4


@pytest.mark.parametrize('link', ['symlink', 'hard link'])
def test_a_file_under_two_paths_is_drawn_once(tmp_path, link):
    """Two links in the source to one image file outside it (or two hard links) were two
    candidates: the same picture could be listed twice. It is listed once, under its path of
    smaller key (not the walk's first), and counted as listed twice."""
    for i in range(4):
        write(str(tmp_path / 'dump' / f'{i}.jpg'), bytes([i]) * (10 + i))
    picture = write(str(tmp_path / 'elsewhere' / 'x.jpg'), b'x' * 50)
    os.makedirs(tmp_path / 'dump' / 'sub')
    make = os.symlink if link == 'symlink' else os.link
    make(picture, tmp_path / 'dump' / 'a.jpg')
    make(picture, tmp_path / 'dump' / 'sub' / 'b.jpg')
    kept = set()
    for seed in range(5):
        first = min(['a.jpg', 'sub/b.jpg'], key=lambda path: item_key(path, seed))
        with pytest.raises(NotEnoughImages, match=r'has 5 eligible images \(6 image files, .*, '
                                                  r'1 listed twice\)') as error:
            sample_extra_images(str(tmp_path / 'dump'), 6, None, seed=seed)
        report = error.value.report
        assert report.paths == sorted([f'{i}.jpg' for i in range(4)] + [first])
        assert (report.candidates, report.duplicates, report.unreadable) == (6, 1, 0)
        kept.add(first)
    assert kept == {'a.jpg', 'sub/b.jpg'}  # not the walk's first: seed 4 keeps sub/b.jpg


def test_a_broken_link_in_imagenet_still_excludes_its_name(tmp_path):
    """An ImageNet file that is a link to a missing file (a copy being restored, an unmounted
    share) was skipped by the walk, so a candidate of that name was not excluded. With the
    content check such files are refused: their bytes were skipped in silence, and a copy of
    them under another name (val's, in ImageNet-21K) was drawn, the record saying the
    contents were checked."""
    write(str(tmp_path / 'train' / 'n01' / 'n01_0.JPEG'), b'x')
    write(str(tmp_path / 'val' / 'v_0.JPEG'), b'v')
    for name in ('v_1.JPEG', 'v_2.JPEG'):
        os.symlink(tmp_path / 'gone' / name, tmp_path / 'val' / name)
    os.symlink(tmp_path / 'gone' / 'n01_77.JPEG', tmp_path / 'train' / 'n01' / 'n01_77.JPEG')
    roots = [str(tmp_path / 'train'), str(tmp_path / 'val')]
    with pytest.raises(ValueError) as exc:
        ImageNetIndex.from_folders(roots)
    assert str(exc.value) == (
        f"3 ImageNet files are links to missing files (1 under {roots[0]}, e.g. "
        f"{tmp_path / 'train' / 'n01' / 'n01_77.JPEG'}): their bytes cannot be compared with the "
        'extra images; mount or restore them, or pass --names-only to exclude ImageNet by file '
        'name only')
    index = ImageNetIndex.from_folders([str(tmp_path / 'train')], with_sizes=False)
    assert not index.checks_content
    assert index.has_name('n01_77.JPEG') and index.has_name('n01_0.JPEG')
    write(str(tmp_path / 'dump' / 'n01_77.JPEG'), b'y')
    write(str(tmp_path / 'dump' / 'other.jpg'), b'z')
    os.symlink(tmp_path / 'gone' / 'c.jpg', tmp_path / 'dump' / 'c.jpg')  # no candidate
    report = sample_extra_images(str(tmp_path / 'dump'), 1, index)
    assert report.paths == ['other.jpg'] and report.excluded_by_name == 1


def test_a_list_skips_images_under_dot_folders_as_a_folder_walk_does(tmp_path):
    write(str(tmp_path / '.thumbs' / 't.jpg'), b'x')
    write(str(tmp_path / 'x' / 'p.jpg'), b'y')
    (tmp_path / 'list.txt').write_text('.thumbs/t.jpg\nx/./p.jpg\nx/.cache/q.jpg\n')
    assert list(iter_list(str(tmp_path / 'list.txt'), str(tmp_path))) == ['x/p.jpg']
    assert sorted(iter_folder(str(tmp_path), str(tmp_path))) == ['x/p.jpg']


def test_a_list_of_absolute_paths_under_a_dot_folder_root_keeps_them(tmp_path):
    """Only the dot-folders under the data root count: a root in ~/.cache (an img2dataset or
    Hugging Face download) listed with absolute paths drew nothing ('no eligible images')."""
    root = tmp_path / '.cache' / 'laion'
    for rel in ('s/1.jpg', 's/2.jpg', '.trash/3.jpg'):
        write(str(root / rel), b'x')
    (root / 'list.txt').write_text(''.join(f'{root / r}\n' for r in
                                           ('s/1.jpg', 's/2.jpg', '.trash/3.jpg')))
    assert list(iter_list(str(root / 'list.txt'), str(root))) == ['s/1.jpg', 's/2.jpg']
    assert sorted(iter_folder(str(root), str(root))) == ['s/1.jpg', 's/2.jpg']
    assert sample_extra_images(str(root / 'list.txt'), 2, None).paths == ['s/1.jpg', 's/2.jpg']


def test_a_path_listed_twice_is_drawn_once(tmp_path):
    lst = tmp_path / 'list.txt'
    names = [f'{i}.jpg' for i in range(150)]
    for name in names:
        write(str(tmp_path / name), b'x')
    lst.write_text(''.join(n + '\n' for n in names) * 2)  # every path twice
    report = sample_extra_images(str(lst), 150, None)  # 250 places: ~125 distinct paths
    assert report.paths == sorted(names)
    assert report.passes == 2 and report.candidates == 300
    with pytest.raises(NotEnoughImages, match=r'has 150 eligible .* 150 listed twice\), fewer'):
        sample_extra_images(str(lst), 151, None)


def test_sample_is_deterministic_and_independent_of_list_order(tmp_path):
    names = [f'd{i % 7}/{i}.jpg' for i in range(300)]
    for name in names:
        write(str(tmp_path / 'src' / name), b'x')
    lst = tmp_path / 'shuffled.txt'
    shuffled = names[:]
    random.Random(1).shuffle(shuffled)
    lst.write_text(''.join(n + '\n' for n in shuffled))

    def draw(source, seed, **kw):
        return sample_extra_images(source, 50, None, data_root=str(tmp_path / 'src'),
                                   seed=seed, **kw).paths

    first = draw(str(tmp_path / 'src'), 0)
    assert len(first) == 50 == len(set(first)) and first == sorted(first)
    assert set(first) <= set(names)
    assert draw(str(tmp_path / 'src'), 0) == first
    assert draw(str(lst), 0) == first  # a list in another order: the same sample
    assert draw(str(tmp_path / 'src'), 1) != first


def test_exclusion_by_name_and_by_content(tmp_path, imagenet):
    src = tmp_path / 'extra'
    write(str(src / 'a' / 'n01_4.JPEG'), b'other bytes, ImageNet name')  # excluded: name
    write(str(src / 'a' / 'n01_7.png'), b're-encoded, other extension')  # excluded: name (stem)
    with open(osp.join(imagenet, 'n02', 'n02_5.JPEG'), 'rb') as f:
        write(str(src / 'b' / 'renamed.jpg'), f.read())  # excluded: same bytes as n02_5
    write(str(src / 'b' / 'same_size.jpg'), b'\xff' * 205)  # size of n02_5, other bytes: kept
    for i in range(20):
        write(str(src / 'c' / f'{i}.jpg'), b'\x01' * (10 + i))  # sizes ImageNet has not
    index = ImageNetIndex.from_folders([imagenet])
    assert all(index.has_name(n) for n in ('n01_4.JPEG', 'n01_4.jpeg', 'N01_4.jpg', 'n01_4.png'))
    assert not any(index.has_name(n) for n in ('n01_40.JPEG', 'n01_4.JPEG.png'))
    report = sample_extra_images(str(src), 21, index)
    assert 'a/n01_4.JPEG' not in report.paths and 'b/renamed.jpg' not in report.paths
    assert 'a/n01_7.png' not in report.paths  # a re-encoded copy kept ImageNet's name only
    assert 'b/same_size.jpg' in report.paths and len(report.paths) == 21
    assert (report.candidates, report.excluded_by_name, report.excluded_by_content) == (24, 2, 1)
    assert report.hashed == 2  # only the two files whose size is an ImageNet file's
    names_only = sample_extra_images(str(src), 22, ImageNetIndex.from_folders([imagenet], False))
    assert 'b/renamed.jpg' in names_only.paths and names_only.hashed == 0


def test_every_folder_given_is_excluded(tmp_path, imagenet):
    """train/ and val/: a copy of a val image under a 21K name is excluded by its bytes, and each
    folder must hold images."""
    val = write(str(tmp_path / 'imagenet' / 'val' / 'ILSVRC2012_val_00000001.JPEG'), b'v' * 300)
    for i in range(5):
        write(str(tmp_path / 'extra' / f'{i}.jpg'), b'\x02' * (10 + i))
    with open(val, 'rb') as f:
        write(str(tmp_path / 'extra' / 'n09_7.jpg'), f.read())
    both = ImageNetIndex.from_folders([imagenet, osp.dirname(val)])
    assert both.has_name('ILSVRC2012_val_00000001.png') and both.has_name('n01_4.JPEG')
    report = sample_extra_images(str(tmp_path / 'extra'), 6, both, allow_fewer=True)
    assert 'n09_7.jpg' not in report.paths and report.excluded_by_content == 1
    train_only = ImageNetIndex.from_folders([imagenet])
    assert 'n09_7.jpg' in sample_extra_images(str(tmp_path / 'extra'), 6, train_only).paths
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(ValueError, match=f'no images found under {tmp_path / "empty"}'):
        ImageNetIndex.from_folders([imagenet, str(tmp_path / 'empty')])


def test_an_imagenet_file_is_said_to_be_a_file(tmp_path, imagenet):
    """A file given for an ImageNet folder (the train tar) was said to be "not found"."""
    archive = write(str(tmp_path / 'ILSVRC2012_img_val.tar'), b'tar')
    with pytest.raises(NotADirectoryError) as error:
        ImageNetIndex.from_folders([imagenet, archive])
    assert str(error.value) == (f'ImageNet folder {archive} is a file, not a folder: give '
                                '--imagenet TRAIN VAL (the train/ and val/ folders of '
                                'ImageNet-1K, unpacked)')


def test_too_few_images_says_how_many(tmp_path, imagenet):
    for i in range(12):
        write(str(tmp_path / 'extra' / f'{i}.jpg'), bytes([i]) * 50)
    write(str(tmp_path / 'extra' / 'n00_0.JPEG'), b'x')
    with pytest.raises(NotEnoughImages, match=r'has 12 eligible images \(13 image files, 1 '
                       r'excluded by name, 0 by content, 0 missing, empty or not files, 0 '
                       r'listed twice\), fewer than the 20 '
                       r'asked: pass --allow-fewer to write these 12 \(the list --num 12 '
                       r'would write, without scanning again\)'):
        sample_extra_images(str(tmp_path / 'extra'), 20, ImageNetIndex.from_folders([imagenet]))
    report = sample_extra_images(str(tmp_path / 'extra'), 20,
                                 ImageNetIndex.from_folders([imagenet]), allow_fewer=True)
    assert len(report.paths) == 12


def test_many_imagenet_copies_take_a_second_pass(tmp_path, imagenet):
    """Copies beyond the reservoir's 1% (at least 100) margin: a larger reservoir, same seed."""
    for i in range(30):
        with open(osp.join(imagenet, f'n0{i % 3}', f'n0{i % 3}_{i}.JPEG'), 'rb') as f:
            data = f.read()
        for k in range(5):  # 150 renamed copies
            write(str(tmp_path / 'extra' / 'copies' / f'{i}_{k}.jpg'), data)
    originals = [f'own/{i}.jpg' for i in range(20)]
    for i, name in enumerate(originals):
        write(str(tmp_path / 'extra' / name), b'\x07' * (1000 + i))
    report = sample_extra_images(str(tmp_path / 'extra'), 20,
                                 ImageNetIndex.from_folders([imagenet]))
    assert report.paths == sorted(originals)
    # the first pass's reservoir (120) held more copies than its margin (100); the second, all
    assert report.passes == 2 and 100 < report.excluded_by_content <= 150
    assert report.hashed == report.excluded_by_content  # the originals' sizes are not ImageNet's


def test_written_list_is_atomic_and_counted(tmp_path):
    out = str(tmp_path / 'meta' / 'extra.txt')
    write_image_list(['a/1.jpg', 'b c/2.jpg'], out, dict(seed=0))
    assert open(out).read() == 'a/1.jpg\nb c/2.jpg\n' and count_list_images(out) == (2, None)
    assert sorted(os.listdir(tmp_path / 'meta')) == ['extra.txt', 'extra.txt.json']

    def broken():
        yield 'x.jpg'
        raise RuntimeError('interrupted')

    with pytest.raises(RuntimeError):
        write_image_list(broken(), out)
    assert open(out).read() == 'a/1.jpg\nb c/2.jpg\n'  # the old list, no temporary left
    assert sorted(os.listdir(tmp_path / 'meta')) == ['extra.txt', 'extra.txt.json']


def _peak_bytes(tmp_path, candidates: int, num: int) -> int:
    lst = tmp_path / f'list_{candidates}.txt'
    if not lst.exists():  # a repeat reuses the files
        names = [f'laion/part-{i // 1000:05d}/{i:09d}.jpg' for i in range(candidates)]
        for folder in {n.rsplit('/', 1)[0] for n in names}:
            os.makedirs(tmp_path / folder, exist_ok=True)
        for name in names:  # the drawn ones are checked to exist and not to be empty
            (tmp_path / name).write_bytes(b'x')
        with open(lst, 'w') as f:
            f.writelines(n + '\n' for n in names)
        del names
    tracemalloc.start()
    try:
        index = ImageNetIndex.from_entries((f'n{i:08d}_{i}.JPEG', -1) for i in range(num))
        report = sample_extra_images(str(lst), num, index)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(report.paths) == num
    return peak


@pytest.mark.slow  # a scaling check: ~4 s alone, more on a busy machine
def test_memory_is_the_reservoir_not_the_source(tmp_path):
    """Peak memory of a draw of 5,000 from 10,000 and from 40,000 candidates, and of 10,000
    from 40,000 (34-character paths; measured: 2.47, 2.51 and 3.00 MB, i.e. ~97 bytes per
    further drawn image on top of ~2 MB for the window of files the threads stat): each further
    drawn image costs under 200 bytes, and 4x the source adds less than 10%."""
    _peak_bytes(tmp_path, 100, 50)  # first calls allocate caches of their own
    # the least of two draws: a peak depends on how far the threads that stat files have got
    # (the ratio varied from 0.95 to 1.05 over 12 single runs)
    small = min(_peak_bytes(tmp_path, 10_000, 5_000) for _ in range(2))
    large = min(_peak_bytes(tmp_path, 40_000, 5_000) for _ in range(2))
    more = min(_peak_bytes(tmp_path, 40_000, 10_000) for _ in range(2))
    assert (more - large) / 5_000 < 200, (large, more)
    assert large < 1.1 * small, (small, large)


def test_missing_files_are_dropped_without_the_content_check_too(tmp_path):
    """--names-only wrote the paths of files that do not exist into the list (the preflight
    samples a few paths: training failed on one mid-epoch); now every drawn path is checked to
    exist in both modes and a missing one is replaced by the next in rank."""
    names = [f'a/{i}.jpg' for i in range(30)]
    for name in names:
        write(str(tmp_path / 'src' / name), b'x')
    lst = tmp_path / 'list.txt'
    lst.write_text(''.join(n + '\n' for n in names + ['a/missing_1.jpg', 'a/missing_2.jpg']))
    names_only = ImageNetIndex.from_entries([('n01_1.JPEG', -1)])  # names, no sizes or folder
    for imagenet in (None, names_only):
        report = sample_extra_images(str(lst), 30, imagenet, data_root=str(tmp_path / 'src'))
        assert report.paths == sorted(names) and report.unreadable == 2
        with pytest.raises(NotEnoughImages, match=r'has 30 eligible .* 2 missing, empty or not '
                           r'files.*: pass --allow-fewer to write these 30 \(the list --num 30'):
            sample_extra_images(str(lst), 32, imagenet, data_root=str(tmp_path / 'src'))
    # a list relative to another root: the fix named is --data-root, not 'another source'
    (tmp_path / 'nowhere').mkdir()  # (one that is not a folder is refused at once)
    with pytest.raises(NotEnoughImages, match=r'no eligible images .* 32 missing, empty or not '
                       r'files, 0 listed twice\): most drawn paths are missing, empty or not '
                       r'files: check that they are relative to --data-root'):
        sample_extra_images(str(lst), 5, None, data_root=str(tmp_path / 'nowhere'))
    # an empty file and a folder named like an image were kept, and training failed on them
    write(str(tmp_path / 'src' / 'a' / 'empty.jpg'), b'')
    os.makedirs(tmp_path / 'src' / 'a' / 'folder.jpg')
    lst.write_text(''.join(n + '\n' for n in names + ['a/empty.jpg', 'a/folder.jpg']))
    report = sample_extra_images(str(lst), 30, None, data_root=str(tmp_path / 'src'))
    assert report.paths == sorted(names) and report.unreadable == 2


def test_verify_drops_files_that_do_not_decode(tmp_path, imagenet):
    """A non-empty file that is not an image (an HTML page saved as .jpg, a JPEG cut short)
    passed the stat and went into the list; training then failed on it mid-epoch. With
    ``verify`` every kept image is decoded as training decodes it, and those that fail are
    dropped and replaced like missing ones."""
    import io

    from PIL import Image
    good = []
    for i in range(6):
        buf = io.BytesIO()
        Image.new('RGB', (8 + i, 8), (40 * i, 0, 0)).save(buf, format='JPEG')
        good.append(write(str(tmp_path / 'src' / f'{i}.jpg'), buf.getvalue()))
    write(str(tmp_path / 'src' / 'page.jpg'), b'<html>404 Not Found</html>')
    with open(good[0], 'rb') as f:
        write(str(tmp_path / 'src' / 'cut.jpg'), f.read()[:60])
    src = str(tmp_path / 'src')
    index = ImageNetIndex.from_folders([imagenet])
    plain = sample_extra_images(src, 8, index)
    assert plain.paths == sorted(os.listdir(src)) and plain.unreadable == 0
    checked = sample_extra_images(src, 6, index, verify=True)
    assert checked.paths == [f'{i}.jpg' for i in range(6)] and checked.unreadable == 2
    with pytest.raises(NotEnoughImages, match=r'2 missing, empty, undecodable or not files'):
        sample_extra_images(src, 7, index, verify=True)


@pytest.mark.parametrize('where', ['stat', 'read'])
def test_a_read_error_that_can_go_away_stops_the_draw(tmp_path, monkeypatch, where):
    """An EIO on a flaky mount dropped the image as unreadable, so the same seed drew another
    sample than a rerun would. Now it stops the draw, naming the file; a file that is missing
    or may not be read is still dropped."""
    import errno

    from PIL import Image

    from genview_mm.apis.extra_images import sampling
    for i in range(5):
        Image.new('RGB', (8, 8), (40 * i, 0, 0)).save(str(tmp_path / f'{i}.jpg'))
    flaky = str(tmp_path / '2.jpg')
    err = {'code': errno.EIO}
    real_stat, real_open = os.stat, open

    def fail(path):
        if str(path) == flaky:
            raise OSError(err['code'], os.strerror(err['code']), str(path))

    def fake_stat(path, *args, **kwargs):
        fail(path)
        return real_stat(path, *args, **kwargs)

    def fake_open(path, *args, **kwargs):
        fail(path)
        return real_open(path, *args, **kwargs)

    if where == 'stat':
        monkeypatch.setattr(sampling.os, 'stat', fake_stat)
    else:
        monkeypatch.setattr(sampling, 'open', fake_open, raising=False)
    with pytest.raises(OSError, match=rf'^cannot read {flaky} \(Input/output '
                       r'error\): dropping it would change which images this seed draws'):
        sample_extra_images(str(tmp_path), 4, None, verify=True)
    err['code'] = errno.EACCES  # not to be read: dropped and replaced, as before
    report = sample_extra_images(str(tmp_path), 4, None, verify=True)
    assert report.paths == ['0.jpg', '1.jpg', '3.jpg', '4.jpg'] and report.unreadable == 1


def test_a_seed_longer_than_the_hash_key_is_refused():
    with pytest.raises(ValueError, match='at most 64 characters, got 65'):
        KeyedReservoir(3, int('9' * 65))
    longest = KeyedReservoir(3, -int('9' * 63))  # 64 characters with the sign: still a key
    longest.offer('a.jpg')
    assert longest.ranked() == ['a.jpg']


def test_a_list_relative_to_another_root_stops_after_one_pass(tmp_path):
    """Every drawn path missing (a list relative to another folder, --data-root forgotten):
    each pass tripled the reservoir and read the source again until the reservoir held all of
    it (6 passes and 1 GB for 200k lines) before the --data-root hint; now the first pass
    that finds nearly every drawn path missing ends with that hint."""
    lst = tmp_path / 'list.txt'
    lst.write_text(''.join(f'shard{i % 10}/img_{i}.jpg\n' for i in range(2000)))
    (tmp_path / 'elsewhere').mkdir()  # (one that is not a folder is refused at once)
    with pytest.raises(NotEnoughImages, match=r'most drawn paths are missing, empty or not '
                       r'files: check that they are relative to --data-root') as info:
        sample_extra_images(str(lst), 5, None, data_root=str(tmp_path / 'elsewhere'))
    assert info.value.report.passes == 1 and info.value.report.unreadable == 105
    # 1 in 20 there: --allow-fewer does not make a list of them (the rest was never examined)
    for i in range(0, 2000, 20):
        write(str(tmp_path / 'elsewhere' / f'shard{i % 10}' / f'img_{i}.jpg'), b'x')
    with pytest.raises(NotEnoughImages, match=r'of the 600 paths examined are usable .*: most '
                       r'drawn paths are missing') as info:
        sample_extra_images(str(lst), 500, None, data_root=str(tmp_path / 'elsewhere'),
                            allow_fewer=True)
    assert info.value.report.passes == 1
    # a source smaller than --num (the reservoir held all of it): the same hint, where it
    # said "pass --num 100 or --allow-fewer" and wrote the 100 with --allow-fewer
    for allow_fewer in (False, True):
        with pytest.raises(NotEnoughImages, match=r': 100 of the 2,000 paths examined are usable '
                           r'.*: most drawn paths are missing, empty or not files: check that they '
                           r'are relative to --data-root .*list only the ones there$') as info:
            sample_extra_images(str(lst), 3000, None, data_root=str(tmp_path / 'elsewhere'),
                                allow_fewer=allow_fewer)
        assert not info.value.fewer


def test_a_request_met_in_full_is_kept_however_many_drawn_paths_are_missing(tmp_path):
    """With the --data-root check run for sources of any size, a small --num met in full
    (95 of 100 listed files missing, --num 1) was refused for some seeds and not for others;
    the hint is for requests that fall short."""
    names = [f'imgs/p{i}.jpg' for i in range(100)]
    for name in names[:5]:
        write(str(tmp_path / name), b'x')
    lst = tmp_path / 'list.txt'
    lst.write_text(''.join(n + '\n' for n in names))
    for seed in range(5):
        report = sample_extra_images(str(lst), 1, None, seed=seed)
        assert len(report.paths) == 1 and report.paths[0] in names[:5], seed
    with pytest.raises(NotEnoughImages, match=r'most drawn paths are missing'):
        sample_extra_images(str(lst), 6, None, allow_fewer=True)  # 5 usable of 100: short


def test_a_half_broken_source_still_takes_more_passes(tmp_path):
    """Missing files that are not nearly all of the drawn ones are replaced by a larger
    reservoir, as before."""
    names = [f'a/{i}.jpg' for i in range(400)]
    for name in names[::2]:
        write(str(tmp_path / 'src' / name), b'x')
    lst = tmp_path / 'list.txt'
    lst.write_text(''.join(n + '\n' for n in names))
    report = sample_extra_images(str(lst), 150, None, data_root=str(tmp_path / 'src'))
    assert len(report.paths) == 150 and report.passes == 2
    assert set(report.paths) <= set(names[::2])


def test_absolute_paths_under_a_linked_data_root(tmp_path):
    """docs/reproducing_the_paper.md lets data/extra_images be a link to the dump; a list of
    the dump's absolute paths with --data-root data/extra_images was refused as 'not inside
    the data root' (the paths were compared unresolved)."""
    dump = tmp_path / 'dump'
    names = [f'd{i % 2}/img_{i}.jpg' for i in range(6)]
    for name in names:
        write(str(dump / name), b'y' * 10)
    link = tmp_path / 'data' / 'extra_images'
    os.makedirs(link.parent)
    os.symlink(dump, link)
    lst = tmp_path / 'abs.txt'
    lst.write_text(''.join(f'{dump / n}\n' for n in names))
    assert sorted(iter_list(str(lst), str(link))) == sorted(names)
    report = sample_extra_images(str(lst), 6, None, data_root=str(link))
    assert report.paths == sorted(names)
    outside = tmp_path / 'other' / 'x.jpg'
    write(str(outside), b'z')
    lst.write_text(f'{outside}\n')
    with pytest.raises(ValueError, match='is not inside the data root'):
        list(iter_list(str(lst), str(link)))


def test_a_list_that_fails_to_write_keeps_its_old_record(tmp_path, monkeypatch):
    """The record OUT.json was written before the list: a full disk while the list was
    written left the old list beside a new record (another seed and count) that described a
    list never written."""
    import errno

    from genview_mm.utils.atomic_write import DiskFull
    out = str(tmp_path / 'extra.txt')
    write_image_list(['a/1.jpg', 'a/2.jpg'], out, dict(seed=0, num_written=2))

    def full_disk():
        yield 'b/1.jpg'
        raise DiskFull(errno.ENOSPC, 'No space left on device', str(tmp_path))

    with pytest.raises(DiskFull):
        write_image_list(full_disk(), out, dict(seed=7, num_written=1))
    assert open(out).read() == 'a/1.jpg\na/2.jpg\n'
    assert json.load(open(out + '.json')) == dict(seed=0, num_written=2)
    assert sorted(os.listdir(tmp_path)) == ['extra.txt', 'extra.txt.json']
