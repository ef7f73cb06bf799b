"""tools/import_views.py: pairing rule, manifest rows, summary counts, noise-level lists, errors,
deterministic output and memory bounded by the largest folder."""
import gc
import json
import os
import os.path as osp
import sys
import tracemalloc
import unicodedata

import pytest

from genview_mm.apis.import_views import (
    NoiseLevelLists,
    import_views,
    level_from_filename,
    match_folder,
    view_extensions,
)
from genview_mm.structures.manifest import FIELDS, read_manifest
from helpers import load_tool, run_cmd

tool = load_tool('import_views')


def touch(path, data=None):
    """A small file; by default its own path (a 0-byte view is counted as empty and not
    imported, a byte-for-byte copy of its source as the source itself)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(str(path).encode() if data is None else data)


def make_trees(root, layout):
    """layout: {rel folder: (source names, view names)}; returns (source root, views root)."""
    src, views = osp.join(root, 'train'), osp.join(root, 'train_variations')
    for folder, (sources, gen) in layout.items():
        for name in sources:
            touch(osp.join(src, folder, name))
        for name in gen:
            touch(osp.join(views, folder, name))
    return src, views


def run_tool(capsys, *argv):
    rc = tool.main([*map(str, argv), '--no-progress'])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_match_folder_rule():
    m = match_folder(['a.JPEG', 'b.JPEG', 'c.jpg', 'd.jpg', 'd.png'],
                     ['a.jpeg', 'b.png', 'b.JPEG', 'e.jpg', 'notes.txt', 'd.jpg', 'd.webp'])
    assert m.pairs == [('a.JPEG', 'a.jpeg'), ('b.JPEG', 'b.JPEG'), ('d.jpg', 'd.jpg')]
    assert m.missing == ['c.jpg']
    assert m.duplicates == [('b.JPEG', 'b.JPEG', ('b.png', ))]  # the source's extension wins
    assert m.ambiguous == ['d.png']  # d.jpg is a source too, and there is no d.png view
    assert m.extra == ['d.webp', 'e.jpg']
    assert m.ignored == ['notes.txt']
    # several views, none with the source's extension: the first by name, deterministically
    assert match_folder(['x.bmp'], ['x.png', 'x.JPG']).pairs == [('x.bmp', 'x.JPG')]
    only_png = match_folder(['a.jpg', 'b.jpg'], ['a.PNG', 'b.jpg'], view_extensions('png'))
    assert only_png.pairs == [('a.jpg', 'a.PNG')] and only_png.ignored == ['b.jpg']
    assert view_extensions('.JPEG') == ('.jpeg', )
    with pytest.raises(ValueError, match='--ext'):
        view_extensions('.')



def test_sources_that_differ_in_the_case_of_the_extension_keep_their_own_views():
    """x.JPG and x.jpg (a case-sensitive disk): both took x.JPG's view, and x.jpg's own view
    was listed as not imported. Only an exact name pairs them; a view of neither name is
    ambiguous."""
    m = match_folder(['x.JPG', 'x.jpg'], ['x.JPG', 'x.jpg'])
    assert m.pairs == [('x.JPG', 'x.JPG'), ('x.jpg', 'x.jpg')] and m.extra == []
    m = match_folder(['x.JPG', 'x.jpg'], ['x.jpg'])
    assert m.pairs == [('x.jpg', 'x.jpg')] and m.ambiguous == ['x.JPG']
    m = match_folder(['x.JPG', 'x.jpg', 'x.png'], ['x.Jpg', 'x.png'])
    assert m.pairs == [('x.png', 'x.png')] and m.ambiguous == ['x.JPG', 'x.jpg']
    assert m.extra == ['x.Jpg']


def test_names_written_in_another_unicode_form_pair_up(tmp_path, capsys):
    """Views copied through macOS spell café/crème.jpg in NFD (e + a combining accent), the
    sources on Linux in NFC: alike on screen, other bytes. They were all "sources without a
    view" and "view files without a source", listed under names that look the same."""
    nfc, nfd = (lambda t: unicodedata.normalize('NFC', t)), (lambda t: unicodedata.normalize(
        'NFD', t))
    assert nfc('café') != nfd('café')
    src, views = make_trees(str(tmp_path), {nfc('café'): ([nfc('crème.jpg'), 'b.jpg'], [])})
    make_trees(str(tmp_path), {nfd('café'): ([], [nfd('crème.png'), 'b.png'])})
    out = tmp_path / 'manifest.jsonl'
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0, stdout
    rows = read_manifest(str(out))
    assert [r['key'] for r in rows] == [nfc('café/b.jpg'), nfc('café/crème.jpg')]  # the sources'
    assert [r['output'] for r in rows] == [osp.join(views, nfd('café'), n)
                                           for n in ('b.png', nfd('crème.png'))]  # as on disk
    assert all(osp.isfile(r['output']) for r in rows)
    assert '  matched (rows written)         2 (100.00%)' in stdout.splitlines()
    # exact names pair first, then the others by form, name by name (one clash in a folder
    # left every name there to exact bytes, and an NFC name took an NFD pair of exact bytes)
    m = match_folder([nfc('é.jpg'), nfd('é.jpg')], [nfd('é.png')])
    assert m.pairs == [(nfd('é.jpg'), nfd('é.png'))] and m.missing == [nfc('é.jpg')]
    m = match_folder([nfd('é.jpg')], [nfc('é.png'), nfd('é.png')])
    assert m.pairs == [(nfd('é.jpg'), nfd('é.png'))] and m.extra == [nfc('é.png')]
    m = match_folder([nfc('é.jpg'), nfc('à.jpg')], [nfc('é.png'), nfd('é.png'), nfd('à.png')])
    assert m.pairs == [(nfc('à.jpg'), nfd('à.png')), (nfc('é.jpg'), nfc('é.png'))]
    assert m.extra == [nfd('é.png')] and m.missing == []
    # the rules of a name's own view hold across forms, as for ASCII names
    m = match_folder([nfc('é.JPG'), nfc('é.jpg')], [nfd('é.jpg')])
    assert m.pairs == [(nfc('é.jpg'), nfd('é.jpg'))] and m.ambiguous == [nfc('é.JPG')]
    m = match_folder([nfc('é.jpg')], [nfd('é.JPG'), nfd('é.jpg')])
    assert m.pairs == [(nfc('é.jpg'), nfd('é.jpg'))]
    # folders too: the exact one first
    src, views = make_trees(str(tmp_path / 'two'), {nfc('café'): (['a.jpg'], []),
                                                    nfd('café'): (['a.jpg'], ['a.png'])})
    out = tmp_path / 'two.jsonl'
    assert run_tool(capsys, views, '--source-root', src, '--out', out)[0] == 0
    assert [(r['key'], r['output']) for r in read_manifest(str(out))] == [
        (nfd('café/a.jpg'), osp.join(views, nfd('café'), 'a.png'))]


LAYOUT = {
    'n01': (['n01_1.JPEG', 'n01_2.JPEG', 'n01_3.JPEG'], ['n01_1.JPEG', 'n01_2.png', 'n01_9.JPEG']),
    'n02': (['n02_1.JPEG', 'n02_2.JPEG'], ['n02_1.JPEG', 'n02_1.png', 'README.txt']),
    'n03': (['n03_1.JPEG'], []),  # no views folder at all
    'n04': ([], ['n04_1.JPEG']),  # views of a class that is not among the sources
}


def test_import_released_layout_rows_summary_and_rerun(tmp_path, capsys):
    src, views = make_trees(str(tmp_path), LAYOUT)
    out = tmp_path / 'genview' / 'views_released' / 'manifest.jsonl'
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0, stdout
    raw = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r['key'] for r in raw] == ['n01/n01_1.JPEG', 'n01/n01_2.JPEG', 'n02/n02_1.JPEG']
    assert all(list(r) == list(FIELDS) for r in raw)
    assert raw[1]['output'] == '../../train_variations/n01/n01_2.png'  # relative to manifest
    for r in raw:
        assert r['source'] == osp.join(src, r['key'])
        assert (r['variation'], r['status'], r['reason']) == (0, 'ok', '')
        assert r['seed'] is None and r['clip_sim'] is None and r['noise_level'] is None
        assert r['fg_ratio'] is None and r['generator'] == f'import:{views}'
    rows = read_manifest(str(out))
    assert rows[2]['output'] == osp.join(views, 'n02', 'n02_1.JPEG')
    assert all(osp.isfile(r['output']) for r in rows)
    lines = stdout.splitlines()
    assert '  source images scanned          6' in lines
    assert '  matched (rows written)         3 (50.00%)' in lines
    assert any(line.startswith('  sources without a view         3') for line in lines)
    for example in ('n01/n01_3.JPEG', 'n02/n02_2.JPEG', 'n03/n03_1.JPEG', 'n01/n01_9.JPEG',
                    'n04/n04_1.JPEG', 'n02/README.txt'):
        assert f'      e.g. {example}' in lines, example
    assert any(line.startswith('  view files without a source    2') for line in lines)
    assert '      e.g. n02/n02_1.JPEG: took n02_1.JPEG, ignored n02_1.png' in lines
    assert os.listdir(out.parent) == ['manifest.jsonl']  # no temporary file left behind

    first = out.read_bytes()
    os.utime(osp.join(views, 'n01', 'n01_1.JPEG'))  # nothing that matters changed
    assert run_tool(capsys, views, '--source-root', src, '--out', out)[0] == 0
    assert out.read_bytes() == first  # byte-identical rerun


def test_fg_ratio_lists_fill_levels(tmp_path, capsys):
    layout = {'n01': ([f'n01_{i}.JPEG' for i in range(4)], [f'n01_{i}.JPEG' for i in range(4)]),
              'n02': (['n02_0.JPEG', 'n02_1.JPEG'], ['n02_0.JPEG', 'n02_1.JPEG'])}
    src, views = make_trees(str(tmp_path), layout)
    lists = tmp_path / 'lists'
    lists.mkdir()
    # as the official tool writes them: "<path> <level>", paths in any form
    (lists / 'fg_ratios_100.txt').write_text(
        f'{src}/n01/n01_0.JPEG 100\n'  # absolute
        'train/n01/n01_1.JPEG 100\n'  # with a prefix
        'n02/n02_0.JPEG 100\n'  # relative to the train folder
        'n09/n09_0.JPEG 100\n')  # an image that is not imported
    (lists / 'fg_ratios_300.txt').write_text(
        'n01/n01_2.JPEG 0.7\n'  # a ratio, not the level
        'n02/n02_0.JPEG 300\n')  # also in fg_ratios_100: conflict -> level unknown
    out = tmp_path / 'm.jsonl'
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out, '--fg-ratios',
                             lists / 'fg_ratios_100.txt', lists / 'fg_ratios_300.txt')
    assert rc == 0, stdout
    got = {r['key']: (r['noise_level'], r['fg_ratio']) for r in read_manifest(str(out))}
    assert got == {'n01/n01_0.JPEG': (100, None), 'n01/n01_1.JPEG': (100, None),
                   'n01/n01_2.JPEG': (300, 0.7), 'n01/n01_3.JPEG': (None, None),
                   'n02/n02_0.JPEG': (None, None), 'n02/n02_1.JPEG': (None, None)}
    assert '  noise levels                   3 of 6 rows, from 2 lists (6 lines)' in stdout
    assert 'listed with different values (level null): 1' in stdout
    assert 'list entries without an imported view: 1' in stdout
    assert '      e.g. n09/n09_0' in stdout


def test_list_folders_match_by_trailing_path(tmp_path):
    path = tmp_path / 'fg_ratios_100.txt'
    path.write_text('/d/train/n01/a.JPEG 100\nn01/b.JPEG 0.3\nc.JPEG 100\nx/n02/d.JPEG 100\n'
                    'n02\\e.JPEG 100\n')  # a Windows path too
    lists = NoiseLevelLists([str(path)])
    assert lists.folders_for('n01') == [['/d/train/n01', 'n01'], ['']]
    # any prefix before the components shared, at every depth of the source folder: with
    # --source-root above train/ a list of '/ssd/ILSVRC2012_img_train/n01/x.JPEG' lines
    # matched nothing (only the deepest group took a prefix), with it at train/ everything
    assert lists.folders_for('imagenet/train/n02') == [['n02', 'x/n02'], ['']]
    assert lists.folders_for('train/n01') == [['/d/train/n01'], ['n01'], ['']]
    assert lists.folders_for('data/n01') == [['/d/train/n01', 'n01'], ['']]
    assert lists.folders_for('') == [['']] and lists.folders_for('n09') == [['']]
    entries = lists.lookup('n01', ['a', 'b', 'c', 'd'])
    assert [(e.level, e.fg_ratio) for e in entries[:3]] == [(100, None), (100, 0.3), (100, None)]
    assert entries[3] is None  # x/n02/d is not in n01
    assert lists.unused() == (2, ['n02/e', 'x/n02/d'])


def test_level_of_a_list_is_the_number_after_fg_ratios():
    """``fg_ratios_100 (1).txt`` (a browser's second download) gave level 1: the last number."""
    assert level_from_filename('/d/fg_ratios_100 (1).txt') == 100
    assert level_from_filename('in1k_fg_ratios_0.txt') == 0
    assert level_from_filename('level300.txt') == 300
    for name, said in (('v2_level300.txt', 'numbers 2, 300'), ('levels.txt', 'no number')):
        with pytest.raises(ValueError, match=f'list name .*{name}.* \\({said}\\): the lists '
                           'are named fg_ratios_<level>.txt'):
            level_from_filename(name)


def test_byte_order_mark_of_a_list_is_not_part_of_its_first_path(tmp_path):
    path = tmp_path / 'fg_ratios_100.txt'  # as Windows Notepad saves UTF-8
    path.write_bytes('n01/a.JPEG 100\nn01/b.JPEG 100\n'.encode('utf-8-sig'))
    lists = NoiseLevelLists([str(path)])
    assert [e.level for e in lists.lookup('n01', ['a', 'b'])] == [100, 100]
    assert lists.unused() == (0, [])


def test_fg_ratio_list_errors(tmp_path):
    bad = tmp_path / 'fg_ratios_100.txt'
    bad.write_text('n01/a.JPEG 100\nn01/b.JPEG 250\n')
    with pytest.raises(ValueError, match=r'fg_ratios_100.txt:2: .*neither the noise level 100'):
        NoiseLevelLists([str(bad)])
    bad.write_text('n01/a.JPEG\n')
    with pytest.raises(ValueError, match=r':1: expected "<image path> <value>"'):
        NoiseLevelLists([str(bad)])
    unnamed = tmp_path / 'fg_ratios.txt'
    unnamed.write_text('n01/a.JPEG 0.5\n')
    with pytest.raises(ValueError, match='fg_ratios_<level>.txt') as exc:
        NoiseLevelLists([str(unnamed)])  # the official unsplit list: how to split it
    assert str(exc.value).endswith('The unsplit fg_ratios.txt of the official '
                                   'calculate_fgratio.py holds every level: split it first with '
                                   'the official tools/clip_pca/generate_ada_noise_level.py, and '
                                   'pass the lists it writes.')
    with pytest.raises(FileNotFoundError, match='fg_ratios_0.txt'):
        NoiseLevelLists([str(tmp_path / 'fg_ratios_0.txt')])


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG'], ['a.JPEG'])})
    rc, _, err = run_tool(capsys, tmp_path / 'nowhere', '--source-root', src, '--out',
                          tmp_path / 'm.jsonl')
    assert rc == 2 and 'views root' in err and 'nowhere' in err and 'not a folder' in err
    rc, _, err = run_tool(capsys, views, '--source-root', tmp_path / 'nowhere', '--out',
                          tmp_path / 'm.jsonl')  # not told to unpack the views into it
    assert rc == 2 and err.count('\n') == 1 and 'source root' in err and 'nowhere' in err
    assert 'not a folder' in err and 'Unpack' not in err and "ImageNet's train/" in err
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    rc, _, err = run_tool(capsys, views, '--source-root', src, '--out', blocker / 'm.jsonl')
    assert rc == 2 and 'Cannot write the manifest' in err and 'a_file' in err

    # nothing matches: exit 1, and an existing manifest is left as it was
    out = tmp_path / 'm.jsonl'
    previous = json.dumps(dict(dict.fromkeys(FIELDS, 'previous'),  # a manifest of ours
                               generator='import:previous')) + '\n'
    out.write_text(previous)
    other = tmp_path / 'other_views'
    touch(str(other / 'n01' / 'b.JPEG'))
    rc, stdout, _ = run_tool(capsys, other, '--source-root', src, '--out', out)
    assert rc == 1 and 'ERROR: no source image has a view' in stdout
    assert out.read_text() == previous
    # the views one level deeper (train_variations/train/n01/...): the summary says where
    touch(str(tmp_path / 'nested' / 'train' / 'n01' / 'a.JPEG'))
    rc, stdout, _ = run_tool(capsys, tmp_path / 'nested', '--source-root', src, '--out', out)
    assert rc == 1 and f"pass {tmp_path / 'nested' / 'train'} as VIEWS_ROOT" in stdout
    assert sorted(os.listdir(tmp_path)) == ['a_file', 'm.jsonl', 'nested', 'other_views',
                                            'train', 'train_variations']


def test_flat_views_get_a_hint_whose_command_works(tmp_path, capsys):
    """Views made with the official script lie flat (output_prefix/<name>); the sources are in
    class folders: nothing matched and nothing said why. The hint's command sorts them."""
    src, _ = make_trees(str(tmp_path), {'n01': (['n01_1.JPEG', 'n01_2.JPEG'], []),
                                        'n02': (['n02_7.JPEG'], [])})
    flat = tmp_path / 'flat'
    for name in ('n01_1.png', 'n01_2.png', 'n02_7.png'):
        touch(str(flat / name))
    out = tmp_path / 'm.jsonl'
    rc, stdout, _ = run_tool(capsys, flat, '--source-root', src, '--out', out)
    assert rc == 1 and f'{flat} holds the views flat' in stdout
    command = stdout.split('cd VIEWS_ROOT && ', 1)[1].split('), then import again')[0]
    run_cmd(['bash', '-c', command], cwd=str(flat))
    rc, stdout, _ = run_tool(capsys, flat, '--source-root', src, '--out', out)
    assert rc == 0 and len(read_manifest(str(out))) == 3


def test_an_unreadable_folder_is_named_not_blamed_on_the_manifest(tmp_path, capsys,
                                                                  monkeypatch):
    """A folder of the trees that cannot be listed (permissions, a mount gone) was reported as
    'Cannot write the manifest ...: choose a writable --out'; nothing is written either way."""
    from genview_mm.apis.import_views import tree_walk
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG'], ['a.JPEG']),
                                            'n02': (['b.JPEG'], ['b.JPEG'])})
    scandir = os.scandir

    def denied(path):
        if osp.basename(path) == 'n02' and str(path).startswith(views):
            raise PermissionError(13, 'Permission denied', path)
        return scandir(path)
    monkeypatch.setattr(tree_walk.os, 'scandir', denied)
    out = tmp_path / 'm.jsonl'
    rc, _, err = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 2 and 'Cannot write' not in err
    assert err.strip() == (f"import_views.py: error: Cannot read {osp.join(views, 'n02')} "
                           '(Permission denied): fix its permissions or its mount and rerun '
                           '(no manifest was written).')
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ['train', 'train_variations']


def test_empty_views_are_counted_and_not_imported(tmp_path, capsys):
    """0-byte views (a full disk while unpacking) get no row and a line of the summary; they
    were imported as views, and training fell back to the original for each."""
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG', 'b.JPEG', 'c.JPEG'], ['a.JPEG']),
                                            'n02': (['d.JPEG'], [])})
    for name in ('n01/b.JPEG', 'n01/c.png', 'n02/d.JPEG'):
        touch(osp.join(views, name), b'')
    out = tmp_path / 'm.jsonl'
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0, stdout
    assert [r['key'] for r in read_manifest(str(out))] == ['n01/a.JPEG']
    lines = stdout.splitlines()
    assert '  matched (rows written)         1 (25.00%)' in lines
    assert '  sources whose view is empty    3  [no row: 0-byte files, as a full disk leaves ' \
        'them; unpack the views again and rerun]' in lines
    for example in ('n01/b.JPEG', 'n01/c.JPEG', 'n02/d.JPEG'):
        assert f'      e.g. {example}' in lines
    os.remove(osp.join(views, 'n01', 'a.JPEG'))  # only empty views: nothing is written
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', tmp_path / 'n.jsonl')
    assert rc == 1 and 'sources whose view is empty    3' in stdout
    assert not (tmp_path / 'n.jsonl').exists()



def test_views_linked_to_one_file_are_counted(tmp_path, capsys):
    """Views filled in with links to one placeholder picture were imported without a word:
    training then paired each of those sources with that one picture. They are still imported
    (two identical sources may share a view) and counted, with the first source named."""
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG', 'b.JPEG', 'c.JPEG'], ['c.JPEG']),
                                            'n02': (['d.JPEG'], [])})
    touch(str(tmp_path / 'placeholder.png'))
    os.makedirs(osp.join(views, 'n02'))
    for name in ('n01/a.png', 'n01/b.png', 'n02/d.png'):
        os.symlink(tmp_path / 'placeholder.png', osp.join(views, name))
    out = tmp_path / 'm.jsonl'
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0, stdout
    assert len(read_manifest(str(out))) == 4
    lines = stdout.splitlines()
    assert "  views linked to one file       2  [imported: links to the same file as another " \
        "source's view (a placeholder?); training pairs each of these sources with that one " \
        'picture]' in lines
    assert '      e.g. n01/b.JPEG: the same file as the view of n01/a.JPEG' in lines
    assert '      e.g. n02/d.JPEG: the same file as the view of n01/a.JPEG' in lines


def test_shared_links_one_source_twice_and_the_memory_bound(tmp_path, capsys, monkeypatch):
    """One source reached through a folder link on both sides is not a shared view; the real
    files of at most LINKS_REMEMBERED linked views are held (a tree of links only, as a Hugging
    Face snapshot makes, held every view's)."""
    from genview_mm.apis.import_views import importer
    src, views = make_trees(str(tmp_path), {'a': (['x.jpg'], [])})
    os.makedirs(tmp_path / 'store')
    os.makedirs(osp.join(views, 'a'))
    touch(str(tmp_path / 'store' / 'x.png'))
    os.symlink(tmp_path / 'store' / 'x.png', osp.join(views, 'a', 'x.png'))
    os.symlink('a', osp.join(src, 'b'))
    os.symlink('a', osp.join(views, 'b'))
    out = tmp_path / 'm.jsonl'
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0 and len(read_manifest(str(out))) == 2
    assert 'linked to one file' not in stdout
    # remembered: the first linked view only; a later pair of links to another file is missed
    monkeypatch.setattr(importer, 'LINKS_REMEMBERED', 1)
    for name in ('c', 'd', 'e'):
        touch(osp.join(src, 'n', f'{name}.jpg'))
    for name, target in (('c', 'p1'), ('d', 'p2'), ('e', 'p2')):
        touch(str(tmp_path / 'store' / f'{target}.png'))
        os.makedirs(osp.join(views, 'n'), exist_ok=True)
        os.symlink(tmp_path / 'store' / f'{target}.png', osp.join(views, 'n', f'{name}.png'))
    report = import_views(views, src, str(tmp_path / 'n.jsonl'), progress=False)
    assert report['matched'] == 5 and report['shared'] == 0 and len(report.linked) == 1


def test_dangling_view_links_are_counted_and_not_imported(tmp_path, capsys):
    """A view that is a link to a file that does not exist (views on a disk that is not
    mounted) gets no row and a line of the summary; on main it was written as an ok row,
    counted as matched, and training fell back to the original for that image."""
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG', 'b.JPEG', 'c.JPEG'],
                                                    ['a.JPEG'])})
    os.symlink(str(tmp_path / 'unmounted' / 'b.JPEG'), osp.join(views, 'n01', 'b.JPEG'))
    os.symlink(str(tmp_path / 'unmounted' / 'c.png'), osp.join(views, 'n01', 'c.png'))
    out = tmp_path / 'm.jsonl'
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0, stdout
    assert [r['key'] for r in read_manifest(str(out))] == ['n01/a.JPEG']
    lines = stdout.splitlines()
    assert '  matched (rows written)         1 (33.33%)' in lines
    assert '  sources whose view is dangling 2  [no row: links to files that do not exist; ' \
        'mount or fix their targets and rerun]' in lines
    assert '      e.g. n01/b.JPEG' in lines and '      e.g. n01/c.JPEG' in lines
    os.remove(osp.join(views, 'n01', 'a.JPEG'))  # only dangling views: nothing is written
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', tmp_path / 'n.jsonl')
    assert rc == 1 and 'sources whose view is dangling 2' in stdout
    assert not (tmp_path / 'n.jsonl').exists()


def test_symlink_cycles_are_skipped_not_walked(tmp_path, capsys, caplog):
    """Links back to a folder above (in either tree) are skipped with a warning: on main the
    walk followed them down to the OS's limit, and two loops in one folder grew exponentially
    (what looked like a hang)."""
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG', 'b.JPEG'], ['a.JPEG', 'b.JPEG']),
                                            'n02': (['c.JPEG'], ['c.JPEG'])})
    for root in (src, views):
        for name in ('up', 'up2'):  # two loops in one folder
            os.symlink('..', osp.join(root, 'n01', name))
        os.symlink(root, osp.join(root, 'n02', 'root'))
    os.symlink(osp.join(views, 'n02'), osp.join(views, 'n01', 'side'))  # no cycle: walked
    out = tmp_path / 'm.jsonl'
    with caplog.at_level('WARNING'):
        rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0, stdout
    assert [r['key'] for r in read_manifest(str(out))] == ['n01/a.JPEG', 'n01/b.JPEG',
                                                            'n02/c.JPEG']
    cycles = sorted(r.getMessage().split(':')[0] for r in caplog.records
                    if 'symlink cycle' in r.getMessage())
    assert cycles == sorted([f'skipping {osp.join(root, *p)}' for root in (src, views)
                             for p in (('n01', 'up'), ('n01', 'up2'), ('n02', 'root'))] +
                            [f'skipping {osp.join(views, "n01", "side", "root")}'])
    extra = [x.split() for x in stdout.splitlines() if 'view files without a source' in x]
    assert extra[0][5] == '1' and '      e.g. n01/side/c.JPEG' in stdout  # walked, no source


def test_names_that_are_not_utf8_are_printed_not_a_traceback(tmp_path):
    """A source without a view whose name is not UTF-8 is an example of the summary; with a
    strict stdout (a UTF-8 locale other than C.UTF-8) printing it raised UnicodeEncodeError
    after the manifest was written, and the tool exited with 1 ("nothing matched")."""
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG'], ['a.JPEG'])})
    touch(os.fsencode(osp.join(src, 'n01')) + b'/caf\xe9.JPEG')
    out = tmp_path / 'm.jsonl'
    run = run_cmd([sys.executable, tool.__file__, views, '--source-root', src,
                   '--out', out, '--no-progress'], env={'PYTHONIOENCODING': 'utf-8:strict'},
                  returncode=None)
    assert run.returncode == 0, run.output
    assert 'Traceback' not in run.output
    assert '      e.g. n01/caf\\udce9.JPEG' in run.stdout.splitlines()
    assert [r['key'] for r in read_manifest(str(out))] == ['n01/a.JPEG']

def test_views_root_that_is_or_holds_the_source_root_is_refused(tmp_path, capsys):
    """The same folder (as typed or through a link), or one inside the other: the sources would
    be imported as their own views (plain SSL); one line naming both, nothing written."""
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG'], ['a.JPEG'])})
    os.symlink(src, tmp_path / 'link')
    out = tmp_path / 'm.jsonl'
    for views_root, source_root, how in (
            (src, src, 'are the same folder'), (tmp_path / 'link', src, 'are the same folder'),
            (osp.join(src, 'n01'), src, 'lies inside the source root'),
            (tmp_path, src, 'contains the source root')):
        rc, stdout, err = run_tool(capsys, views_root, '--source-root', source_root, '--out', out)
        assert rc == 2 and stdout == '', err
        assert len(err.splitlines()) == 1 and how in err, err
        assert f"The views root '{views_root}'" in err and f"'{source_root}'" in err
        assert 'train_variations/' in err and '--source-root' in err
        assert not out.exists()
    assert run_tool(capsys, views, '--source-root', src, '--out', out)[0] == 0  # side by side


def import_peak(root, folders, per_folder):
    layout = {f'c{k:03d}': ([f'{k}_{i}.JPEG' for i in range(per_folder)],
                            [f'{k}_{i}.JPEG' for i in range(per_folder) if i % 7]
                            + [f'x{k}_{i}.png' for i in range(3)])
              for k in range(folders)}
    src, views = make_trees(root, layout)
    gc.collect()
    tracemalloc.start()
    try:
        report = import_views(views, src, osp.join(root, 'm.jsonl'), progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report['sources'] == folders * per_folder and report['extra'] == 3 * folders
    return peak


@pytest.mark.slow  # 6.5 s of CPU: thousands of files under tracemalloc
def test_memory_bounded_by_largest_folder(tmp_path):
    small = import_peak(str(tmp_path / 'a'), 10, 100)
    big = import_peak(str(tmp_path / 'b'), 40, 100)  # 4x the files, same largest folder
    assert big < 1.3 * small, (small, big)
    one_big_folder = import_peak(str(tmp_path / 'c'), 1, 500)
    assert one_big_folder > 2 * small, (small, one_big_folder)  # it does grow with the folder


def test_level_lists_are_compact(tmp_path):
    path = tmp_path / 'fg_ratios_200.txt'
    n = 20000
    with open(path, 'w') as f:
        f.writelines(f'/data/imagenet/train/n{k // 500:08d}/n{k // 500:08d}_{k}.JPEG 200\n'
                     for k in range(n))
    gc.collect()
    tracemalloc.start()
    try:
        lists = NoiseLevelLists([str(path)], chunk=4096)
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert lists.num_entries == n
    assert kept / n < 50, kept / n  # bytes per listed image (a dict of paths: ~200)
    entries = lists.lookup('n00000003', ['n00000003_1500', 'n00000003_1499', 'missing'])
    assert [e.level if e else None for e in entries] == [200, None, None]


def test_tool_does_not_import_torch(tmp_path):
    """The tool needs NumPy only: genview_mm/__init__ (torch, mmcv, mmpretrain) costs 1.2 GB."""
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG'], ['a.JPEG'])})
    code = ('import sys; sys.path.insert(0, "tools"); import import_views as t; '
            'rc = t.main(sys.argv[1:]); print("torch loaded:", "torch" in sys.modules); '
            'sys.exit(rc)')
    proc = run_cmd([sys.executable, '-c', code, views, '--source-root', src, '--out',
                    tmp_path / 'm.jsonl'], timeout=120)
    assert 'torch loaded: False' in proc.stdout
    assert 'matched (rows written)         1' in proc.stdout
    assert 'import views' in proc.stderr  # the tqdm bar
    assert len(read_manifest(str(tmp_path / 'm.jsonl'))) == 1


@pytest.mark.parametrize('left', ['settings', 'shards'])
def test_an_import_into_a_generation_runs_folder_is_refused(tmp_path, capsys, left):
    """The docs' import command writes data/genview/views/manifest.jsonl, the folder
    generate_views.py writes by default: an import there replaced the generation's merged
    manifest (exit 0) and training took the released views instead, with no word. Refused,
    exit 2, the manifest left as it was."""
    from genview_mm.apis.generation.settings import SETTINGS_NAME
    from genview_mm.apis.generation.shards import SHARDS_DIR
    src, views = make_trees(str(tmp_path), LAYOUT)
    run = tmp_path / 'genview' / 'views'
    os.makedirs(run / SHARDS_DIR)
    if left == 'settings':
        os.rmdir(run / SHARDS_DIR)
        (run / SETTINGS_NAME).write_text('{}\n')
    row = dict(zip(FIELDS, [osp.join(src, 'n01/n01_1.JPEG'), 'n01/n01_1.JPEG', 0, 'x.jpg']))
    (run / 'manifest.jsonl').write_text(json.dumps(row) + '\n')
    before = (run / 'manifest.jsonl').read_bytes()
    for out in (run / 'manifest.jsonl', run):
        rc, _, err = run_tool(capsys, views, '--source-root', src, '--out', out, '--overwrite')
        assert rc == 2
        assert err == (f'import_views.py: error: {run} holds a run of tools/generate_views.py '
                       f'({SETTINGS_NAME} or {SHARDS_DIR}): importing there would replace its '
                       'merged manifest and train on the released views instead. Pass another '
                       '--out (e.g. data/genview/views_released/manifest.jsonl) and point '
                       'genview.manifest at it.\n')
        assert (run / 'manifest.jsonl').read_bytes() == before


def test_outputs_climbing_out_resolve_whatever_path_reaches_the_manifest(tmp_path, capsys):
    """An in-place import (outputs ``../..``) written through a linked folder was spelled from
    the link's path, and read through the real folder (or a link to the manifest, which is read
    from its target's folder) it climbed to the wrong place: every view reported missing.
    The outputs are spelled from the real folders now, and read from the real folder."""
    real = tmp_path / 'real'
    src, views = make_trees(str(real / 'imagenet'), LAYOUT)
    (real / 'genview' / 'views').mkdir(parents=True)
    (tmp_path / 'linked').symlink_to(real / 'genview')
    out = tmp_path / 'linked' / 'views' / 'manifest.jsonl'
    assert run_tool(capsys, views, '--source-root', src, '--out', out)[0] == 0
    (tmp_path / 'elsewhere').mkdir()
    (tmp_path / 'elsewhere' / 'm.jsonl').symlink_to(out)
    for spelling in (out, real / 'genview' / 'views' / 'manifest.jsonl',
                     tmp_path / 'elsewhere' / 'm.jsonl'):
        rows = read_manifest(str(spelling))
        assert len(rows) == 3 and all(osp.isfile(r['output']) for r in rows), spelling
        assert rows[2]['output'] == osp.join(views, 'n02', 'n02_1.JPEG')


def test_an_empty_out_is_refused_not_read_as_the_working_folder(tmp_path, capsys, monkeypatch):
    """``--out "$MANIFEST"`` with the variable unset: the guard checked '' (not there) and the
    import wrote ./manifest.jsonl over a user's file of that name."""
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG'], ['a.JPEG'])})
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'manifest.jsonl').write_text('my precious list\n')
    with pytest.raises(SystemExit) as exc:
        run_tool(capsys, views, '--source-root', src, '--out', '')
    assert exc.value.code == 2 and '--out is empty' in capsys.readouterr().err
    assert (tmp_path / 'manifest.jsonl').read_text() == 'my precious list\n'


def test_views_that_are_their_own_sources_get_no_row(tmp_path, capsys):
    """A class folder of the views linked to the source's (to fill in classes whose views
    failed to download) or a view linked to its source image passed the roots check: the
    sources were imported as their own views, 100% matched, and their pairs were plain SSL."""
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG'], []), 'n02': (['b.JPEG'], []),
                                            'n03': (['c.JPEG'], ['c.JPEG'])})
    os.symlink(osp.join(src, 'n01'), osp.join(views, 'n01'))
    os.makedirs(osp.join(views, 'n02'), exist_ok=True)
    os.symlink(osp.join(src, 'n02', 'b.JPEG'), osp.join(views, 'n02', 'b.JPEG'))
    out = tmp_path / 'm.jsonl'
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0, stdout
    assert [r['key'] for r in read_manifest(str(out))] == ['n03/c.JPEG']
    lines = stdout.splitlines()
    assert '  matched (rows written)         1 (33.33%)' in lines
    assert any(line.startswith('  views that are their sources   2  [no row: links to the '
                               'source image itself') for line in lines), stdout
    assert '      e.g. n01/a.JPEG' in lines and '      e.g. n02/b.JPEG' in lines


def test_views_copied_from_their_sources_get_no_row(tmp_path, capsys):
    """A views folder copied from the sources (cp -r train/n01 train_variations/, not a link)
    was imported: every pair two views of the original. A view of the source's size but other
    bytes is a view."""
    import shutil
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG', 'b.JPEG'], []),
                                            'n02': (['c.JPEG'], ['c.JPEG'])})
    shutil.copytree(osp.join(src, 'n01'), osp.join(views, 'n01'))
    same_size = bytes(b ^ 1 for b in open(osp.join(src, 'n01', 'b.JPEG'), 'rb').read())
    touch(osp.join(views, 'n01', 'b.JPEG'), same_size)  # its source's size: another picture
    out = tmp_path / 'm.jsonl'
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0, stdout
    assert [r['key'] for r in read_manifest(str(out))] == ['n01/b.JPEG', 'n02/c.JPEG']
    lines = stdout.splitlines()
    assert any(line.startswith('  views that are their sources   1  [no row: links to the '
                               'source image itself, or copies of it') for line in lines), stdout
    assert '      e.g. n01/a.JPEG' in lines


def test_an_import_of_a_copy_of_the_sources_stops_early(tmp_path, capsys, monkeypatch):
    """A views folder that is a copy of train/ was read whole, view by view (each compared
    with its source to the last byte: hours for 1.28M images), to write no row. The import
    stops once the first views are all copies, with no manifest."""
    import shutil

    from genview_mm.apis.import_views import importer
    monkeypatch.setattr(importer, 'COPIES_STOP', 3)
    src, views = make_trees(str(tmp_path), {f'n{i:02d}': ([f'{i}.JPEG'], []) for i in range(6)})
    shutil.copytree(src, views)
    out = tmp_path / 'm.jsonl'
    rc, stdout, err = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 2 and not out.exists()
    assert err.strip() == (f'import_views.py: error: The first 3 views in {views} are their '
                           'source images (links to them, or copies): VIEWS_ROOT is the source '
                           'folder or a copy of it. Pass the folder of the released views '
                           '(train_variations/) as VIEWS_ROOT; no manifest was written.')


def test_verify_leaves_out_views_that_do_not_decode(tmp_path, capsys):
    """A view cut short by a stopped unpack (not empty) was imported as ok; training then
    fell back to the original for it. --verify decodes each view and leaves those out."""
    from PIL import Image
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG', 'b.JPEG', 'c.JPEG'], [])})
    whole = osp.join(views, 'n01', 'a.JPEG')
    os.makedirs(osp.dirname(whole))
    Image.new('RGB', (64, 48), (200, 30, 30)).save(whole, quality=90)
    data = open(whole, 'rb').read()
    touch(osp.join(views, 'n01', 'b.JPEG'), data[:len(data) // 3])  # cut short
    touch(osp.join(views, 'n01', 'c.png'), b'\x89PNG garbage')
    out = tmp_path / 'm.jsonl'
    assert run_tool(capsys, views, '--source-root', src, '--out', out)[0] == 0
    assert len(read_manifest(str(out))) == 3  # without --verify: only empty files are found
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out, '--verify')
    assert rc == 0, stdout
    assert [r['key'] for r in read_manifest(str(out))] == ['n01/a.JPEG']
    lines = stdout.splitlines()
    assert '  views that do not decode       2  [no row (--verify): cut short or damaged; ' \
        'unpack the views again and rerun]' in lines
    assert '      e.g. n01/b.JPEG' in lines and '      e.g. n01/c.JPEG' in lines


def test_a_usable_view_is_taken_before_an_unusable_one_of_the_same_source(tmp_path, capsys):
    """x.JPEG (0 bytes) beside x.png: the empty one was taken (the source's extension), so the
    source got no row although it had a usable view. Of x.jpg beside x.JPG, x.JPG was taken."""
    src, views = make_trees(str(tmp_path), {'n01': (['x.JPEG', 'y.jpg'],
                                                    ['x.png', 'y.JPG', 'y.jpg'])})
    touch(osp.join(views, 'n01', 'x.JPEG'), b'')
    out = tmp_path / 'm.jsonl'
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0, stdout
    rows = read_manifest(str(out))
    assert [(r['key'], osp.basename(r['output'])) for r in rows] == [
        ('n01/x.JPEG', 'x.png'), ('n01/y.jpg', 'y.jpg')]
    lines = stdout.splitlines()
    assert '      e.g. n01/x.JPEG: took x.png, ignored x.JPEG' in lines, stdout
    assert '      e.g. n01/y.jpg: took y.jpg, ignored y.JPG' in lines
    assert 'sources whose view is empty' not in stdout
    assert match_folder(['y.jpg'], ['y.JPG', 'y.jpg']).pairs == [('y.jpg', 'y.jpg')]
    # every view of a source unusable: the example said 'took x.JPEG' of a source with no row
    touch(osp.join(views, 'n01', 'x.png'), b'')
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0, stdout
    assert [r['key'] for r in read_manifest(str(out))] == ['n01/y.jpg']
    assert '      e.g. n01/x.JPEG: none of x.JPEG, x.png is usable (no row)' in \
        stdout.splitlines(), stdout


def test_an_ext_that_cannot_match_is_refused_or_explained(tmp_path, capsys):
    """--ext txt, jpg,png or '*' matched nothing and blamed the folder layout (exit 1); --ext
    .jpg for views named .JPEG did the same, with no word about --ext."""
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG', 'b.JPEG'],
                                                    ['a.JPEG', 'b.JPEG'])})
    out = tmp_path / 'm.jsonl'
    for ext in ('txt', 'jpg,png', '*'):
        rc, _, err = run_tool(capsys, views, '--source-root', src, '--out', out, '--ext', ext)
        assert rc == 2 and err.count('\n') == 1, (ext, err)
        assert 'is not an image extension, so no view would match' in err, err
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out, '--ext', '.jpg')
    assert rc == 1 and stdout.splitlines()[-1] == (
        '--ext .jpg left out 2 files among the views (e.g. n01/a.JPEG): if the views have '
        'another extension, pass it, or --ext any.'), stdout
    assert not out.exists()
    assert run_tool(capsys, views, '--source-root', src, '--out', out, '--ext', ' ANY ')[0] == 0
    assert len(read_manifest(str(out))) == 2


def test_hidden_files_are_skipped_on_both_sides_and_hidden_folders_walked(tmp_path, capsys):
    """macOS's ._x.JPEG beside each x.JPEG (in both trees after a copy) was counted as a
    source and imported as a view pair; the training datasets and the generation skip them.
    They train on the images of a hidden folder: those are imported."""
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG', '._a.JPEG'],
                                                    ['a.JPEG', '._a.JPEG']),
                                            '.cache': (['b.JPEG'], ['b.JPEG'])})
    out = tmp_path / 'm.jsonl'
    rc, stdout, _ = run_tool(capsys, views, '--source-root', src, '--out', out)
    assert rc == 0, stdout
    assert [r['key'] for r in read_manifest(str(out))] == ['.cache/b.JPEG', 'n01/a.JPEG']
    assert '  source images scanned          2' in stdout.splitlines()
    assert 'view files without a source' not in stdout


def test_a_terminated_import_leaves_no_temporary_file(tmp_path):
    """SIGTERM (a job's time limit) ended the tool at once and left the manifest's partial
    temporary file beside it; the tool now exits through its clean-up (status 143)."""
    import signal
    import subprocess
    src, views = make_trees(str(tmp_path), {'n01': (['a.JPEG'], ['a.JPEG']),
                                            'n02': (['b.JPEG'], ['b.JPEG'])})
    out = tmp_path / 'out' / 'm.jsonl'
    out.parent.mkdir()
    code = ('import runpy, sys, time; sys.path.insert(0, "tools"); import import_views; '
            'import_views.load_package(); '
            'import genview_mm.apis.import_views.importer as im; '
            'im.image_file_ok = lambda path, **k: "n02" not in path or '
            '(print("walking", flush=True), time.sleep(60)); '
            'sys.argv = ["import_views.py"] + sys.argv[1:]; '
            'runpy.run_path("tools/import_views.py", run_name="__main__")')
    from helpers import tool_env
    proc = subprocess.Popen([sys.executable, '-c', code, views, '--source-root', src, '--out',
                             str(out), '--verify', '--no-progress'], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=tool_env(),
                            cwd=osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
    try:
        assert proc.stdout.readline() == 'walking\n'  # n01's row is in the temporary file
        assert len(os.listdir(out.parent)) == 1 and \
            os.listdir(out.parent)[0].startswith('.m.jsonl.tmp')
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143, proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    assert os.listdir(out.parent) == []


def test_a_ratio_of_zero_in_the_level_0_list_is_a_ratio():
    """``fg_ratios_0.txt`` with the ratio 0.0 of an image with no foreground: the value was
    taken for the level repeated (fg_ratio null); the level written as a whole number is."""
    from genview_mm.apis.import_views import ratio_from_value
    assert ratio_from_value('0.0', 0) == 0.0 and ratio_from_value('0.25', 0) == 0.25
    assert ratio_from_value('0', 0) is None and ratio_from_value('100', 100) is None
    assert ratio_from_value('100.0', 100) is None  # not a ratio: the level
    with pytest.raises(ValueError, match="second column '7' is neither the noise level 100"):
        ratio_from_value('7', 100)
