"""tools/visualize_pairs.py: a PNG grid of pairs with s_f, s_b and w, from folders or a config."""
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from genview_mm.apis.pair_samples import score_folders
from genview_mm.models.scorers import PairQualityScorer, PairScores
from genview_mm.visualization import is_pair_grid, render_pair_grid, views_to_uint8
from genview_tiny import PREPROC, tiny_model_cfg
from helpers import load_tool, write_photos


def test_render_grid_layout(tmp_path):
    imgs = np.zeros((3, 20, 20, 3), np.uint8)
    s = torch.tensor([0.1, 0.5, 0.9])
    scores = PairScores(s, s / 2, s / 2)
    weights = torch.tensor([0.5, 1.0, 1.5])
    path = render_pair_grid(imgs, imgs + 255, scores, weights, str(tmp_path / 'g' / 'grid.png'),
                            cell=40, columns=2)
    img = np.asarray(Image.open(path))
    assert img.shape == (6 + 2 * (40 + 16 + 6), 6 + 2 * (80 + 6), 3)
    assert (img == 255).all(-1).mean() < 0.9  # views and labels were drawn
    with pytest.raises(ValueError, match='pairs'):
        render_pair_grid(imgs, imgs[:2], scores, weights, str(tmp_path / 'bad.png'))


def test_views_to_uint8_inverts_preprocessing():
    raw = torch.randint(0, 256, (2, 3, 8, 8)).float()
    mean, std = PREPROC['mean'], PREPROC['std']
    x = (raw - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    out = views_to_uint8(x, mean, std)
    assert out.shape == (2, 8, 8, 3) and out.dtype == np.uint8
    assert np.array_equal(out, raw.permute(0, 2, 3, 1).numpy().astype(np.uint8))


def test_folder_mode_names_a_view_that_does_not_decode(tmp_path, tiny_clip_path,
                                                       tiny_scorer_pca, monkeypatch, capsys):
    """A view cut short said 'error: Truncated File Read' without naming it; a stray file whose
    name is not UTF-8 made the list of unmatched images an encoding error (no grid)."""
    a, b = tmp_path / 'a', tmp_path / 'b'
    paths = write_photos(str(a), 2, 48)
    write_photos(str(b), 2, 40)
    with open(paths[1], 'rb') as f:
        head = f.read(300)
    with open(paths[1], 'wb') as f:
        f.write(head)
    stray = os.fsencode(str(a)) + b'/\xff.jpg'
    with open(stray, 'wb') as f:
        f.write(open(paths[0], 'rb').read())
    argv = ['visualize_pairs.py', '--view1-dir', str(a), '--view2-dir', str(b), '--pca',
            tiny_scorer_pca, '--encoder', tiny_clip_path, '--out', str(tmp_path / 'p.png')]
    monkeypatch.setattr(sys, 'argv', argv)
    import io
    strict = io.TextIOWrapper(io.BytesIO(), encoding='utf-8', errors='strict')
    monkeypatch.setattr(sys, 'stdout', strict)
    with pytest.raises(SystemExit) as exc:
        load_tool('visualize_pairs').main()
    assert str(exc.value).startswith(f'visualize_pairs.py: error: {paths[1]}: ')
    strict.seek(0)
    assert 'unmatched in' in strict.buffer.getvalue().decode() and '\\udcff.jpg' in \
        strict.buffer.getvalue().decode()


def test_folder_mode_tool(tmp_path, tiny_clip_path, tiny_scorer_pca, monkeypatch):
    a, b = tmp_path / 'a', tmp_path / 'b'
    write_photos(str(a), 3, 48)
    write_photos(str(b), 3, 40, ext='.png')
    scorer = PairQualityScorer(tiny_scorer_pca, encoder=tiny_clip_path)
    img1, img2, scores, weights = score_folders(str(a), str(b), scorer)
    assert img1.shape == (3, 32, 32, 3) and weights.mean().item() == pytest.approx(1.0)
    out = tmp_path / 'pairs.png'
    monkeypatch.setattr(sys, 'argv', ['visualize_pairs.py', '--view1-dir', str(a), '--view2-dir',
                                      str(b), '--pca', tiny_scorer_pca, '--encoder',
                                      tiny_clip_path, '--out', str(out), '--cell', '32'])
    load_tool('visualize_pairs').main()
    assert Image.open(out).size == (6 + 3 * 70, 6 + 54)
    # --device reaches the folder mode (it scored on the CPU whatever was asked)
    import genview_mm.apis.pair_samples as pair_samples
    asked = []
    real = pair_samples.score_folders
    monkeypatch.setattr(pair_samples, 'score_folders',
                        lambda *a, **k: asked.append(a[5] if len(a) > 5 else k.get('device'))
                        or real(*a, **k))
    monkeypatch.setattr(sys, 'argv', sys.argv + ['--overwrite', '--device', 'cpu:0'])
    load_tool('visualize_pairs').main()
    assert asked == ['cpu:0']


def test_config_mode_tool(tmp_path, tiny_clip_path, tiny_scorer_pca, monkeypatch, capsys):
    write_photos(str(tmp_path / 'imgs'), 4, 48)
    scorer = dict(type='PairQualityScorer', encoder=tiny_clip_path, pca_path=tiny_scorer_pca)
    view = [dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.3, 1.0)),
            dict(type='RandomFlip', prob=0.5)]
    cfg = dict(
        default_scope='mmpretrain', model=tiny_model_cfg('MoCo', scorer),
        train_dataloader=dict(dataset=dict(
            type='CustomDataset', data_root=str(tmp_path / 'imgs'), with_label=False,
            pipeline=[dict(type='LoadImageFromFile'),
                      dict(type='MultiView', num_views=2, transforms=[view]),
                      dict(type='PackInputs')])))
    path = tmp_path / 'cfg.py'
    path.write_text('\n'.join(f'{k} = {v!r}' for k, v in cfg.items()))
    out = tmp_path / 'cfg_pairs.png'
    monkeypatch.setattr(sys, 'argv', ['visualize_pairs.py', '--config', str(path), '--num', '3',
                                      '--out', str(out), '--cell', '32'])
    load_tool('visualize_pairs').main()
    assert Image.open(out).size == (6 + 3 * 70, 6 + 54)
    # the same grid every run (the crops were unseeded: other pairs, other numbers), another
    # with --seed
    first = out.read_bytes()
    monkeypatch.setattr(sys, 'argv', sys.argv + ['--overwrite'])
    load_tool('visualize_pairs').main()
    assert out.read_bytes() == first
    monkeypatch.setattr(sys, 'argv', sys.argv + ['--seed', '5'])
    load_tool('visualize_pairs').main()
    assert out.read_bytes() != first
    monkeypatch.setattr(sys, 'argv', sys.argv[:-3])
    # the library call keeps its caller's random state (it reseeded the whole process)
    import random

    import numpy as np
    import torch

    from genview_mm.apis.pair_samples import score_config_samples
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    expected = random.random(), np.random.rand(), torch.rand(1).item()
    random.seed(11)
    np.random.seed(11)
    torch.manual_seed(11)
    score_config_samples(str(path), 2)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    with pytest.raises(ValueError, match=r"\(--seed, or the config's randomness.seed\), got -3"):
        score_config_samples(str(path), 2, cfg_options={'randomness': dict(seed=-3)})
    # --checkpoint: a cut-short file is one line (it was a RuntimeError traceback)
    import torch
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1)}}, ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    monkeypatch.setattr(sys, 'argv', sys.argv + ['--overwrite', '--checkpoint', str(ckpt)])
    with pytest.raises(SystemExit) as exc:
        load_tool('visualize_pairs').main()
    assert str(exc.value).startswith('visualize_pairs.py: error: ') and str(ckpt) in str(
        exc.value)
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1)}}, ckpt)  # whole
    load_tool('visualize_pairs').main()
    assert Image.open(out).size == (6 + 3 * 70, 6 + 54)
    # --cfg-options, as the training tools take them (the tool had none: a config had to be
    # copied and edited to look at another dataset or scorer)
    write_photos(str(tmp_path / 'two'), 2, 48)
    monkeypatch.setattr(sys, 'argv', sys.argv + [
        '--cfg-options', f'train_dataloader.dataset.data_root={tmp_path / "two"}'])
    load_tool('visualize_pairs').main()
    assert Image.open(out).size == (6 + 2 * 70, 6 + 54)
    # each of these was a traceback, or (another model's checkpoint) hundreds of 'missing
    # keys' and exit 0
    (tmp_path / 'empty').mkdir()
    torch.save({'state_dict': {'foo.weight': torch.zeros(3)}}, tmp_path / 'other.pth')
    base = ['visualize_pairs.py', '--config', str(path), '--out', str(out), '--overwrite']
    monkeypatch.setattr(sys, 'argv', base + ['--device', 'gpu'])
    with pytest.raises(SystemExit) as exc:
        load_tool('visualize_pairs').main()
    assert exc.value.code == 2 and capsys.readouterr().err.startswith(
        'visualize_pairs.py: error: --device gpu: ')
    for extra, shown in (
            (['--checkpoint', str(tmp_path / 'other.pth')],
             f"{tmp_path / 'other.pth'} holds no weights of the model"),
            (['--cfg-options', f'train_dataloader.dataset.data_root={tmp_path / "empty"}'],
             'the train dataset of'),
            (['--cfg-options', 'train_dataloader.dataset.pipeline.9.prob=0.5'],
             'cannot be applied to')):
        monkeypatch.setattr(sys, 'argv', base + extra)
        with pytest.raises(SystemExit) as exc:
            load_tool('visualize_pairs').main()
        assert str(exc.value).startswith('visualize_pairs.py: error: ') and shown in str(
            exc.value), (extra, str(exc.value))


def test_tool_errors_are_one_line(tmp_path, tiny_scorer_pca, monkeypatch, capsys):
    """A missing view folder, --num 0 (named 'no images of the same name'), an --out that is a
    folder or not an image name, and a PCA file that is not one were tracebacks or wrong
    messages."""
    tool = load_tool('visualize_pairs')
    (tmp_path / 'a').mkdir()
    for argv, shown in (  # exit 1, and the first without the tool's 'error:'
            (['--view1-dir', str(tmp_path / 'a')],
             'visualize_pairs.py: error: give --config, or --view1-dir, --view2-dir and --pca'),
            (['--view1-dir', str(tmp_path / 'a'), '--view2-dir', str(tmp_path / 'a'), '--pca',
              'p.pth', '--cfg-options', 'a=1'],
             'visualize_pairs.py: error: --cfg-options changes --config: give one'),
            (['--view1-dir', str(tmp_path / 'a'), '--view2-dir', str(tmp_path / 'a'), '--pca',
              'p.pth', '--seed', '1'], 'visualize_pairs.py: error: --seed changes --config'),
            # the config's pairs were drawn and the folders (or the checkpoint) ignored
            (['--config', 'c.py', '--view1-dir', str(tmp_path / 'a'), '--view2-dir',
              str(tmp_path / 'a'), '--pca', 'p.pth'], 'visualize_pairs.py: error: --config and '
             '--view1-dir pick two different sources of pairs'),
            (['--config', 'c.py', '--pca', 'p.pth'], 'error: --config and --pca pick two'),
            # the config's scorer and model.gamma were used, these silently ignored
            (['--config', 'c.py', '--encoder', 'x/y'], "error: --encoder is for folder mode: "
             "with --config the config's model.scorer is used (its encoder with its pca_path): "
             'change both in the config'),
            (['--config', 'c.py', '--gamma', '2'], "--gamma is for folder mode: with --config "
             "the config's model.gamma is used: change it with --cfg-options model.gamma=..."),
            (['--view1-dir', str(tmp_path / 'a'), '--view2-dir', str(tmp_path / 'a'), '--pca',
              'p.pth', '--checkpoint', 'c.pth'], 'error: --checkpoint changes --config'),
            *((['--config', 'c.py', '--seed', s], f'--seed must be in [0, 2**32 - 1], got {s}')
              for s in ('-1', '4294967296')),
            (['--view1-dir', str(tmp_path / 'a'), '--view2-dir', str(tmp_path / 'gone'),
              '--pca', 'p.pth'], f"--view2-dir {str(tmp_path / 'gone')!r} is not a folder"),
            (['--view1-dir', str(tmp_path / 'a'), '--view2-dir', str(tmp_path / 'a'), '--pca',
              'p.pth', '--num', '0'], '--num must be at least 1, got 0'),
            # scored every pair, then PIL's 'unknown file extension' traceback
            (['--view1-dir', str(tmp_path / 'a'), '--view2-dir', str(tmp_path / 'a'), '--pca',
              'p.pth', '--out', str(tmp_path / 'a')], f"--out {str(tmp_path / 'a')!r}: give an "
             'image file name ending in .png, .jpg or .jpeg'),
            (['--config', 'c.py', '--out', 'pairs.pdf'], "--out 'pairs.pdf': give an image"),
            # the model refuses these; the tool drew weights with them (nan: all nan)
            *((['--view1-dir', str(tmp_path / 'a'), '--view2-dir', str(tmp_path / 'a'), '--pca',
                'p.pth', '--gamma', g], f'--gamma must be a finite number >= 0, got {g}')
              for g in ('nan', '-5.0', 'inf'))):
        monkeypatch.setattr(sys, 'argv', ['visualize_pairs.py', *argv])
        with pytest.raises(SystemExit) as exc:
            tool.main()
        assert exc.value.code == 2 and shown in capsys.readouterr().err
    monkeypatch.setattr(sys, 'argv', ['visualize_pairs.py', '--view1-dir', str(tmp_path / 'a'),
                                      '--view2-dir', str(tmp_path / 'a'), '--pca',
                                      str(tmp_path / 'missing.pth')])
    with pytest.raises(SystemExit) as exc:
        tool.main()
    # the PCA file is read before the encoder loads: its error, said as the tool's (not a
    # traceback, nor the error of an encoder that cannot load here)
    assert str(exc.value).startswith('visualize_pairs.py: error: Foreground PCA file not found')
    argv = [a if a != str(tmp_path / 'missing.pth') else tiny_scorer_pca for a in sys.argv]
    monkeypatch.setattr(sys, 'argv', argv)
    with pytest.raises(SystemExit) as exc:
        tool.main()
    # no hub here: the encoder's loading error, said as the tool's error (not a traceback)
    assert str(exc.value).startswith('visualize_pairs.py: error: Cannot load a CLIP vision')
    (tmp_path / 'bad.py').write_text('x = (\n')  # a SyntaxError traceback
    monkeypatch.setattr(sys, 'argv', ['visualize_pairs.py', '--config', str(tmp_path / 'bad.py')])
    with pytest.raises(SystemExit) as exc:
        tool.main()
    assert str(exc.value) == (f"visualize_pairs.py: error: config {tmp_path / 'bad.py'} cannot "
                              "be loaded (SyntaxError: '(' was never closed, line 1): fix it "
                              'or its _base_ files')


def test_out_replaces_only_a_grid_the_tool_wrote(tmp_path, tiny_clip_path, tiny_scorer_pca,
                                                 monkeypatch, capsys):
    """``--out`` replaced any file without asking, e.g. a dataset image named by mistake."""
    a, b = tmp_path / 'a', tmp_path / 'b'
    write_photos(str(a), 2, 48)
    write_photos(str(b), 2, 40)
    photo = tmp_path / 'mine.png'  # a photo of the user's (one in a views folder: below)
    photo.write_bytes(sorted(a.iterdir())[0].read_bytes())
    before = photo.read_bytes()
    tool = load_tool('visualize_pairs')
    argv = ['visualize_pairs.py', '--view1-dir', str(a), '--view2-dir', str(b), '--pca',
            tiny_scorer_pca, '--encoder', tiny_clip_path, '--cell', '32']
    monkeypatch.setattr(sys, 'argv', argv + ['--out', str(photo)])
    with pytest.raises(SystemExit) as exc:
        tool.main()
    assert exc.value.code == 2 and capsys.readouterr().err.startswith(  # a refusal: 2, was 1
        f'visualize_pairs.py: error: {photo} exists and is not a grid of pairs (written by '
        'genview_mm)')
    assert photo.read_bytes() == before
    for name in ('grid.png', 'grid.jpg'):  # the tool's own grid: a rerun replaces it
        out = tmp_path / name
        for _ in range(2):
            monkeypatch.setattr(sys, 'argv', argv + ['--out', str(out)])
            tool.main()
            assert is_pair_grid(str(out)) and Image.open(out).size == (6 + 2 * 70, 6 + 54)
    assert not is_pair_grid(str(photo))
    monkeypatch.setattr(sys, 'argv', argv + ['--out', str(photo), '--overwrite'])
    tool.main()
    assert is_pair_grid(str(photo)) and 'wrote ' in capsys.readouterr().out
    # a grid written into a views folder was paired as a view by the next run (its stem
    # matching an image of the other folder), and that pair was dropped as unmatched
    views = sorted(os.listdir(a))
    for flag, folder in (('--view1-dir', a), ('--view2-dir', b)):
        out = folder / 'grid.png'
        monkeypatch.setattr(sys, 'argv', argv + ['--out', str(out), '--overwrite'])
        with pytest.raises(SystemExit) as exc:
            tool.main()
        assert exc.value.code == 2 and capsys.readouterr().err.endswith(
            f"error: --out {str(out)!r} is inside {flag} {str(folder)!r}: the grid would be "
            'paired as a view on the next run; write it elsewhere\n')
        assert not out.exists()
    assert sorted(os.listdir(a)) == views
    # under a file: a FileExistsError traceback after every pair was scored
    monkeypatch.setattr(sys, 'argv', argv + ['--out', str(photo / 'grid.png')])
    with pytest.raises(SystemExit) as exc:
        tool.main()
    assert exc.value.code == 2 and capsys.readouterr().err == (
        f"visualize_pairs.py: error: cannot write {photo / 'grid.png'}: {photo} is a file, not a "
        'folder; choose another path\n')


@pytest.mark.parametrize('cell', ['0', '-5'])
def test_cell_below_one_is_a_usage_error(tmp_path, monkeypatch, capsys, cell):
    """--cell 0 or -5 scored every pair, then died in PIL with a ValueError traceback ('height
    and width must be > 0'); now a usage error before anything loads."""
    (tmp_path / 'a').mkdir()
    monkeypatch.setattr(sys, 'argv', ['visualize_pairs.py', '--view1-dir', str(tmp_path / 'a'),
                                      '--view2-dir', str(tmp_path / 'a'), '--pca', 'p.pth',
                                      '--out', str(tmp_path / 'o.png'), '--cell', cell])
    with pytest.raises(SystemExit) as exc:
        load_tool('visualize_pairs').main()
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        f'error: --cell must be at least 1, got {cell}')
    assert not (tmp_path / 'o.png').exists()
