"""The preflight of a data-expansion config: the extra image folder, its list (made by
tools/sample_extra_images.py) and the list's length, each missing item with its command."""
import os
import os.path as osp

import pytest

from genview_mm.apis import load_config
from genview_mm.apis.preflight import format_checklist, preflight_passes, run_preflight
from helpers import ROOT, checkout_root, write_photos

TINY = osp.join(ROOT, 'configs', 'demo', 'mocov2_r18_tiny_cpu_expansion.py')
MOCOV2 = osp.join(ROOT, 'configs', 'expansion', 'mocov2_r50_in1k-plus-extra.py')
EXTRA = 'extra images [train_dataloader.dataset.datasets.1]'


@pytest.fixture
def setup(tmp_path):
    main = str(tmp_path / 'main')
    write_photos(osp.join(main, 'all'), 2, size=16)
    extra = str(tmp_path / 'extra')
    names = [osp.relpath(p, extra) for p in write_photos(osp.join(extra, 'web'), 4, size=16)]
    lst = str(tmp_path / 'extra.txt')
    with open(lst, 'w') as f:
        f.writelines(n + '\n' for n in names)
    return dict(main=main, extra=extra, list=lst)


def tiny_cfg(s, num=4):
    return load_config(TINY, {'train_dataloader.dataset.datasets.0.data_root': s['main'],
                              'train_dataloader.dataset.datasets.1.data_prefix.img_path':
                              s['extra'],
                              'train_dataloader.dataset.datasets.1.ann_file': s['list'],
                              'expansion.num_extra': num})


def only_failure(checks):
    bad = [c for c in checks if c.failing]
    assert len(bad) == 1, format_checklist(checks, 'cfg')
    return bad[0]


def test_complete_setup_passes_with_one_check_for_the_extra_set(setup):
    checks = run_preflight(tiny_cfg(setup))
    assert preflight_passes(checks), format_checklist(checks, 'cfg', verbose=True)
    extra = [c for c in checks if 'datasets.1' in c.what]
    assert [(c.what, c.detail) for c in extra] == [
        (EXTRA, f'{setup["list"]}: 4 images under {setup["extra"]}')]


def test_missing_list_names_the_sampling_command(setup):
    os.remove(setup['list'])
    check = only_failure(run_preflight(tiny_cfg(setup)))
    assert (check.what, check.status) == (EXTRA, 'MISSING')
    assert check.detail == f'annotation list {setup["list"]} not found'
    assert check.fix[0].startswith(
        f'python tools/sample_extra_images.py {setup["extra"]} --imagenet {setup["main"]} '
        f'--num 4 --out {setup["list"]}   (candidates: an ImageNet-21K or LAION image dump')


def test_missing_folder_says_where_the_images_go(setup):
    for name in os.listdir(osp.join(setup['extra'], 'web')):
        os.remove(osp.join(setup['extra'], 'web', name))
    os.rmdir(osp.join(setup['extra'], 'web'))
    os.rmdir(setup['extra'])
    check = only_failure(run_preflight(tiny_cfg(setup)))
    assert (check.status, check.detail) == ('MISSING', f'image folder {setup["extra"]} not found')
    assert 'train_dataloader.dataset.datasets.1.data_prefix.img_path=DIR' in check.fix[0]
    assert check.fix[1].startswith('then python tools/sample_extra_images.py ')


def test_fewer_images_than_asked(setup):
    check = only_failure(run_preflight(tiny_cfg(setup, num=10)))
    assert (check.status, check.detail) == (
        'BROKEN', f'{setup["list"]} lists 4 images, fewer than the 10 asked (expansion.num_extra)')
    assert '--num 10 --out' in check.fix[0]
    assert check.fix[1] == 'or ask for what it lists: --cfg-options expansion.num_extra=4'
    # a longer list (a whole dump): more data than GenView's run, not the paper's comparison
    check = only_failure(run_preflight(tiny_cfg(setup, num=3)))
    assert (check.status, check.detail) == (
        'BROKEN', f'{setup["list"]} lists 4 images, more than the 3 asked (expansion.num_extra)')


def test_list_drawn_for_another_folder(setup, tmp_path):
    with open(setup['list'], 'w') as f:
        f.write('elsewhere/1.jpg\nweb/img_0000.jpg\n')
    check = only_failure(run_preflight(tiny_cfg(setup, num=2)))
    assert check.status == 'BROKEN'
    assert check.detail.startswith(f'{setup["list"]} names {setup["extra"]}/elsewhere/1.jpg, '
                                   'which does not exist (1 of its first 2 paths)')
    assert check.fix[0].endswith(f'--data-root {setup["extra"]}')


def test_fresh_clone_names_imagenet_and_the_extra_set(tmp_path, monkeypatch):
    monkeypatch.chdir(checkout_root(tmp_path))
    checks = run_preflight(load_config(MOCOV2))
    text = format_checklist(checks, 'configs/expansion/mocov2_r50_in1k-plus-extra.py')
    assert [c.what for c in checks if c.failing] == [
        'ImageNet (train) data [train_dataloader.dataset.datasets.0]', EXTRA], text
    assert ('then python tools/sample_extra_images.py data/extra_images --imagenet '
            'data/imagenet/train data/imagenet/val --num 1281167 --out '
            'data/expansion/extra_images.txt') in text


@pytest.mark.parametrize('line, said', [
    ('\n', 'line 4 is blank'),
    ('  web/img_0003.jpg\n', "line 4 ('  web/img_0003.jpg') has spaces around its path"),
    ('web/img_0003.jpg \n', "line 4 ('web/img_0003.jpg ') has spaces around its path"),
    ('# drawn 2026\n', "line 4 ('# drawn 2026') is a comment"),
])
def test_a_line_that_is_not_a_plain_path_is_broken(setup, line, said):
    """MMPretrain reads every line of the list as a path, as it is: the preflight counted only
    non-blank lines and looked at the first 10, so a blank, padded or '#' line passed as 'N
    images' and training failed when it reached it (a blank line: IsADirectoryError)."""
    with open(setup['list']) as f:
        lines = f.readlines()
    lines[3:4] = [line, lines[3]] if line.strip() in ('', '# drawn 2026') else [line]
    with open(setup['list'], 'w') as f:
        f.writelines(lines)
    check = only_failure(run_preflight(tiny_cfg(setup, num=len(lines))))
    assert (check.what, check.status) == (EXTRA, 'BROKEN')
    assert check.detail == (f'{setup["list"]}: {said}, but MMPretrain reads every line as an '
                            'image path, as it is, so training would fail there')
    assert check.fix == [f'remove or fix that line ({len(lines)} lines); '
                         'tools/sample_extra_images.py writes one plain path per line']


@pytest.mark.parametrize('junk', [b'web/img_\xff.jpg\n', b'\x1f\x8b\x08\x00\xc0\x00\n'],
                         ids=['latin-1-name', 'an-archive'])
def test_a_list_that_is_not_utf8_is_broken(setup, junk):
    """A list line that is not UTF-8 (or an archive given as the list) crashed the preflight
    with a UnicodeDecodeError traceback; MMPretrain reads the list as UTF-8 text."""
    with open(setup['list'], 'rb') as f:
        lines = f.readlines()
    lines[1:1] = [junk]
    with open(setup['list'], 'wb') as f:
        f.writelines(lines)
    check = only_failure(run_preflight(tiny_cfg(setup, num=len(lines))))
    assert (check.what, check.status) == (EXTRA, 'BROKEN')
    assert check.detail == (f'{setup["list"]}: line 2 is not UTF-8 text, but MMPretrain reads '
                            'every line as an image path, as it is, so training would fail '
                            'there')


def test_an_unlabelled_main_list_is_not_taken_for_the_extra_set(setup, tmp_path):
    """The extra set is the last dataset of the train ConcatDataset. Any unlabelled
    CustomDataset with a list used to be taken for it: a main set of that form was checked
    against expansion.num_extra, and the fix line told the user to write the extra sample over
    their main list; the tools that read the train folder were sent to the extra folder."""
    from genview_mm.apis.preflight.data_checks import train_images
    main_list = str(tmp_path / 'main.txt')
    names = sorted(os.listdir(osp.join(setup['main'], 'all')))
    with open(main_list, 'w') as f:
        f.writelines(f'all/{n}\n' for n in names)
    cfg = tiny_cfg(setup)
    pipeline = cfg.train_dataloader.dataset.datasets[0].pipeline
    cfg.train_dataloader.dataset.datasets[0] = dict(
        type='CustomDataset', data_root=setup['main'], ann_file=main_list, with_label=False,
        pipeline=pipeline)
    checks = run_preflight(cfg)
    text = format_checklist(checks, 'cfg', verbose=True)
    assert preflight_passes(checks), text
    assert [c.what for c in checks if c.what.startswith('extra images')] == [EXTRA], text
    assert 'sample_extra_images' not in text and main_list + ':' not in text
    assert train_images(cfg) == setup['main']


def test_an_extra_set_listed_first_is_still_found(setup):
    """The extra set is the last train dataset; a config listing it first (the only unlabelled
    list) had no extra-set check at all, and the tools were sent to its folder for ImageNet."""
    from genview_mm.apis.preflight.data_checks import extra_images_key, train_images
    cfg = tiny_cfg(setup)
    sets = cfg.train_dataloader.dataset.datasets
    sets[0], sets[1] = sets[1], sets[0]
    assert extra_images_key(cfg) == 'train_dataloader.dataset.datasets.0'
    assert train_images(cfg) == setup['main']


def test_a_list_saved_with_a_byte_order_mark_says_so(setup):
    """A list saved as UTF-8 with BOM (an editor's 'UTF-8 BOM') was said to be drawn for
    another folder, its fix a new draw: MMPretrain reads the mark as part of the first path,
    and saving the same list as plain UTF-8 fixes it."""
    with open(setup['list'], 'rb') as f:
        text = f.read()
    with open(setup['list'], 'wb') as f:
        f.write(b'\xef\xbb\xbf' + text)
    check = only_failure(run_preflight(tiny_cfg(setup)))
    assert (check.what, check.status) == (EXTRA, 'BROKEN')
    assert check.detail == (f'{setup["list"]} starts with a byte-order mark (saved as UTF-8 '
                            'with BOM), which MMPretrain reads as part of its first image path')
    assert check.fix == ['save it as plain UTF-8 (no byte-order mark); '
                         'tools/sample_extra_images.py writes one plain path per line']
