"""tools/import_official_pca.py: the authors' pca_vectors.npy (built here in their layout) goes
through the user's path: import -> scorer / generator accept it for that encoder only -> the
numbers are the official projection's."""
import math
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch
from PIL import Image

from genview_mm.foreground import ForegroundPCA, ForegroundPCAError
from genview_mm.foreground.fit import alpha_histogram
from genview_mm.models.encoders import CLIPPatchEncoder
from genview_mm.models.scorers import PairQualityScorer, pair_quality
from helpers import run_tool, save_tiny_unclip, write_photos


def official_layout(root, model: str, dim: int, seed: int, with_mean: bool) -> str:
    """``pca_results/<model>/eigenvecters/pca_vectors.npy`` (float32 (D, 1), unit norm) and,
    for the generator's model, ``mean_vectors.npy`` (D,), as the official repository ships."""
    folder = osp.join(root, 'pca_results', model, 'eigenvecters')
    os.makedirs(folder, exist_ok=True)
    v = np.random.default_rng(seed).standard_normal((dim, 1)).astype(np.float32)
    np.save(osp.join(folder, 'pca_vectors.npy'), v / np.linalg.norm(v))
    if with_mean:
        np.save(osp.join(folder, 'mean_vectors.npy'),
                np.random.default_rng(seed + 1).standard_normal(dim).astype(np.float32))
    return osp.join(folder, 'pca_vectors.npy')


def import_pca(*args, returncode=0):
    """tools/import_official_pca.py ARGS as a subprocess, ending with ``returncode``."""
    return run_tool('import_official_pca.py', *args, timeout=300, returncode=returncode)


@pytest.fixture(scope='module')
def convnext_weights(tmp_path_factory):
    """A timm ConvNeXt (the scorer's family) saved locally, and a second, different one."""
    import timm
    folder = tmp_path_factory.mktemp('convnext')
    paths = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = str(folder / f'convnext_atto_{seed}.pth')
        torch.save(timm.create_model('convnext_atto', pretrained=False, num_classes=0)
                   .state_dict(), path)
        paths.append(path)
    return paths


def timm_encoder(weights: str) -> dict:
    return dict(type='TimmPatchEncoder', model_name='convnext_atto', pretrained=False,
                checkpoint_path=weights, input_size=64)


@pytest.mark.slow
def test_scorer_vector_imports_and_scores_like_the_official_code(tmp_path, convnext_weights):
    vector = official_layout(str(tmp_path), 'convnext_base_w_laion2b-s13k-b82k-augreg', 320, 0,
                             with_mean=False)
    out = str(tmp_path / 'scorer.pth')
    res = import_pca(vector, '--timm-model', 'convnext_atto', '--timm-checkpoint',
                     convnext_weights[0], '--input-size', '64', '--out', out, '--device', 'cpu')
    assert 'alpha=none (scorer only)' in res.stdout
    pca = ForegroundPCA.load(out)
    assert (pca.center, pca.alpha, pca.threshold_rule) == (False, None, 'none')
    assert pca.source == 'official:pca_vectors.npy' and pca.fingerprint
    assert (pca.grid, pca.input_size) == ((2, 2), 64)
    official = torch.from_numpy(np.load(vector).reshape(-1))
    assert torch.equal(pca.direction, official)

    # without --input-size: the authors' 224 px (timm's own size was recorded: 256 for the
    # scorer's ConvNeXt, which the scorer then refused, telling the user to fit a new file)
    from helpers import load_tool
    args = load_tool('import_official_pca').parse_args(
        [vector, '--timm-model', 'convnext_base.clip_laion2b_augreg', '--out', out + '2'])
    assert args.input_size == 224

    scorer = PairQualityScorer(out, encoder=timm_encoder(convnext_weights[0]))
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(3, 3, 64, 64, generator=g) * 255, torch.rand(3, 3, 64, 64, generator=g) * 255
    scores = scorer(x, y)
    tokens = scorer.encode(torch.cat([x, y]))  # raw 0-255 RGB -> the encoder's pixels
    _, _, q = pair_quality(tokens[:3], tokens[3:], official)  # tokens @ v, no mean
    torch.testing.assert_close(scores.q, q.float(), atol=1e-5, rtol=0)

    # the same architecture with other weights is not the encoder the vector belongs to
    with pytest.raises(ForegroundPCAError, match='weights differ'):
        PairQualityScorer(out, encoder=timm_encoder(convnext_weights[1]))


@pytest.mark.slow
def test_vector_of_another_encoder_is_refused(tmp_path, tiny_clip_path):
    vector = official_layout(str(tmp_path), 'ViT-H-14-laion2b_s32b_b79k', 1280, 0, True)
    out = str(tmp_path / 'x.pth')
    res = import_pca(vector, '--encoder', tiny_clip_path, '--out', out, '--alpha', '0.1',
                     returncode=None)
    assert res.returncode != 0
    assert 'has 1280 entries' in res.stderr and '32-d tokens' in res.stderr
    assert not osp.exists(out)


def test_usage_errors_before_any_model_loads(tmp_path):
    res = import_pca(tmp_path / 'missing.npy', '--out', tmp_path / 'o.pth', returncode=2)
    assert "vector" in res.stderr and 'not found' in res.stderr
    vector = official_layout(str(tmp_path), 'm', 8, 0, False)
    res = import_pca(vector, '--out', tmp_path / 'o.pth', '--alpha', '1', '--fit-images', tmp_path,
                     returncode=2)
    assert 'not allowed with argument' in res.stderr
    # a folder no file can be created in (root ignores permission bits: sysfs refuses it too)
    # was accepted by os.access as root, and the save failed after the import
    res = import_pca(vector, '--out', '/sys/genview-test/o.pth', returncode=2)
    assert res.stderr.strip().endswith('--out /sys/genview-test/o.pth: no file can be created in '
                                       '/sys (Permission denied); choose another path')
    # --mask-type lt without a threshold wrote a file the scorer and the generator both refuse
    res = import_pca(vector, '--out', tmp_path / 'o.pth', '--mask-type', 'lt', returncode=2)
    assert res.stderr.strip().endswith('--mask-type lt needs a threshold: give --alpha A or '
                                       '--fit-images IMAGES (the scorer takes the vector without '
                                       '--mask-type)')
    # the options of --fit-images without it were taken and ignored
    res = import_pca(vector, '--out', tmp_path / 'o.pth', '--num-images', '5', '--per-folder',
                     returncode=2)
    assert res.stderr.strip().endswith('--num-images, --per-folder only apply with --fit-images')
    # a misspelt timm model: timm's RuntimeError was a traceback (exit 1)
    res = import_pca(vector, '--out', tmp_path / 'o.pth', '--timm-model', 'no_such_model_xyz',
                     returncode=2)
    assert res.stderr.strip().splitlines()[-1] == (
        "import_official_pca.py: error: TimmPatchEncoder: 'no_such_model_xyz' is not a timm "
        "model (timm.list_models('NAME*') lists the names)")
    assert not osp.exists(tmp_path / 'o.pth')


@pytest.fixture(scope='module')
def unclip_and_photos(tmp_path_factory):
    root = tmp_path_factory.mktemp('gen')
    unclip = save_tiny_unclip(str(root / 'unclip'))
    write_photos(str(root / 'photos' / 'a'), 6, 40)
    write_photos(str(root / 'photos' / 'b'), 6, 48)
    return unclip, str(root / 'photos')


@pytest.mark.slow
def test_generator_vector_with_histogram_threshold(tmp_path, unclip_and_photos):
    """ViT-H/14 stand-in: the tiny unCLIP pipeline's own image encoder (32-d tokens)."""
    unclip, photos = unclip_and_photos
    vector = official_layout(str(tmp_path), 'ViT-H-14-laion2b_s32b_b79k', 32, 3, True)
    mean = osp.join(osp.dirname(vector), 'mean_vectors.npy')
    out = str(tmp_path / 'generator.pth')
    import_pca(vector, '--mean', mean, '--encoder', unclip, '--fit-images', photos, '--per-folder',
               '--num-images', '8', '--num-workers', '0', '--out', out, '--device', 'cpu')
    pca = ForegroundPCA.load(out)
    assert (pca.threshold_rule, pca.num_images, pca.center) == ('histogram', 8, False)
    assert torch.equal(pca.mean, torch.from_numpy(np.load(mean)))  # kept for the record

    # the threshold is the official histogram rule on tokens @ v of the sampled images
    from PIL import Image

    from genview_mm.apis.pca_fit import sample_paths
    from genview_mm.datasets.image_sources import list_images
    paths = sample_paths([it.path for it in list_images(photos)], 8, 0, True)
    enc = CLIPPatchEncoder.from_pretrained(unclip, subfolder='image_encoder')
    images = [Image.open(p).convert('RGB') for p in paths]
    tokens = enc(enc.preprocess(images)).float()
    v = torch.from_numpy(np.load(vector).reshape(-1))
    assert pca.alpha == pytest.approx(alpha_histogram(tokens @ v), abs=1e-6)

    # the generator accepts it and its ratio is the official one: #(tokens @ v > alpha) / N
    from mmpretrain.registry import MODELS
    gen = MODELS.build(dict(type='AdaptiveNoiseGenerator', pca=out, pretrained=unclip,
                            device='cpu', num_inference_steps=2, output_size=32))
    ratios = gen.analyze(images)['fg_ratio']
    expected = ((tokens @ v) > pca.alpha).float().mean(-1)
    assert ratios == pytest.approx(expected.tolist(), abs=1e-6)


@pytest.mark.slow
def test_given_alpha_and_lt_mask(tmp_path, tiny_clip_path):
    vector = official_layout(str(tmp_path), 'm', 32, 5, False)
    out = str(tmp_path / 'p.pth')
    res = import_pca(vector, '--encoder', tiny_clip_path, '--alpha', '0.25', '--mask-type', 'lt',
                     '--out', out)
    # the stored threshold is of -v; the printout named it alone ('alpha=-0.2500'), not the
    # user's 0.25
    assert ' alpha=-0.2500 (of -v: the threshold 0.2500 of tokens @ v with --mask-type lt) ' in \
        res.stdout
    pca = ForegroundPCA.load(out)
    v = torch.from_numpy(np.load(vector).reshape(-1))
    assert (pca.threshold_rule, pca.sign_rule, pca.alpha) == ('given', '-1', -0.25)
    tokens = torch.randn(2, 64, 32)
    # 'lt': foreground where tokens @ v < 0.25, as the official --mask-type lt
    assert torch.equal(pca.foreground_mask(tokens), (tokens @ v) < 0.25)
    # ... for the generator only: the authors' scorer uses +v, and this file's -v swapped its
    # foreground and background (every pair weight inverted, silently)
    with pytest.raises(ForegroundPCAError, match='imported with --mask-type lt.*scorer'):
        PairQualityScorer(out, encoder=tiny_clip_path)
    from genview_mm.apis.preflight.model_checks import check_scorer
    checks = check_scorer(dict(type='PairQualityScorer', pca_path=out, encoder=tiny_clip_path))
    assert checks[-1].status == 'BROKEN' and 'imported with --mask-type lt' in checks[-1].detail


@pytest.mark.parametrize('mask_type, expected', [('gt', [False, False, True]),
                                                 ('lt', [True, True, False])])
def test_mask_type_boundary_matches_the_official_comparison(tmp_path, mask_type, expected):
    """The official calculate_fgratio.py: 'gt' is ``tokens @ v > t``, 'lt' is ``<= t``: a token
    exactly at the threshold is foreground for 'lt' (and was not here, with '<')."""
    from types import SimpleNamespace

    from genview_mm.foreground.official import import_official_pca
    np.save(tmp_path / 'v.npy', np.array([[1.0], [0.0], [0.0], [0.0]], np.float32))
    encoder = SimpleNamespace(dim=4, name='e', grid=(1, 3), input_size=8)
    pca = import_official_pca(str(tmp_path / 'v.npy'), encoder, alpha=0.25, mask_type=mask_type)
    tokens = torch.tensor([[[0.25, 1, 2, 3], [0.2, 0, 0, 0], [0.3, 5, 5, 5]]])
    official = (tokens @ torch.tensor([1.0, 0, 0, 0]))
    official = official > 0.25 if mask_type == 'gt' else official <= 0.25
    assert pca.foreground_mask(tokens).tolist() == [expected] == official.tolist()
    path = str(tmp_path / 'p.pth')
    pca.save(path)  # the rule survives the file
    assert ForegroundPCA.load(path).foreground_mask(tokens).tolist() == [expected]
    assert ForegroundPCA.load(path).foreground_ratio(tokens).tolist() == pytest.approx(
        [sum(expected) / 3])


def test_lt_threshold_fitted_on_the_official_scores():
    """``--mask-type lt --fit-images``: the histogram rule ran on the negated scores, so about
    35% of tokens were foreground where the authors' pipeline (threshold fitted on ``tokens @ v``
    by extract_features_pca.py, then ``<=`` in calculate_fgratio.py) gives about 65%."""
    import tempfile
    from types import SimpleNamespace

    from genview_mm.foreground.official import import_official_pca
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(200, 16, 8, generator=g)
    tokens[..., 0] = torch.distributions.Gamma(2.0, 1.0).sample((200, 16))  # skewed, as PCA
    with tempfile.TemporaryDirectory() as tmp:
        np.save(osp.join(tmp, 'v.npy'), np.eye(8, 1, dtype=np.float32))
        encoder = SimpleNamespace(dim=8, name='e', grid=(4, 4), input_size=64)
        pca = import_official_pca(osp.join(tmp, 'v.npy'), encoder, fit_batches=lambda: [tokens],
                                  mask_type='lt')
    raw = tokens[..., 0]
    official = raw <= alpha_histogram(raw)  # the authors' two scripts
    assert pca.alpha == pytest.approx(-alpha_histogram(raw))
    assert torch.equal(pca.foreground_mask(tokens), official)
    assert pca.fg_fraction == pytest.approx(float(official.double().mean()))
    assert pca.fg_fraction > 0.5


def test_a_full_disk_saving_the_file_is_one_line(tmp_path, tiny_clip_path, capsys, monkeypatch):
    """The encoder built and the vector checked, the save hits a full disk: one line naming
    the folder, exit status 1, no file and no temporary file left (not a traceback)."""
    import errno

    from genview_mm.utils import atomic_write
    from helpers import load_tool
    vector = official_layout(str(tmp_path), 'm', 32, 5, False)
    out = tmp_path / 'pca' / 'p.pth'

    def full_open(path, mode='r', *a, **kw):
        if 'w' in mode:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return open(path, mode, *a, **kw)

    monkeypatch.setattr(atomic_write, 'open', full_open, raising=False)
    main = load_tool('import_official_pca').main
    assert main([vector, '--encoder', tiny_clip_path, '--alpha', '0.25', '--device', 'cpu',
                 '--out', str(out)]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f'import_official_pca.py: error: no space left on the device writing to {out.parent} '
        '(No space left on device): free space or write elsewhere, then rerun')
    assert os.listdir(out.parent) == []


@pytest.mark.parametrize('tool', ['import_official_pca', 'fit_foreground_pca'])
@pytest.mark.parametrize('flag,value,shown', [
    ('--batch-size', '0', 'argument --batch-size: must be >= 1, got 0'),
    ('--batch-size', '-4', 'argument --batch-size: must be >= 1, got -4'),
    ('--num-workers', '-1', 'argument --num-workers: must be >= 0, got -1'),
    ('--num-workers', 'two', "argument --num-workers: invalid int value: 'two'"),
])
def test_loader_sizes_are_usage_errors(tool, flag, value, shown, tmp_path, capsys):
    """--batch-size 0 was taken by import_official_pca (unused with --alpha, a DataLoader error
    after the encoder loaded with --fit-images); --num-workers -1 by both tools (a DataLoader
    error, exit 1, after the encoder loaded): now exit 2 before anything loads."""
    from helpers import load_tool
    vector = official_layout(str(tmp_path), 'm', 8, 0, False)
    first = [vector, '--alpha', '0.1'] if tool == 'import_official_pca' else [str(tmp_path)]
    with pytest.raises(SystemExit) as exc:
        load_tool(tool).main([*first, '--out', str(tmp_path / 'o.pth'), flag, value])
    assert exc.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(f': error: {shown}')
    assert not osp.exists(tmp_path / 'o.pth')


@pytest.mark.parametrize('fit_images', ['empty.txt', 'empty_folder'])
def test_fit_images_without_images_is_one_line(fit_images, tmp_path, capsys, monkeypatch):
    """An empty --fit-images list or folder failed inside torch.cat ('expected a non-empty list
    of Tensors') after the encoder loaded; now it says so before loading it."""
    import genview_mm.apis.pca_encoder as pca_encoder
    from helpers import load_tool
    (tmp_path / 'empty.txt').write_text('\n# no images here\n')
    (tmp_path / 'empty_folder').mkdir()
    (tmp_path / 'empty_folder' / 'notes.txt').write_text('not an image')
    built = []
    monkeypatch.setattr(pca_encoder, 'build_encoder_from_args', lambda a: built.append(a))
    vector = official_layout(str(tmp_path), 'm', 8, 0, False)
    source = str(tmp_path / fit_images)
    assert load_tool('import_official_pca').main([vector, '--fit-images', source, '--out',
                                                  str(tmp_path / 'o.pth')]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f'import_official_pca.py: error: --fit-images {source!r} holds no images to fit the '
        'threshold on: give a folder or list of images, or the threshold itself with --alpha')
    assert built == [] and not osp.exists(tmp_path / 'o.pth')


def test_a_vector_of_several_components_says_to_keep_the_first(tmp_path):
    """The authors' extract_features_pca.py run with n_components=3 writes (D, 3), one
    component per column: 'expected (D,) or (D, 1)' said what, not how."""
    from genview_mm.foreground.official import load_vector
    path = str(tmp_path / 'pca_vectors.npy')
    np.save(path, np.ones((8, 3), np.float32))
    with pytest.raises(ForegroundPCAError) as err:
        load_vector(path)
    assert str(err.value) == (f'{path!r} holds 3 principal components (shape (8, 3)); the PCA '
                              'vector is the first alone: keep its first column, e.g. '
                              'np.save(NEW, np.load(OLD)[:, :1]), and import that')
    np.save(path, np.ones((3, 8), np.float32))  # not that layout: the shape, as before
    with pytest.raises(ForegroundPCAError, match=r'expected a float PCA vector of shape \(D,\) '
                       r'or \(D, 1\), got float32 \(3, 8\)'):
        load_vector(path)


@pytest.mark.parametrize('bad', ['empty', 'npz', 'mean_npz'])
def test_a_vector_file_that_is_no_array_is_one_line_before_the_encoder(bad, tmp_path, capsys,
                                                                        monkeypatch):
    """An empty .npy (EOFError) or an .npz archive (no .ndim) crashed with a traceback, and only
    after the encoder had loaded (gigabytes for the ViT-H): one line, exit 2, nothing built."""
    import genview_mm.apis.pca_encoder as pca_encoder
    from helpers import load_tool
    built = []
    monkeypatch.setattr(pca_encoder, 'build_encoder_from_args', lambda a: built.append(a))
    vector = official_layout(str(tmp_path), 'm', 8, 0, False)
    (tmp_path / 'empty.npy').write_bytes(b'')
    np.savez(str(tmp_path / 'v.npz'), v=np.ones(8, np.float32))
    args = {'empty': [str(tmp_path / 'empty.npy')], 'npz': [str(tmp_path / 'v.npz')],
            'mean_npz': [vector, '--mean', str(tmp_path / 'v.npz')]}[bad]
    assert load_tool('import_official_pca').main(
        args + ['--alpha', '0.1', '--out', str(tmp_path / 'o.pth')]) == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.startswith('import_official_pca.py: error: ')
    assert ('is empty' if bad == 'empty' else 'is a zip archive (an .npz, or a .pth such as a '
            'PCA file this project wrote), not a .npy array') in said
    assert built == [] and not osp.exists(tmp_path / 'o.pth')


def test_a_threshold_that_is_not_finite_or_fitted_on_nothing_is_refused(tmp_path, monkeypatch,
                                                                          capsys):
    """``--alpha nan`` was saved, and every image then had no foreground (one noise level for
    all, no warning); a PCA file holding nan is refused at load, naming the file. A threshold
    fitted on images none of which could be read failed inside torch.cat, and ``num_images``
    recorded the images listed, not those read."""
    from types import SimpleNamespace

    import genview_mm.apis.pca_encoder as pca_encoder
    from genview_mm.foreground.official import import_official_pca
    from helpers import load_tool
    vector = official_layout(str(tmp_path), 'm', 8, 0, False)
    enc = SimpleNamespace(dim=8, name='enc', grid=(2, 2), input_size=32)
    for alpha in (float('nan'), float('inf')):  # one check, ForegroundPCA's
        with pytest.raises(ForegroundPCAError, match='^the foreground threshold alpha must be a '
                           f'finite number, got {alpha}$'):
            import_official_pca(vector, enc, alpha=alpha)
    built = []
    monkeypatch.setattr(pca_encoder, 'build_encoder_from_args', lambda a: built.append(a) or enc)
    out = tmp_path / 'o.pth'
    for where in (out, tmp_path / 'new' / 'sub' / 'o.pth'):  # a refused start leaves nothing
        with pytest.raises(SystemExit) as exit_:  # before the encoder loads (it loaded first)
            load_tool('import_official_pca').main([vector, '--alpha', 'nan', '--out', str(where)])
        assert exit_.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
            'error: argument --alpha: must be a finite number, got nan')
    assert built == [] and not out.exists() and not (tmp_path / 'new').exists()
    with pytest.raises(ValueError, match='^none of the images to fit the threshold on could '
                       'be read: check them'):
        import_official_pca(vector, enc, fit_batches=lambda: iter([]))
    g = torch.Generator().manual_seed(0)
    pca = import_official_pca(vector, enc, fit_batches=lambda: iter(
        [torch.randn(3, 4, 8, generator=g), torch.randn(2, 4, 8, generator=g)]))
    assert pca.num_images == 5 and pca.threshold_rule == 'histogram'
    pca.save(str(out))
    fitted, pca.alpha = pca.alpha, float('nan')
    pca.save(str(tmp_path / 'nan.pth'))
    with pytest.raises(ForegroundPCAError, match=r"nan.pth' is malformed \(the foreground "
                       'threshold alpha must be a finite number, got nan\\)'):
        ForegroundPCA.load(str(tmp_path / 'nan.pth'))
    assert ForegroundPCA.load(str(out)).alpha == fitted and math.isfinite(fitted)


def test_a_fitted_file_is_not_replaced_without_overwrite(tmp_path, tiny_clip_path, capsys):
    """A PCA file fitted at --out (minutes of encoder passes) was replaced by an import
    without a word; an earlier import (redone in seconds) still is, and --overwrite replaces
    the fit."""
    from helpers import load_tool
    main = load_tool('import_official_pca').main
    vector = official_layout(str(tmp_path), 'm', 32, 5, False)
    out = str(tmp_path / 'p.pth')
    fitted = ForegroundPCA(direction=torch.ones(32) / math.sqrt(32), mean=torch.zeros(32),
                           alpha=0.1, encoder='fitted/here', grid=(8, 8), input_size=32)
    fitted.save(out)
    before = open(out, 'rb').read()
    from genview_mm.visualization.contact_sheet import save_contact_sheet
    sheet = save_contact_sheet(str(tmp_path / 'p.png'), [Image.new('RGB', (8, 8))],
                               [np.ones((2, 2), bool)], caption='the fit')  # the fit's masks
    mine = tmp_path / 'notes.png'  # a picture of the user's own beside it stays
    Image.new('RGB', (4, 4)).save(mine)
    args = [vector, '--encoder', tiny_clip_path, '--alpha', '0.25', '--device', 'cpu',
            '--out', out]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f'import_official_pca.py: error: {out} exists and is not a foreground '
                          'PCA file imported by this tool') and '--overwrite' in err
    assert 'the PCA fit it holds would be lost' in err
    assert open(out, 'rb').read() == before and osp.isfile(sheet)  # left as they were
    assert main(args + ['--overwrite']) == 0
    assert ForegroundPCA.load(out).source == 'official:pca_vectors.npy'
    # the fit's contact sheet showed masks of a threshold the file no longer holds
    assert not osp.exists(sheet) and mine.is_file()
    assert 'removed p.png, the contact sheet of the fit it replaced' in capsys.readouterr().out
    assert main(args[:4] + ['0.5'] + args[5:]) == 0  # an import replaces an import
    assert ForegroundPCA.load(out).alpha == 0.5


@pytest.mark.parametrize('tool,default', [('import_official_pca', '224'),
                                          ('fit_foreground_pca', None)])
def test_input_size_help_states_the_default_used(tool, default, capsys):
    """import_official_pca.py --help said --input-size defaults to "the model's own" while the
    tool fits at the authors' 224 px; fit_foreground_pca.py does take the model's own."""
    from helpers import load_tool
    module = load_tool(tool)
    with pytest.raises(SystemExit):
        module.parse_args(['--help'])
    help_text = ' '.join(capsys.readouterr().out.split())
    shown = re.search(r'--input-size INPUT_SIZE input side for --timm-model \(default: ([^)]+)\)',
                      help_text)[1]
    args = module.parse_args([__file__, '--timm-model', 'convnext_atto', '--out', 'x.pth'])
    assert shown == ("the model's own; the paper's scorer uses 224" if default is None else
                     f"{default}, as the authors' scripts fit")
    assert args.input_size == (None if default is None else int(default))


def test_an_official_vector_is_refused_for_another_encoder_of_its_width(tmp_path, monkeypatch):
    """The width check alone let the ConvNeXt-Base-W vector (1024) through for any 1024-d
    encoder (a CLIP ViT-L/14): every score then came from a direction fitted for other tokens.
    An official file is known by its sha256 and goes with its encoder's architecture only."""
    from types import SimpleNamespace

    import genview_mm.foreground.official as official
    from genview_mm.foreground.encoder_identity import file_sha256
    vector = official_layout(str(tmp_path), 'convnext_base_w_laion2b-s13k-b82k-augreg', 8, 0,
                             False)
    assert set(official.OFFICIAL_VECTORS) == {  # the release's two vectors (commit 38a6a78)
        'b3da42f1fa1770630c1c026458a842c11aa56a75672b72636206c957a5559c81',
        'f5ce0e99116aeca7baaa70b60ce59ae4e6c361fb1a939789147fe8bbfdb12e95'}
    convnext = official.OFFICIAL_VECTORS[
        'f5ce0e99116aeca7baaa70b60ce59ae4e6c361fb1a939789147fe8bbfdb12e95']
    monkeypatch.setitem(official.OFFICIAL_VECTORS, file_sha256(vector), convnext)

    def encoder(arch, name='enc', size=224):
        return SimpleNamespace(dim=8, name=name, grid=(7, 7), input_size=size,
                               identity=lambda: SimpleNamespace(arch=arch, fingerprint=None))
    with pytest.raises(ForegroundPCAError) as exc:
        official.import_official_pca(vector, encoder('clip-vit:d8-l2-p14-s224'))
    assert str(exc.value) == (
        f"{vector!r} is the official ConvNeXt-Base-W (laion2B-s13B-b82K-augreg) vector, but "
        "'enc' is clip-vit:d8-l2-p14-s224, not timm:convnext_base: import it for the scorer's "
        'encoder (--timm-model convnext_base.clip_laion2b_augreg)')
    pca = official.import_official_pca(vector, encoder('timm:convnext_base'))
    assert pca.encoder_arch == 'timm:convnext_base'
    # ConvNeXt-Base weights of another training (the docs' trap), or another input side: the
    # architecture alone let both through, so the scorer used a direction of other features
    for name in ('convnext_base.clip_laion2b', 'hf-hub:timm/convnext_base.fb_in22k'):
        with pytest.raises(ForegroundPCAError, match="fitted on the 'clip_laion2b_augreg' "
                           f"weights; '{name}' has others: import it for the scorer's"):
            official.import_official_pca(vector, encoder('timm:convnext_base', name))
    for name in ('convnext_base.clip_laion2b_augreg', 'hf-hub:timm/convnext_base.clip_laion2b_'
                 'augreg', 'convnext_base', 'local-dir:/models/x.v2'):  # no tag: a file, a folder
        from genview_mm.models.encoders.timm_encoder import _arch
        assert official.import_official_pca(vector, encoder(_arch(name), name)).dim == 8
    with pytest.raises(ForegroundPCAError, match='fitted at 224 px; this encoder takes 320 px: '
                       'import it with --input-size 224'):
        official.import_official_pca(vector, encoder('timm:convnext_base', size=320))
    other = official_layout(str(tmp_path / 'own'), 'mine', 8, 5, False)  # not a released file
    assert official.import_official_pca(other, encoder('clip-vit:d8-l2-p14-s224')).dim == 8


def test_fit_images_listed_relative_to_another_folder(tmp_path, tiny_clip_path, capsys):
    """A list of paths relative to another folder than its own: --fit-images had no
    --data-root (fit_foreground_pca.py has), so every image was 'unreadable' unless the list
    was moved next to them."""
    from helpers import load_tool
    photos = write_photos(str(tmp_path / 'train' / 'n01'), 4, size=32)
    listed = tmp_path / 'lists' / 'sample.txt'
    listed.parent.mkdir()
    listed.write_text(''.join(osp.relpath(p, tmp_path / 'train') + '\n' for p in photos))
    vector = official_layout(str(tmp_path), 'm', 32, 5, False)
    out = str(tmp_path / 'p.pth')
    assert load_tool('import_official_pca').main([
        vector, '--encoder', tiny_clip_path, '--fit-images', str(listed), '--data-root',
        str(tmp_path / 'train'), '--num-workers', '0', '--device', 'cpu', '--out', out]) == 0, \
        capsys.readouterr().err
    assert ForegroundPCA.load(out).num_images == 4


def test_the_authors_sample_list_and_a_wrong_data_root(tmp_path, tiny_clip_path, capsys,
                                                        monkeypatch):
    """train_sampled_1000cls_10img.txt names data/imagenet/train/n.../x.JPEG (paths from the
    folder holding data/): with the documented --data-root data/imagenet/train every image was
    missing, found only after the encoder loaded (10,000 warnings, then 'none could be read')."""
    from helpers import load_tool
    photos = write_photos(str(tmp_path / 'data' / 'imagenet' / 'train' / 'n01'), 3, size=32)
    listed = tmp_path / 'train_sampled_1000cls_10img.txt'
    listed.write_text(''.join(osp.relpath(p, tmp_path) + '\n' for p in photos))
    vector = official_layout(str(tmp_path), 'm', 32, 5, False)
    tool = load_tool('import_official_pca')
    args = [vector, '--encoder', tiny_clip_path, '--fit-images', str(listed),
            '--num-workers', '0', '--device', 'cpu', '--out', str(tmp_path / 'p.pth')]
    monkeypatch.chdir(tmp_path)
    assert tool.main(args + ['--data-root', '.']) == 0, capsys.readouterr().err
    assert ForegroundPCA.load(str(tmp_path / 'p.pth')).num_images == 3
    import genview_mm.apis.pca_encoder as pca_encoder

    def no_encoder(_):
        raise AssertionError('the encoder was loaded')
    monkeypatch.setattr(pca_encoder, 'build_encoder_from_args', no_encoder)
    assert tool.main(args + ['--data-root', 'data/imagenet/train', '--overwrite']) == 2
    err = capsys.readouterr().err
    assert 'none of the 3 images sampled' in err and '--data-root .' in err, err


def test_an_untagged_timm_name_is_checked_by_the_weights_timm_loads(tmp_path, monkeypatch,
                                                                      convnext_weights):
    """``--timm-model convnext_base`` loads timm's default weights (``fb_in22k_ft_in1k``, an
    ImageNet classifier), not the authors' CLIP ConvNeXt: the tag check skipped every name
    without a tag, so the scorer's vector was imported for them and scored other features."""
    from types import SimpleNamespace

    import genview_mm.foreground.official as official
    from genview_mm.foreground.encoder_identity import file_sha256
    from genview_mm.models.encoders import TimmPatchEncoder
    vector = official_layout(str(tmp_path), 'convnext_base_w_laion2b-s13k-b82k-augreg', 8, 0,
                             False)
    monkeypatch.setitem(official.OFFICIAL_VECTORS, file_sha256(vector), official.OFFICIAL_VECTORS[
        'f5ce0e99116aeca7baaa70b60ce59ae4e6c361fb1a939789147fe8bbfdb12e95'])

    def encoder(tag, name='convnext_base'):
        return SimpleNamespace(dim=8, name=name, grid=(7, 7), input_size=224,
                               pretrained_tag=tag, identity=lambda: SimpleNamespace(
                                   arch='timm:convnext_base', fingerprint=None))
    # a hub name with its revision: the tag was read as 'clip_laion2b_augreg@main', refused
    hub = 'hf-hub:timm/convnext_base.clip_laion2b_augreg@main'
    assert official.import_official_pca(vector, encoder(None, hub)).dim == 8
    # a revision with a '/' (a pull request's): its last part was read as the model
    hub = 'hf-hub:timm/convnext_base.clip_laion2b_augreg@refs/pr/1'
    assert official.import_official_pca(vector, encoder(None, hub)).dim == 8
    untagged = SimpleNamespace(dim=8, name='hf-hub:timm/convnext_base@refs/pr/1', grid=(7, 7),
                               input_size=224, pretrained_tag='fb_in22k_ft_in1k',
                               identity=lambda: SimpleNamespace(
                                   arch='timm:hf-hub:timm/convnext_base@refs/pr/1',
                                   fingerprint=None))
    with pytest.raises(ForegroundPCAError, match="loads timm's 'fb_in22k_ft_in1k' weights"):
        official.import_official_pca(vector, untagged)
    with pytest.raises(ForegroundPCAError) as exc:
        official.import_official_pca(vector, encoder('fb_in22k_ft_in1k'))
    assert str(exc.value) == (
        f"{vector!r} is the official ConvNeXt-Base-W (laion2B-s13B-b82K-augreg) vector, fitted "
        "on the 'clip_laion2b_augreg' weights; 'convnext_base' loads timm's 'fb_in22k_ft_in1k' "
        "weights: import it for the scorer's encoder (--timm-model "
        'convnext_base.clip_laion2b_augreg)')
    assert official.import_official_pca(vector, encoder('clip_laion2b_augreg')).dim == 8
    assert official.import_official_pca(vector, encoder(None)).dim == 8  # weights from a file
    # the encoder names the tag only for timm's own weights
    from_file = TimmPatchEncoder('convnext_atto', checkpoint_path=convnext_weights[0],
                                 input_size=64)
    assert from_file.pretrained_tag is None
    assert TimmPatchEncoder('convnext_atto', pretrained=False, input_size=64).pretrained_tag \
        is None
    import timm  # timm's download stood in for by its random init: the default tag is named
    create = timm.create_model
    monkeypatch.setattr(timm, 'create_model', lambda name, pretrained=False, **kw: create(
        name, pretrained=False, **kw))
    assert TimmPatchEncoder('convnext_atto', input_size=64).pretrained_tag == 'd2_in1k'


@pytest.mark.parametrize('tool', ['import_official_pca', 'fit_foreground_pca'])
def test_an_output_that_is_an_input_or_a_folder_name_is_a_usage_error(tool, tmp_path, capsys):
    """--out naming the authors' vector (as the preflight's fix printed it for a config whose
    pca_path was pca_vectors.npy) replaced it by the PCA file, with --overwrite; --out DIR/ was
    taken, the encoder loaded and the threshold fitted, and the save then failed with a bare
    '[Errno 20] Not a directory' (exit 1), leaving DIR made. Now both are exit 2 at once."""
    from helpers import load_tool
    vector = official_layout(str(tmp_path), 'm', 8, 0, False)
    listed = tmp_path / 'list.txt'
    listed.write_text('a.jpg\n')
    first = [vector, '--alpha', '0.1'] if tool == 'import_official_pca' else [str(listed)]
    given = vector if tool == 'import_official_pca' else str(listed)
    link = str(tmp_path / 'link')
    os.symlink(given, link)
    what = 'vector' if tool == 'import_official_pca' else 'source'
    before = open(given, 'rb').read()
    for out, shown in ((given, f'--out {given} is the {what} {given} (the same file)'),
                       (link, f'--out {link} is the {what} {given} (the same file)'),
                       (str(tmp_path / 'new') + '/',
                        f"--out {tmp_path / 'new'}/ ends with '/': give the file to write, "
                        f"e.g. {tmp_path / 'new' / 'pca.pth'}")):
        with pytest.raises(SystemExit) as exc:
            load_tool(tool).main([*first, '--out', out, '--overwrite'])
        assert exc.value.code == 2
        assert shown in capsys.readouterr().err.strip().splitlines()[-1]
    assert open(given, 'rb').read() == before and not osp.exists(tmp_path / 'new')
    if tool == 'import_official_pca':  # the mean file too
        with pytest.raises(SystemExit):
            load_tool(tool).main([vector, '--alpha', '0.1', '--mean', vector, '--out', vector])
        assert f'--out {vector} is the vector {vector}' in capsys.readouterr().err
        mean = str(tmp_path / 'mean.npy')
        np.save(mean, np.zeros(8, np.float32))
        with pytest.raises(SystemExit):
            load_tool(tool).main([vector, '--alpha', '0.1', '--mean', mean, '--out', mean,
                                  '--overwrite'])
        assert f'--out {mean} is the --mean {mean} (the same file)' in capsys.readouterr().err


def test_an_out_that_is_not_utf8_is_printed_not_a_traceback(tmp_path, tiny_clip_path):
    """With a strict stdout (a UTF-8 locale other than C.UTF-8), 'saved OUT: ...' raised
    UnicodeEncodeError for an --out whose name is not UTF-8, after the file was saved (exit 1)."""
    vector = official_layout(str(tmp_path), 'm', 32, 0, False)
    out = osp.join(str(tmp_path), 'caf\udce9.pth')
    res = run_tool('import_official_pca.py', vector, '--encoder', tiny_clip_path, '--alpha',
                   '0.1', '--out', out, '--device', 'cpu', returncode=None, timeout=300,
                   env={'PYTHONIOENCODING': 'utf-8:strict'})
    assert res.returncode == 0 and 'Traceback' not in res.stderr, res.stderr
    shown = out.replace('\udce9', '\\udce9')
    assert f'saved {shown}: ' in res.stdout
    assert ForegroundPCA.load(out).alpha == pytest.approx(0.1)
