"""A tool replaces only what it wrote: the shared rule (genview_mm.utils.file_safety) and each
tool that writes a file a user may already have (import_views.py --out, convert_checkpoint.py
OUT, the PCA tools' --out and contact sheet, make_toy_coco.py's annotations.json and images).
A refusal is one line, exit 2, naming what would be lost and the flag, and leaves the file byte
for byte as it was."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch

from genview_mm.foreground import ForegroundPCA
from helpers import load_tool, run_script, write_class_folders

USER_LIST = b'n01440764/a.JPEG 0\nn01440764/b.JPEG 0\n'


def user_file(path, data=USER_LIST) -> str:
    os.makedirs(osp.dirname(str(path)), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)
    return str(path)


def read(path) -> bytes:
    with open(path, 'rb') as f:
        return f.read()


def one_error_line(err: str, tool: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f'{tool}: error: '), err
    return lines[0]


def test_check_replace_rule(tmp_path):
    from genview_mm.utils.file_safety import ReplaceRefused, check_replace
    never = lambda path: False  # noqa: E731
    check_replace(str(tmp_path / 'missing.txt'), never, 'a manifest', '--overwrite')
    check_replace(user_file(tmp_path / 'empty.txt', b''), never, 'a manifest', '--overwrite')
    theirs = user_file(tmp_path / 'meta' / 'train.txt')
    check_replace(theirs, lambda path: True, 'a manifest', '--overwrite')  # ours
    check_replace(theirs, never, 'a manifest', '--overwrite', force=True)
    with pytest.raises(ReplaceRefused) as err:
        check_replace(theirs, never, 'a GenView manifest', '--overwrite')
    msg = str(err.value)
    assert '\n' not in msg and theirs in msg and 'not a GenView manifest' in msg
    assert f'its {len(USER_LIST)} bytes would be lost' in msg and 'pass --overwrite' in msg

    def broken(path):
        raise ValueError('cannot parse')
    with pytest.raises(ReplaceRefused):  # a recogniser that fails: not ours
        check_replace(theirs, broken, 'a manifest', '--force')
    with pytest.raises(ReplaceRefused, match='is a folder'):
        check_replace(str(tmp_path), never, 'a manifest', '--overwrite')
    with pytest.raises(ReplaceRefused, match='is a folder'):  # force writes files, not folders
        check_replace(str(tmp_path), never, 'a manifest', '--overwrite', force=True)


def test_same_file_through_other_names(tmp_path, monkeypatch):
    from genview_mm.utils.file_safety import same_file
    a = user_file(tmp_path / 'ckpt' / 'epoch_1.pth')
    os.symlink(a, tmp_path / 'link.pth')
    os.link(a, tmp_path / 'hard.pth')
    monkeypatch.chdir(tmp_path)
    for other in ('ckpt/epoch_1.pth', 'ckpt/../ckpt/epoch_1.pth', 'link.pth', 'hard.pth'):
        assert same_file(a, other), other
    assert not same_file(a, user_file(tmp_path / 'other.pth'))
    assert not same_file(a, 'missing.pth') and not same_file('missing.pth', 'missing.pth')


# ---- tools/import_views.py --out -------------------------------------------------------------
def _trees(root):
    for sub in ('train/n0', 'train_variations/n0'):
        os.makedirs(osp.join(root, sub))
        with open(osp.join(root, sub, 'a.jpg'), 'wb') as f:
            f.write(sub.encode())  # a 0-byte view is not imported, nor a copy of its source
    return osp.join(root, 'train_variations'), osp.join(root, 'train')


def test_import_views_refuses_to_replace_a_user_file(tmp_path, capsys):
    tool = load_tool('import_views')
    views, source = _trees(str(tmp_path))
    target = user_file(tmp_path / 'meta' / 'train.txt')
    rc = tool.main([views, '--source-root', source, '--out', target, '--no-progress'])
    line = one_error_line(capsys.readouterr().err, 'import_views.py')
    assert rc == 2 and read(target) == USER_LIST
    assert 'not a manifest of imported views' in line and '--overwrite' in line and \
        'bytes' in line

    # a manifest it wrote is replaced on a rerun; --overwrite replaces a foreign file
    out = str(tmp_path / 'views.jsonl')
    assert tool.main([views, '--source-root', source, '--out', out, '--no-progress']) == 0
    first = read(out)
    # a manifest of generated views (merge_manifests.py --out) was replaced as if it were one
    # of this tool's: its seeds, noise levels and CLIP similarities lost, training on the
    # released views instead
    generated = tmp_path / 'merged.jsonl'
    generated.write_bytes(first.replace(b'"generator": "import:', b'"generator": "unclip:'))
    before = read(str(generated))
    assert tool.main([views, '--source-root', source, '--out', str(generated),
                      '--no-progress']) == 2
    line = one_error_line(capsys.readouterr().err, 'import_views.py')
    assert 'not a manifest of imported views' in line and read(str(generated)) == before
    assert tool.main([views, '--source-root', source, '--out', out, '--no-progress']) == 0
    assert read(out) == first
    assert tool.main([views, '--source-root', source, '--out', target, '--no-progress',
                      '--overwrite']) == 0
    assert tool.is_manifest(target) and read(target).count(b'\n') == first.count(b'\n')


def test_import_views_keeps_generated_rows_that_follow_imported_ones(tmp_path, capsys):
    """A manifest of imported views with generated rows appended (manifests concatenated) was
    replaced as one of this tool's, since only its first row was looked at: the generated rows
    were lost without --overwrite."""
    tool = load_tool('import_views')
    views, source = _trees(str(tmp_path))
    out = str(tmp_path / 'combined.jsonl')
    assert tool.main([views, '--source-root', source, '--out', out, '--no-progress']) == 0
    imported = read(out)
    with open(out, 'ab') as f:
        f.write(imported.replace(b'"generator": "import:', b'"generator": "unclip:')
                .replace(b'"variation": 0', b'"variation": 1'))
    before = read(out)
    assert tool.main([views, '--source-root', source, '--out', out, '--no-progress']) == 2
    line = one_error_line(capsys.readouterr().err, 'import_views.py')
    assert 'not a manifest of imported views' in line and read(out) == before
    assert not tool.is_manifest(out)
    with open(out, 'wb') as f:  # imported rows only, blank lines among them: a rerun's
        f.write(imported + b'\n' + imported)
    assert tool.is_manifest(out)


def test_import_views_out_folder_gets_its_manifest_inside(tmp_path, capsys):
    """``--out newdir/`` (not there yet) wrote a file named ``newdir``; an existing folder was
    refused. Both get ``manifest.jsonl`` inside, as the importer's docstring says."""
    tool = load_tool('import_views')
    views, source = _trees(str(tmp_path))
    (tmp_path / 'there').mkdir()
    for out in (str(tmp_path / 'newdir') + '/', str(tmp_path / 'there')):
        assert tool.main([views, '--source-root', source, '--out', out, '--no-progress']) == 0
        assert tool.is_manifest(osp.join(out, 'manifest.jsonl'))
    capsys.readouterr()

def test_out_that_is_a_link_to_nothing_is_one_line(tmp_path, capsys):
    """An --out that is a dangling symlink: one line (on main: a FileNotFoundError traceback
    from os.path.getsize); --overwrite replaces the link."""
    tool = load_tool('import_views')
    views, source = _trees(str(tmp_path))
    out = tmp_path / 'manifest.jsonl'
    os.symlink(tmp_path / 'unmounted' / 'manifest.jsonl', out)
    rc = tool.main([views, '--source-root', source, '--out', str(out), '--no-progress'])
    line = one_error_line(capsys.readouterr().err, 'import_views.py')
    assert rc == 2 and osp.islink(out)
    assert 'is a link to' in line and 'does not exist' in line and '--overwrite' in line
    assert tool.main([views, '--source-root', source, '--out', str(out), '--no-progress',
                      '--overwrite']) == 0
    assert not osp.islink(out) and tool.is_manifest(str(out))


# ---- tools/convert_checkpoint.py IN OUT --------------------------------------------------------
@pytest.mark.parametrize('how', ['same path', 'symlink', 'relative path'])
def test_convert_checkpoint_refuses_output_equal_to_input(tmp_path, capsys, monkeypatch, how):
    src = str(tmp_path / 'work' / 'epoch_200.pth')
    os.makedirs(osp.dirname(src))
    torch.save({'state_dict': {'backbone.w': torch.ones(2), 'head.w': torch.ones(3)},
                'optimizer': {'lr': 0.1}, 'meta': {'epoch': 200}}, src)
    before = read(src)
    dst = {'same path': src, 'symlink': str(tmp_path / 'link.pth'),
           'relative path': 'work/../work/epoch_200.pth'}[how]
    if how == 'symlink':
        os.symlink(src, dst)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        run_script('convert_checkpoint.py', src, dst)
    assert exit_.value.code == 2 and read(src) == before
    line = one_error_line(capsys.readouterr().err, 'convert_checkpoint.py')
    assert 'is the input checkpoint' in line and 'would be lost' in line


def test_convert_checkpoint_refuses_a_folder_as_output_first(tmp_path, capsys, monkeypatch):
    """A folder as dst: one line and exit 2 before any work (it was an IsADirectoryError
    traceback after the conversion)."""
    from genview_mm.evaluation import convert
    src = str(tmp_path / 'epoch_200.pth')
    torch.save({'state_dict': {'backbone.w': torch.ones(2)}}, src)
    read_calls = []
    monkeypatch.setattr(convert, 'read_checkpoint', lambda path: read_calls.append(path))
    out_dir = tmp_path / 'checkpoints'
    out_dir.mkdir()
    with pytest.raises(SystemExit) as exit_:
        run_script('convert_checkpoint.py', src, str(out_dir))
    assert exit_.value.code == 2 and read_calls == [] and os.listdir(out_dir) == []
    line = one_error_line(capsys.readouterr().err, 'convert_checkpoint.py')
    assert line == (f'convert_checkpoint.py: error: {out_dir} is a folder: give the output '
                    f'file, e.g. {out_dir / "backbone.pth"}')


# ---- the PCA tools: --out and the contact sheet ------------------------------------------------
def fit_args(tmp_path, tiny_clip_path, out, *extra):
    images = str(tmp_path / 'images')
    if not osp.isdir(images):
        write_class_folders(images, 2, size=32)
    return [images, '--out', str(out), '--encoder', tiny_clip_path, '--num-images', '4',
            '--batch-size', '4', '--num-workers', '0', '--sheet-images', '2', '--device',
            'cpu', *extra]


def test_fit_pca_keeps_user_files_unless_overwrite(tmp_path, capsys, tiny_clip_path):
    tool = load_tool('fit_foreground_pca')
    out = tmp_path / 'pca' / 'generator.pth'
    photo = user_file(tmp_path / 'pca' / 'generator.png', b'\x89PNG my own picture')
    assert tool.main(fit_args(tmp_path, tiny_clip_path, out)) == 2
    line = one_error_line(capsys.readouterr().err, 'fit_foreground_pca.py')
    assert photo in line and 'not a contact sheet' in line and '--overwrite' in line
    assert read(photo) == b'\x89PNG my own picture' and not osp.exists(out)

    notes = user_file(tmp_path / 'notes.pth', b'my notes')
    assert tool.main(fit_args(tmp_path, tiny_clip_path, notes, '--sheet',
                              str(tmp_path / 's.png'))) == 2
    assert 'not a foreground PCA file' in one_error_line(capsys.readouterr().err,
                                                         'fit_foreground_pca.py')
    assert read(notes) == b'my notes' and not osp.exists(tmp_path / 's.png')

    # with --overwrite both are replaced; a rerun replaces its own files without the flag
    assert tool.main(fit_args(tmp_path, tiny_clip_path, out, '--overwrite')) == 0
    assert ForegroundPCA.load(str(out)).num_images == 4 and read(photo)[:4] == b'\x89PNG'
    assert tool.main(fit_args(tmp_path, tiny_clip_path, out, '--seed', '1')) == 0
    capsys.readouterr()


def test_fit_pca_keeps_an_imported_official_vector_unless_overwrite(tmp_path, capsys,
                                                                    tiny_clip_path):
    """The fit replaced any PCA file at --out, the authors' vector imported by
    import_official_pca.py too (its docstring: only files this tool wrote)."""
    np.save(tmp_path / 'pca_vectors.npy', np.ones((32, 1), np.float32) / np.sqrt(32))
    out = tmp_path / 'official.pth'
    assert load_tool('import_official_pca').main(
        [str(tmp_path / 'pca_vectors.npy'), '--out', str(out), '--encoder', tiny_clip_path,
         '--device', 'cpu']) == 0
    imported = read(out)
    assert ForegroundPCA.load(str(out)).source == 'official:pca_vectors.npy'
    capsys.readouterr()
    tool = load_tool('fit_foreground_pca')
    assert tool.main(fit_args(tmp_path, tiny_clip_path, out)) == 2
    line = one_error_line(capsys.readouterr().err, 'fit_foreground_pca.py')
    assert str(out) in line and 'fitted by this tool' in line and '--overwrite' in line
    assert read(out) == imported
    assert tool.main(fit_args(tmp_path, tiny_clip_path, out, '--overwrite')) == 0
    assert ForegroundPCA.load(str(out)).source == 'fit'
    assert tool.main(fit_args(tmp_path, tiny_clip_path, out, '--seed', '1')) == 0  # its own
    capsys.readouterr()


def test_fit_pca_sheet_encodes_at_most_batch_size_images_a_call(tmp_path, capsys,
                                                                 tiny_clip_path, monkeypatch):
    """The contact sheet encoded all --sheet-images in one call (1000 images through ViT-H: out
    of memory after the fit was saved, exit 1); now --batch-size images a call."""
    from genview_mm.models.encoders.clip_encoder import CLIPPatchEncoder
    sizes, forward = [], CLIPPatchEncoder.forward
    monkeypatch.setattr(CLIPPatchEncoder, 'forward', lambda self, x: sizes.append(len(x)) or
                        forward(self, x))
    out = tmp_path / 'pca.pth'
    args = fit_args(tmp_path, tiny_clip_path, out)
    args[args.index('--batch-size') + 1] = '2'
    args[args.index('--sheet-images') + 1] = '4'
    assert load_tool('fit_foreground_pca').main(args) == 0
    assert sizes and max(sizes) == 2 and osp.isfile(tmp_path / 'pca.png')
    capsys.readouterr()


@pytest.mark.parametrize('how', ['png out', 'same sheet'])
def test_fit_pca_refuses_a_sheet_over_its_own_out(tmp_path, capsys, tiny_clip_path, how):
    """``--out pca.png`` (the sheet defaults to --out with .png) or ``--sheet`` equal to
    ``--out``: the sheet was drawn over the saved fit and the tool said 'saved' (the fit of
    hours lost; the file no PCA file). Now one line before the fit, even with --overwrite."""
    tool = load_tool('fit_foreground_pca')
    out = tmp_path / ('pca.png' if how == 'png out' else 'pca.pth')
    extra = ['--sheet', str(tmp_path / '.' / out.name)] if how == 'same sheet' else []
    assert tool.main(fit_args(tmp_path, tiny_clip_path, out, *extra, '--overwrite')) == 2
    assert one_error_line(capsys.readouterr().err, 'fit_foreground_pca.py') == (
        f'fit_foreground_pca.py: error: the contact sheet and the PCA file would both be '
        f'written to {out}: give --out a .pth name, or --sheet another path')
    assert not osp.exists(out)


def test_fit_pca_refuses_a_sheet_in_its_image_folder_or_in_place_of_a_folder(tmp_path, capsys,
                                                                             tiny_clip_path):
    """``--out IMAGES/fg.pth``: the default sheet IMAGES/fg.png was written among the images,
    and the next fit (or generation) read it as one (13 images, another alpha). ``--sheet`` as
    the folder --out is written into: the fit ran and was saved, then the sheet failed (exit
    1, 'Is a directory'). Both are one line before the fit now."""
    tool = load_tool('fit_foreground_pca')
    images = tmp_path / 'images'
    assert tool.main(fit_args(tmp_path, tiny_clip_path, images / 'fg.pth')) == 2
    assert one_error_line(capsys.readouterr().err, 'fit_foreground_pca.py') == (
        f'fit_foreground_pca.py: error: the contact sheet {images / "fg.png"} would be written '
        f'inside the source folder {images}, where a later fit or generation would read it as '
        'an image: give --sheet (or --out) a path outside it')
    assert not osp.exists(images / 'fg.pth') and not osp.exists(images / 'fg.png')
    out = tmp_path / 'o2' / 'fg.pth'
    assert tool.main(fit_args(tmp_path, tiny_clip_path, out, '--sheet',
                              str(tmp_path / 'o2'))) == 2
    assert one_error_line(capsys.readouterr().err, 'fit_foreground_pca.py') == (
        f'fit_foreground_pca.py: error: --sheet {tmp_path / "o2"} is the folder the PCA file '
        f'{out} goes into: give --sheet a file path (.png)')
    assert not osp.exists(tmp_path / 'o2')


def test_import_official_pca_keeps_a_user_out_and_refuses_a_wrong_width(tmp_path, capsys,
                                                                         tiny_clip_path):
    tool = load_tool('import_official_pca')
    v = np.ones((32, 1), np.float32) / np.sqrt(32)
    np.save(tmp_path / 'pca_vectors.npy', v)
    np.save(tmp_path / 'vit_h.npy', np.ones((1280, 1), np.float32))
    base = ['--encoder', tiny_clip_path, '--device', 'cpu']
    notes = user_file(tmp_path / 'notes.pth', b'my notes')
    assert tool.main([str(tmp_path / 'pca_vectors.npy'), '--out', notes, *base]) == 2
    assert 'not a foreground PCA file' in one_error_line(capsys.readouterr().err,
                                                         'import_official_pca.py')
    assert read(notes) == b'my notes'

    # the vector of another encoder: one line, exit 2 (was an uncaught ForegroundPCAError)
    out = str(tmp_path / 'p.pth')
    assert tool.main([str(tmp_path / 'vit_h.npy'), '--out', out, *base]) == 2
    line = one_error_line(capsys.readouterr().err, 'import_official_pca.py')
    assert 'has 1280 entries' in line and '32-d tokens' in line and not osp.exists(out)

    # a zero vector, or the mean given as the direction: one line naming --mean, exit 2
    np.save(tmp_path / 'zeros.npy', np.zeros((32, 1), np.float32))
    assert tool.main([str(tmp_path / 'zeros.npy'), '--out', out, *base]) == 2
    line = one_error_line(capsys.readouterr().err, 'import_official_pca.py')
    assert f"{str(tmp_path / 'zeros.npy')!r} is all zeros" in line and 'uniform' in line
    np.save(tmp_path / 'mean_vectors.npy', np.full(32, 0.5, np.float32))  # norm 2.828
    assert tool.main([str(tmp_path / 'mean_vectors.npy'), '--out', out, *base]) == 2
    line = one_error_line(capsys.readouterr().err, 'import_official_pca.py')
    assert 'has norm 2.828, not 1' in line and 'is it mean_vectors.npy?' in line
    assert '--mean' in line and not osp.exists(out)
    np.save(tmp_path / 'near.npy', v * (1 + 5e-4))  # float rounding is no reason to refuse
    assert tool.main([str(tmp_path / 'near.npy'), '--out', out, *base]) == 0


def test_make_toy_coco_keeps_a_different_annotations_json(tmp_path, capsys, monkeypatch):
    """tools/make_toy_coco.py replaced OUT/annotations.json silently; now one that differs is
    refused (exit 2, nothing written) unless --overwrite, and an identical rerun succeeds."""
    main = load_tool('make_toy_coco').main
    out = tmp_path / 'coco'
    ann = user_file(out / 'annotations.json', b'{"images": [], "mine": true}')
    assert main([str(out), '--num-images', '3']) == 2
    assert one_error_line(capsys.readouterr().err, 'make_toy_coco.py') == (
        f'make_toy_coco.py: error: {ann} exists and differs from the annotations these '
        "arguments give (another --num-images, --size or --seed, or not this tool's): pass "
        '--overwrite to replace it, or another output folder (nothing was written)')
    assert read(ann) == b'{"images": [], "mine": true}'
    assert os.listdir(out) == ['annotations.json']  # no images/ either
    assert main([str(out), '--num-images', '3', '--overwrite']) == 0
    written = read(ann)
    assert [im['file_name'] for im in json.loads(written)['images']] == [
        'shape_0000.png', 'shape_0001.png', 'shape_0002.png']
    assert main([str(out), '--num-images', '3']) == 0  # the same arguments: a rerun is fine
    assert read(ann) == written
    assert main([str(out), '--num-images', '4']) == 2  # other arguments: refused again
    assert read(ann) == written and len(os.listdir(out / 'images')) == 3
    open(ann, 'wb').close()  # an empty file has nothing to lose (it was refused as 'differs')
    assert main([str(out), '--num-images', '3']) == 0 and read(ann) == written
    monkeypatch.chdir(tmp_path / 'coco' / 'images')  # an unset $OUT wrote into the current folder
    with pytest.raises(SystemExit) as exit_:
        main([''])
    assert exit_.value.code == 2 and capsys.readouterr().err.splitlines()[-1].endswith(
        'error: out_dir is empty (an unset variable?): name a folder')
    assert len(os.listdir('.')) == 3


def test_make_toy_coco_overwrite_replaces_a_link_not_its_target(tmp_path):
    """Pictures were saved in place: with --overwrite a link images/shape_0000.png ->
    ../../mine.png wrote the picture into the user's file outside the output folder (and a
    killed save left a partial PNG that the rerun refused). Written atomically now."""
    main = load_tool('make_toy_coco').main
    out = tmp_path / 'coco'
    os.makedirs(out / 'images')
    mine = user_file(tmp_path / 'mine.png', b'my picture, not a PNG')
    os.symlink(mine, out / 'images' / 'shape_0000.png')
    assert main([str(out), '--num-images', '2', '--overwrite']) == 0
    assert read(mine) == b'my picture, not a PNG'
    assert not osp.islink(out / 'images' / 'shape_0000.png')
    assert sorted(os.listdir(out / 'images')) == ['shape_0000.png', 'shape_0001.png']


def test_make_toy_coco_keeps_a_users_own_images(tmp_path, capsys):
    """With no annotations.json in OUT, tools/make_toy_coco.py replaced the user's own
    OUT/images/shape_*.png silently; now an image with other pixels is refused (exit 2, nothing
    written) unless --overwrite, and an identical rerun replaces nothing."""
    from PIL import Image
    main = load_tool('make_toy_coco').main
    out = tmp_path / 'coco'
    os.makedirs(out / 'images')
    mine = str(out / 'images' / 'shape_0001.png')
    Image.new('RGB', (64, 64), (1, 2, 3)).save(mine)
    before = read(mine)
    assert main([str(out), '--num-images', '3']) == 2
    assert one_error_line(capsys.readouterr().err, 'make_toy_coco.py') == (
        f'make_toy_coco.py: error: {mine} exists and is not the image these arguments draw '
        f'(written by genview_mm): writing would replace it and its {len(before)} bytes would '
        'be lost; pass --overwrite to replace it, or choose another path (nothing was written)')
    assert read(mine) == before
    assert os.listdir(out) == ['images'] and os.listdir(out / 'images') == ['shape_0001.png']
    assert main([str(out), '--num-images', '3', '--overwrite']) == 0
    names = sorted(os.listdir(out / 'images'))
    assert names == ['shape_0000.png', 'shape_0001.png', 'shape_0002.png']
    assert read(mine) != before
    # the same pixels in another PNG encoding are this tool's image: kept, not rewritten
    first = str(out / 'images' / 'shape_0000.png')
    Image.open(first).save(first, compress_level=0)
    files = [str(out / 'images' / n) for n in names] + [str(out / 'annotations.json')]
    for path in files:
        os.utime(path, ns=(10 ** 18, 10 ** 18))
    written = {path: read(path) for path in files}
    assert main([str(out), '--num-images', '3']) == 0  # an identical rerun: nothing replaced
    assert {path: read(path) for path in files} == written
    assert [os.stat(p).st_mtime_ns for p in files] == [10 ** 18] * 4
    # other arguments with no annotations.json to tell: the first differing image is named
    os.remove(out / 'annotations.json')
    capsys.readouterr()
    assert main([str(out), '--num-images', '3', '--seed', '1']) == 2
    assert one_error_line(capsys.readouterr().err, 'make_toy_coco.py').startswith(
        f'make_toy_coco.py: error: {first} exists and is not the image these arguments draw')
    assert {path: read(path) for path in files[:3]} == {p: written[p] for p in files[:3]}
    assert not osp.exists(out / 'annotations.json')


def test_tools_check_writability_with_the_library_rule_before_torch(tmp_path):
    """tools/_early.py loads the library's writable_problem from its file: the tools' checks
    before their heavy imports (--work-dir, --out, --out-dir) follow the one rule, and loading
    it imports neither genview_mm nor torch."""
    import subprocess
    import sys

    from genview_mm.utils import file_safety
    tools = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools')
    (tmp_path / 'a_file').write_text('x')
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import _early; "
             "print(sorted(m for m in ('torch', 'genview_mm') if m in sys.modules)); "
             "print([_early.writable_problem(p) for p in sys.argv[2:]])")
    paths = [str(tmp_path / 'new' / 'deeper'), str(tmp_path / 'a_file' / 'sub'),
             '/sys/genview-test']
    out = subprocess.run([sys.executable, '-c', probe, tools, *paths], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out[0] == '[]'
    assert out[1] == str([file_safety.writable_problem(p) for p in paths])
    assert out[1] == str(['', f"{tmp_path / 'a_file'} is a file, not a folder",
                          'no file can be created in /sys (Permission denied)'])


def test_paths_that_cannot_be_written_as_files_are_refused_first(tmp_path):
    """Each passed the checks and failed only at the write, with a raw error (or, for a device
    or a pipe, would have been replaced by the rename): a path ending in a separator, a path
    under a link to nothing, a FIFO at the output path; and an output under the source '/'."""
    from genview_mm.utils.file_safety import (
        NotWritable,
        ReplaceRefused,
        check_outside_sources,
        check_replace,
        check_writable,
        writable_problem,
    )
    with pytest.raises(NotWritable, match=r"ends with '/': give a file name"):
        check_writable(str(tmp_path / 'new') + '/')
    os.symlink(str(tmp_path / 'nowhere'), str(tmp_path / 'dangling'))
    assert writable_problem(str(tmp_path / 'dangling' / 'sub')) == (
        f"{tmp_path / 'dangling'} is a link to {tmp_path / 'nowhere'}, which does not exist")
    with pytest.raises(NotWritable, match='is a link to .*which does not exist; choose'):
        check_writable(str(tmp_path / 'dangling' / 'out.txt'))
    fifo = str(tmp_path / 'pipe')
    os.mkfifo(fifo)
    for force in (False, True):  # the rename would replace the pipe itself
        with pytest.raises(ReplaceRefused, match='is not a regular file'):
            check_replace(fifo, lambda path: True, 'a manifest', '--overwrite', force)
    with pytest.raises(ValueError, match="is inside the source folder '/'"):
        check_outside_sources(str(tmp_path / 'out'), '/', [])
    with pytest.raises(ValueError, match=r"^--out-dir '/' holds source images"):
        check_outside_sources('/', str(tmp_path / 'src'), [str(tmp_path / 'src' / 'a.jpg')])
    # a list naming its images through a link: --out-dir as the real folder passed
    os.makedirs(str(tmp_path / 'real' / 'src'))
    os.symlink(str(tmp_path / 'real'), str(tmp_path / 'link'))
    listed = [str(tmp_path / 'link' / 'src' / 'x.jpg')]
    for out in (tmp_path / 'real' / 'src', tmp_path / 'link' / 'src', tmp_path / 'real'):
        with pytest.raises(ValueError, match=r'holds source images'):
            check_outside_sources(str(out), str(tmp_path / 'list.txt'), listed)
    check_outside_sources(str(tmp_path / 'real' / 'out'), str(tmp_path / 'list.txt'), listed)


def test_tool_docstrings_keep_their_line_continuations_and_toy_coco_refuses_a_bad_seed(
        tmp_path, capsys):
    """``--help`` prints a tool's docstring: a backslash ending a line of its example command
    was read as Python's line continuation, and the two lines ran together with the backslash
    gone. ``make_toy_coco.py --seed -1`` was a numpy traceback, exit 1."""
    import ast
    import glob
    tools = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools')
    for path in sorted(glob.glob(osp.join(tools, '*.py')) +
                       glob.glob(osp.join(tools, '*', '*.py'))):
        source = open(path, encoding='utf-8').read()
        tree = ast.parse(source)
        doc = ast.get_docstring(tree, clean=False)
        if doc is None:
            continue
        raw = ast.get_source_segment(source, tree.body[0])
        assert raw.count('\\\n') == doc.count('\\\n'), osp.basename(path)
    with pytest.raises(SystemExit) as exit_:
        load_tool('make_toy_coco').main([str(tmp_path / 'coco'), '--seed', '-1'])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(
        '.py: error: --seed must be >= 0, got -1')  # the prog name: argv[0], here pytest's
    assert not (tmp_path / 'coco').exists()


# ---- a full disk: one line and exit 1, as everywhere else ------------------------------------
@pytest.mark.parametrize('tool', ['import_views', 'merge_manifests', 'make_toy_coco'])
def test_a_full_disk_is_exit_1_with_the_folder_named(tool, tmp_path, capsys, monkeypatch):
    """These tools caught every OSError as a usage error: a full disk ended in exit 2 and
    (make_toy_coco) 'pass a writable output folder'. A full disk is exit 1 elsewhere
    (DiskFull: free space, then rerun); nothing is left behind."""
    import errno

    from genview_mm.structures.manifest import ManifestRow, write_manifest
    if tool == 'import_views':
        views, source = _trees(str(tmp_path / 'in'))
        argv, folder = [views, '--source-root', source, '--out', str(tmp_path / 'out' / 'm.jsonl'),
                        '--no-progress'], tmp_path / 'out'
    elif tool == 'merge_manifests':
        folder = tmp_path / 'out'
        write_manifest(str(folder / 'shards' / 'shard-00000.jsonl'),
                       [ManifestRow('/x/a.jpg', 'a.jpg', output='images/a.jpg')])
        argv = [str(folder)]
    else:
        argv, folder = [str(tmp_path / 'out'), '--num-images', '2'], tmp_path / 'out'
    main = load_tool(tool).main

    def full(fd):
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(os, 'fsync', full)
    assert main(argv) == 1
    line = one_error_line(capsys.readouterr().err, f'{tool}.py')
    assert f'no space left on the device writing to {folder}' in line, line
    assert 'free space or write elsewhere' in line
    assert not [n for _, _, names in os.walk(folder) for n in names if '.tmp-' in n]


def test_a_work_dir_that_is_empty_or_holds_the_config_is_refused(tmp_path):
    """``--work-dir ''`` (an unset shell variable) turned --resume off and wrote the run into
    the current folder over its checkpoints; a --work-dir that is the config's own folder had
    MMEngine's config dump (flattened, --cfg-options baked in) replace the user's config. Both
    are usage errors now (exit 2, before anything heavy), from train.py, test.py and
    slurm_train.sh."""
    import sys

    from helpers import run_cmd
    from helpers.tools import ROOT
    proj = tmp_path / 'proj'
    proj.mkdir()
    config = proj / 'mine.py'
    text = "_base_ = ['../base.py']  # the user's own config\n"
    config.write_text(text)
    (proj / 'ckpt.pth').write_bytes(b'x')
    for tool, extra in (('train.py', []), ('test.py', [str(proj / 'ckpt.pth')])):
        tool = osp.join(ROOT, 'tools', tool)
        empty = run_cmd([sys.executable, tool, str(config), *extra, '--work-dir', ''],
                        cwd=str(proj), returncode=2)
        assert empty.stderr.strip().splitlines()[-1].endswith(
            "error: --work-dir is empty: pass a folder, or leave the option out "
            "(work_dirs/<config name>)"), empty.stderr
        for work_dir in (str(proj), str(proj) + '/', str(tmp_path / 'link')):
            if work_dir.endswith('link'):
                (tmp_path / 'link').symlink_to(proj)
            same = run_cmd([sys.executable, tool, str(config), *extra, '--work-dir', work_dir],
                           returncode=2)
            assert f'holds the config {config}' in same.stderr.strip().splitlines()[-1], \
                same.stderr
            (tmp_path / 'link').unlink(missing_ok=True)
    assert config.read_text() == text and sorted(os.listdir(proj)) == ['ckpt.pth', 'mine.py']
    slurm = run_cmd(['bash', 'tools/slurm_train.sh', 'part', 'job', str(config), '', '--resume'],
                    returncode=2)
    assert 'WORK_DIR is empty' in slurm.stderr


def test_a_config_of_the_users_in_the_default_work_dir_is_refused_a_dump_is_not(tmp_path,
                                                                                monkeypatch):
    """Only an explicit --work-dir was checked: ``train.py work_dirs/mine/mine.py`` (the default
    work dir is that folder) had MMEngine's flattened dump replace the user's config, while a
    run's own dump resumed with ``--work-dir`` its folder was refused (upstream replaces it)."""
    import argparse
    import sys

    from genview_mm.utils.file_safety import config_dump_problem
    from helpers import load_tool, run_cmd
    from helpers.tools import ROOT
    work = tmp_path / 'work_dirs' / 'mine'
    work.mkdir(parents=True)
    config = work / 'mine.py'
    text = f"_base_ = ['{ROOT}/configs/demo/mocov2_r18_tiny_cpu.py']\n"
    config.write_text(text)
    run = run_cmd([sys.executable, osp.join(ROOT, 'tools', 'train.py'), 'work_dirs/mine/mine.py',
                   '--skip-preflight'], cwd=str(tmp_path), returncode=2)
    assert run.stderr.strip().splitlines()[-1] == (
        'train.py: error: the work dir ./work_dirs/mine holds the config work_dirs/mine/mine.py: '
        'the run writes its config dump there under that name, which would replace it, '
        'flattened (its _base_ lost); pass --work-dir another folder, or keep the config '
        'elsewhere')
    assert config.read_text() == text and os.listdir(work) == ['mine.py']
    dump = tmp_path / 'run' / 'run.py'  # a run's own dump: flattened, no _base_
    dump.parent.mkdir()
    dump.write_text("model = dict(type='MoCo')\nwork_dir = './run'\n")
    assert config_dump_problem(str(dump.parent), str(dump)) == ''
    monkeypatch.syspath_prepend(osp.join(ROOT, 'tools'))  # as the tools run: _early.py
    load_tool('_launch_args').check_work_dir(argparse.ArgumentParser(), str(dump.parent),
                                             str(dump))  # no usage error
    assert config_dump_problem(str(tmp_path / 'elsewhere'), str(config)) == ''
