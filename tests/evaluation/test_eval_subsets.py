"""genview_mm.evaluation.subsets and tools/make_semi_subsets.py: class balance, determinism,
SimCLR's subset files, the CLI."""
import os.path as osp
import re
from collections import Counter

import pytest

from genview_mm.evaluation.subsets import (
    balanced_subset,
    per_class_count,
    read_ann_file,
    read_simclr_names,
    simclr_subset,
    write_ann_file,
)
from helpers import run_script

WNIDS = ['n01440764', 'n01443537', 'n01484850', 'n01491361']


def train_list(sizes=(120, 95, 130, 101)):
    return [(f'{w}/{w}_{i}.JPEG', label) for label, (w, n) in enumerate(zip(WNIDS, sizes))
            for i in range(n)]


def test_balanced_and_deterministic():
    entries = train_list()
    a = balanced_subset(entries, fraction=0.1, seed=3)
    b = balanced_subset(list(reversed(entries)), fraction=0.1, seed=3)  # input order is irrelevant
    c = balanced_subset(entries, fraction=0.1, seed=4)
    assert a == b
    assert a != c
    k = per_class_count(len(entries), 4, 0.1)
    assert k == 11
    assert Counter(label for _, label in a) == {0: k, 1: k, 2: k, 3: k}
    assert len(set(a)) == len(a) and set(a) <= set(entries)
    # a class's draw does not depend on the other classes
    only0 = balanced_subset([e for e in entries if e[1] == 0], num_per_class=k, seed=3)
    assert only0 == [e for e in a if e[1] == 0]


def test_errors():
    with pytest.raises(ValueError, match='fewer than'):
        balanced_subset(train_list(), num_per_class=100)
    with pytest.raises(ValueError, match='exactly one'):
        balanced_subset(train_list(), fraction=0.1, num_per_class=3)
    with pytest.raises(ValueError, match=r'\(0, 1\]'):
        per_class_count(10, 2, 1.5)
    # ImageNet's 1,281,167 images in 1000 classes: 1% is 12.81 a class, rounded to 13 (not
    # cut to 12, 1.6% fewer images than asked); 10% is 128.1, 128
    assert per_class_count(1281167, 1000, 0.01) == 13
    assert per_class_count(1281167, 1000, 0.1) == 128


def test_simclr_subset(tmp_path):
    entries = train_list()
    names = [osp.basename(p) for p, _ in entries[::40]]
    (tmp_path / '1percent.txt').write_text('\n'.join(names) + '\n')
    read = read_simclr_names(str(tmp_path / '1percent.txt'))
    assert read == names
    (tmp_path / 'bom.txt').write_text('\n'.join(names) + '\n', encoding='utf-8-sig')
    assert read_simclr_names(str(tmp_path / 'bom.txt')) == names  # saved by a Windows editor:
    with_list = simclr_subset(read, entries)                     # its first name was not found
    assert with_list == entries[::40]
    without = simclr_subset(read, num_classes=4)  # labels from sorted wnids: ImageNet's order
    assert without == with_list                    # when every class is present
    with pytest.raises(ValueError, match="names 4 classes, not 1000: without a train list its "
                       "labels would not be ImageNet's; pass --train-list"):
        simclr_subset(read)  # a truncated file: ranks among its 4 classes, silently before
    with pytest.raises(ValueError, match='not in the train list'):
        simclr_subset(['n09999999_1.JPEG'], entries)
    (tmp_path / 'bad.txt').write_text('n01440764/a 0\n')
    with pytest.raises(ValueError, match='SimCLR subset'):
        read_simclr_names(str(tmp_path / 'bad.txt'))
    # written silently before: an empty list, a train list ('path label' lines), binary bytes
    for text, said in ((b'\n \n', 'no image names in it'),
                       (b'n00/n00_18.JPEG 0\n', "got e.g. ['n00_18.JPEG 0']"),
                       (b'\xff\xd8\xff\xe0 JFIF', 'not UTF-8 text: invalid start byte at byte 0'),
                       # a repeated name wrote that image twice into the subset (two files
                       # concatenated, or 1percent.txt appended to 10percent.txt)
                       (('\n'.join(names + names[2:4]) + '\n').encode(),
                        f"2 names are listed more than once (e.g. '{names[2]}')")):
        (tmp_path / 'bad.txt').write_bytes(text)
        with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'bad.txt'}: ") + '.*' +
                           re.escape(said)):
            read_simclr_names(str(tmp_path / 'bad.txt'))


def run_cli(args):
    """Run tools/make_semi_subsets.py as a script, in process (no second interpreter start)."""
    run_script('make_semi_subsets.py', *args)


def test_cli(tmp_path, capsys):
    write_ann_file(train_list(), str(tmp_path / 'train.txt'))
    (tmp_path / '10percent.txt').write_text('n01443537_3.JPEG\nn01440764_7.JPEG\n')
    cmd = ['--train-list', str(tmp_path / 'train.txt'), '--percent', '1', '10', '--seed', '0',
           '--out-dir', str(tmp_path / 'meta')]
    run_cli(cmd)
    assert '44 images of 4 classes, 11 per class, seed 0' in capsys.readouterr().out
    one = read_ann_file(str(tmp_path / 'meta' / 'train_1percent.txt'))
    ten = read_ann_file(str(tmp_path / 'meta' / 'train_10percent.txt'))
    assert Counter(label for _, label in one) == {0: 1, 1: 1, 2: 1, 3: 1}
    assert Counter(label for _, label in ten) == {0: 11, 1: 11, 2: 11, 3: 11}
    assert ten == balanced_subset(train_list(), fraction=0.1, seed=0)
    assert (tmp_path / 'meta' / 'train_10percent.txt').read_text().splitlines()[0] == \
        f'{ten[0][0]} {ten[0][1]}'
    simclr = cmd[:2] + ['--simclr', str(tmp_path / '10percent.txt'), '--out-dir',
                        str(tmp_path / 'simclr')]
    capsys.readouterr()
    run_cli(simclr)  # SimCLR's lists are not balanced: the count says so (it said '1 per class')
    assert '2 images of 2 classes, 1 per class, from' in capsys.readouterr().out
    (tmp_path / '10percent.txt').write_text('n01443537_3.JPEG\nn01440764_7.JPEG\n'
                                            'n01440764_8.JPEG\n')
    run_cli(simclr[:-1] + [str(tmp_path / 'simclr3')])
    assert '3 images of 2 classes, 1 to 2 per class, from' in capsys.readouterr().out
    assert read_ann_file(str(tmp_path / 'simclr' / 'train_10percent.txt')) == [
        ('n01443537/n01443537_3.JPEG', 1), ('n01440764/n01440764_7.JPEG', 0)]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run_cli(cmd[:-2] + simclr[2:4] + ['--out-dir', str(tmp_path / 'x')])
    assert exit_.value.code == 2  # a usage problem, as argparse's
    err = capsys.readouterr().err
    assert err.startswith("make_semi_subsets.py: error: two requested subsets would both be "
                          "written to ['train_10percent.txt']") and 'nothing was written' in err
    assert not (tmp_path / 'x').exists()


def test_a_rerun_leaves_a_list_that_holds_its_lines_as_it_is(tmp_path, capsys):
    """A list holding the same lines (e.g. a link to a shared, read-only copy) is left as it is,
    as the tool says: the rerun replaced the link with a file of its own."""
    write_ann_file(train_list(), str(tmp_path / 'train.txt'))
    cmd = ['--train-list', str(tmp_path / 'train.txt'), '--percent', '10', '--out-dir',
           str(tmp_path / 'shared')]
    run_cli(cmd)
    (tmp_path / 'meta').mkdir()
    link = tmp_path / 'meta' / 'train_10percent.txt'
    link.symlink_to(tmp_path / 'shared' / 'train_10percent.txt')
    run_cli(cmd[:-1] + [str(tmp_path / 'meta')])
    assert link.is_symlink()
    assert f'kept {link}: 44 images of 4 classes' in capsys.readouterr().out


def test_a_train_list_with_repeated_images_is_refused(tmp_path):
    """A train list with an image listed twice (two lists concatenated): the subsets were
    drawn with repeats (24 lines for 8 per class, 20 distinct) and passed the size check."""
    path = str(tmp_path / 'train.txt')
    write_ann_file(train_list() + train_list()[:3], path)
    with pytest.raises(ValueError, match=r"train.txt: 3 images are listed more than once \(e\.g\. "
                       r"'n01440764/.*'\): remove the repeated lines"):
        read_ann_file(path)


def test_a_percent_under_one_image_per_class_says_it_keeps_one(tmp_path, capsys):
    """0.05% of 446 images is 0.22 per class: per_class_count keeps one per class (4 images,
    0.9%), which the tool used to write without a word."""
    write_ann_file(train_list(), str(tmp_path / 'train.txt'))
    run_cli(['--train-list', str(tmp_path / 'train.txt'), '--percent', '0.05', '1',
             '--out-dir', str(tmp_path / 'meta')])
    out, err = capsys.readouterr()
    assert 'train_0.05percent.txt: 4 images of 4 classes, 1 per class' in out
    assert err.splitlines() == ['note: 0.05% of 446 images rounds to none per class, so '
                                'train_0.05percent.txt keeps one per class (0.9%); '
                                '--num-per-class 1 says so']  # 1% rounds to one: no note


def test_a_train_list_saved_with_a_byte_order_mark_reads_as_the_plain_list(tmp_path):
    """A train list saved as UTF-8 with BOM: the mark went into its first path, which a subset
    then listed mid-file (a path that names no image: training failed when it reached it)."""
    plain, bom = str(tmp_path / 'train.txt'), str(tmp_path / 'train_bom.txt')
    write_ann_file(train_list(), plain)
    with open(plain, encoding='utf-8') as f:
        text = f.read()
    for head in ('', '# header\n', '\n'):
        with open(bom, 'w', encoding='utf-8-sig') as f:
            f.write(head + text)
        assert read_ann_file(bom) == read_ann_file(plain)
    subset = balanced_subset(read_ann_file(bom), num_per_class=95)
    assert all(not p.startswith('\ufeff') for p, _ in subset)
    assert simclr_subset([osp.basename(train_list()[0][0])], read_ann_file(bom)) == \
        [train_list()[0]]
