"""PairQualityScorer against a direct computation of the paper's formulas (arXiv:2403.12003,
Sec. 3.3); the weight rule that turns its scores into loss weights; the telemetry."""
import re

import pytest
import torch
from mmpretrain.registry import MODELS

from genview_mm.foreground import ForegroundPCAError
from genview_mm.models.scorers import PairQualityScorer, pair_quality
from genview_mm.models.selfsup.genview_mixin import quality_log_vars
from genview_mm.models.weighting import quality_weights
from genview_tiny import SSL_MEAN, SSL_STD, FakePatchEncoder
from helpers import save_pca


def reference_quality(t1: torch.Tensor, t2: torch.Tensor, u: torch.Tensor):
    """Loop-by-loop float64 transcription of the formulas."""
    out = []
    for f1, f2 in zip(t1.double(), t2.double()):
        pooled = []
        for f in (f1, f2):
            a = [float(f[k] @ u.double()) for k in range(f.shape[0])]
            lo, hi = min(a), max(a)
            ahat = [(x - lo) / (hi - lo + 1e-7) for x in a]
            sf, sb = sum(ahat), sum(1 - x for x in ahat)
            zf = sum((ahat[k] / (sf + 1e-7)) * f[k] for k in range(len(a)))
            zb = sum(((1 - ahat[k]) / (sb + 1e-7)) * f[k] for k in range(len(a)))
            pooled.append((zf, zb))
        cos = torch.nn.functional.cosine_similarity
        s_f = cos(pooled[0][0], pooled[1][0], dim=0).item()
        s_b = cos(pooled[0][1], pooled[1][1], dim=0).item()
        out.append((s_f, s_b, s_f - s_b))
    return torch.tensor(out, dtype=torch.float64)


def test_hand_built_tokens_same_object_different_background():
    u = torch.tensor([1., 0., 0., 0.])
    fg, bg1, bg2 = [1., 0., 1., 0.], [0., 0., 0., 1.], [0., 0., 0., -1.]
    t1 = torch.tensor([[fg, bg1, fg, bg1]])
    t2 = torch.tensor([[bg2, fg, bg2, bg2]])
    s_f, s_b, q = pair_quality(t1, t2, u)
    assert s_f.item() == pytest.approx(1.0, abs=1e-6)
    assert s_b.item() == pytest.approx(-1.0, abs=1e-6)
    assert q.item() == pytest.approx(2.0, abs=1e-6)


def test_random_tokens_match_reference():
    g = torch.Generator().manual_seed(1)
    t1, t2 = torch.randn(3, 9, 5, generator=g), torch.randn(3, 9, 5, generator=g)
    u = torch.nn.functional.normalize(torch.randn(5, generator=g), dim=0)
    got = torch.stack(pair_quality(t1, t2, u), dim=1).double()
    torch.testing.assert_close(got, reference_quality(t1, t2, u), atol=1e-5, rtol=0)


def _preprocessor(to_rgb: bool = True):
    return MODELS.build(dict(type='SelfSupDataPreprocessor', mean=SSL_MEAN, std=SSL_STD,
                             to_rgb=to_rgb))


def _clip_pixels(raw_rgb: torch.Tensor, enc) -> torch.Tensor:
    mean = torch.tensor(enc.mean).view(1, 3, 1, 1)
    std = torch.tensor(enc.std).view(1, 3, 1, 1)
    return (raw_rgb / 255 - mean) / std


@pytest.mark.parametrize('to_rgb', [True, False])
def test_scorer_converts_normalisation_and_matches_reference(fake_encoder, fake_pca_path,
                                                            to_rgb):
    scorer = PairQualityScorer(fake_pca_path, encoder=fake_encoder)
    g = torch.Generator().manual_seed(2)
    raw = torch.randint(0, 256, (6, 3, 32, 32), generator=g).float()  # RGB pixels
    stored = raw if to_rgb else raw.flip(1)  # what the SSL preprocessor normalised
    pre = _preprocessor(to_rgb)
    x = (stored - pre.mean) / pre.std
    scores = scorer(x[:3], x[3:], data_preprocessor=pre)
    torch.testing.assert_close(fake_encoder.last_input, _clip_pixels(raw, fake_encoder),
                               atol=1e-4, rtol=0)
    tokens = fake_encoder(_clip_pixels(raw, fake_encoder))
    u = scorer.__dict__['_direction']
    ref = reference_quality(tokens[:3], tokens[3:], u)
    got = torch.stack([scores.s_f, scores.s_b, scores.q], 1).double()
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=0)
    w_ref = 3 * torch.softmax(ref[:, 2], 0)
    weights = quality_weights(scores.q, 1.0, 'local')  # what the algorithm does with them
    torch.testing.assert_close(weights.weights.double(), w_ref, atol=1e-5, rtol=0)
    assert weights.num_nonfinite == 0


def test_normalisation_read_once_per_preprocessor(fake_encoder, fake_pca_path, monkeypatch):
    """The preprocessor's mean/std are read at the first step only (reading them syncs a GPU)
    and the normalisation tensors made once per device: the same scores at every step, and a
    new preprocessor is read again."""
    from genview_mm.models.scorers import pair_quality_scorer as module
    reads = []
    real = module.ssl_normalisation
    monkeypatch.setattr(module, 'ssl_normalisation', lambda *a: reads.append(a) or real(*a))
    columns = []
    real_pixels = module.to_encoder_pixels
    monkeypatch.setattr(module, 'to_encoder_pixels', lambda x, *cols, **k: columns.append(
        [c for c in cols[:4] if isinstance(c, torch.Tensor)]) or real_pixels(x, *cols, **k))
    scorer = PairQualityScorer(fake_pca_path, encoder=fake_encoder)
    pre = _preprocessor(to_rgb=False)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    first = scorer(x[:2], x[2:], data_preprocessor=pre)

    def refuse(*args):
        raise AssertionError('a host read of a tensor after the first step')
    with monkeypatch.context() as m:  # the mean/std were read: later steps read nothing back
        for name in ('item', 'tolist', '__bool__', '__int__', '__float__'):
            m.setattr(torch.Tensor, name, refuse)
        assert torch.equal(scorer(x[:2], x[2:], data_preprocessor=pre).q, first.q)
    for _ in range(2):
        again = scorer(x[:2], x[2:], data_preprocessor=pre)
        assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert len(reads) == 1 and len(columns) == 4 and len(columns[0]) == 4
    same = [all(a is b for a, b in zip(cols, columns[0])) for cols in columns]
    assert same == [True] * 4  # the same four tensors at every step (kept alive: no id reuse)
    other = _preprocessor(to_rgb=False)
    assert torch.equal(scorer(x[:2], x[2:], data_preprocessor=other).q, first.q)
    assert len(reads) == 2 and all(a is b for a, b in zip(columns[-1], columns[0]))
    monkeypatch.setattr(module, 'ssl_normalisation', real)
    monkeypatch.setattr(module, 'to_encoder_pixels', real_pixels)
    fresh = PairQualityScorer(fake_pca_path, encoder=fake_encoder)
    assert torch.equal(fresh(x[:2], x[2:], data_preprocessor=pre).q, first.q)


def test_scorer_resizes_to_encoder_input(fake_encoder, fake_pca_path):
    scorer = PairQualityScorer(fake_pca_path, encoder=fake_encoder)
    x = torch.randn(2, 3, 48, 40)
    scores = scorer(x, x.flip(-1), data_preprocessor=_preprocessor())
    assert fake_encoder.last_input.shape == (4, 3, 32, 32)
    assert scores.q.shape == (2, ) and torch.isfinite(scores.q).all()


def test_views_of_two_sizes_are_each_resized(fake_encoder, fake_pca_path):
    """Two pipelines may crop to other sizes (upstream algorithms encode each view alone): the
    scorer concatenated the views before resizing, a torch size error once GenView was on.
    Each is resized on its own: the scores of the views resized beforehand."""
    scorer = PairQualityScorer(fake_pca_path, encoder=fake_encoder)
    g = torch.Generator().manual_seed(5)
    small, large = torch.randn(2, 3, 32, 32, generator=g), torch.randn(2, 3, 48, 40, generator=g)
    pre = _preprocessor()
    scores = scorer(small, large, data_preprocessor=pre)
    assert fake_encoder.last_input.shape == (4, 3, 32, 32)
    resized = torch.nn.functional.interpolate(large, size=(32, 32), mode='bilinear',
                                              antialias=True, align_corners=False)
    same = scorer(small, resized, data_preprocessor=pre)  # resizing commutes with the affine
    torch.testing.assert_close(scores.q, same.q, atol=1e-4, rtol=0)


def test_views_of_two_batch_sizes_are_refused(fake_encoder, fake_pca_path):
    """3 first views and 5 second ones were joined and split in the middle: 4 scores of
    mixed-up pairs, no error."""
    scorer = PairQualityScorer(fake_pca_path, encoder=fake_encoder)
    with pytest.raises(ValueError, match=re.escape(
            'view1 has 3 images and view2 5: the scorer takes one pair per row')):
        scorer(torch.randn(3, 3, 32, 32), torch.randn(5, 3, 32, 32), _preprocessor())


def test_encoder_stays_out_of_state_dict_and_frozen(fake_encoder, fake_pca_path):
    scorer = PairQualityScorer(fake_pca_path, encoder=fake_encoder, autocast_dtype='bfloat16')
    assert scorer.autocast_dtype is torch.bfloat16
    assert scorer.state_dict() == {} and list(scorer.parameters()) == []
    assert all(not p.requires_grad for p in scorer.encoder.parameters())
    scorer.train()
    assert not scorer.encoder.training


def test_telemetry_values(fake_encoder, fake_pca_path):
    scorer = PairQualityScorer(fake_pca_path, encoder=fake_encoder)
    x = torch.randn(4, 3, 32, 32)
    scores = scorer(x, x + 0.3 * torch.randn_like(x), _preprocessor())
    logs = quality_log_vars(scores, quality_weights(scores.q, 2.0))
    assert set(logs) == {f'genview_{k}' for k in
                         ('w_mean', 'w_std', 'w_min', 'w_max', 'sf', 'sb', 'nonfinite')}
    assert not any('loss' in k for k in logs)
    assert logs['genview_w_mean'].item() == pytest.approx(1.0, abs=1e-6)
    assert logs['genview_w_min'] <= logs['genview_w_max']
    assert logs['genview_sf'].item() == pytest.approx(scores.s_f.mean().item())


def test_pca_for_another_encoder_is_refused(fake_encoder, tmp_path):
    path = save_pca(str(tmp_path / 'other.pth'), 'openai/clip-vit-base-patch32', 16, (7, 7), 224)
    with pytest.raises(ForegroundPCAError, match='fit_foreground_pca'):
        PairQualityScorer(path, encoder=fake_encoder)
    with pytest.raises(TypeError, match="unexpected keyword argument 'temperature'"):
        PairQualityScorer(path, encoder=FakePatchEncoder(), temperature=2)


@pytest.mark.parametrize('name,value', [('gamma', 2.0), ('normalize', 'global')])
def test_weighting_arguments_belong_to_the_algorithm(fake_encoder, fake_pca_path, name, value):
    """No shim for the weight rule's arguments on the scorer (never released): they are the
    algorithm's."""
    from genview_tiny import tiny_model_cfg
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{name}'"):
        PairQualityScorer(fake_pca_path, encoder=fake_encoder, **{name: value})
    scorer = PairQualityScorer(fake_pca_path, encoder=fake_encoder)
    model = MODELS.build(dict(tiny_model_cfg('MoCo', scorer), **{name: value}))
    assert getattr(model, name) == value
    with pytest.raises(ValueError, match='normalize'):
        MODELS.build(dict(tiny_model_cfg('MoCo', fake_encoder and None), type='GenViewMoCo',
                          normalize='per-gpu'))


@pytest.mark.parametrize('gamma', [float('inf'), float('nan'), -1.0])
def test_gamma_must_be_finite_and_not_negative(fake_encoder, fake_pca_path, gamma):
    """gamma=inf or nan made NaN weights that the non-finite fallback did not see; a negative
    one silently favoured the worst pairs."""
    from genview_tiny import tiny_model_cfg
    scorer = PairQualityScorer(fake_pca_path, encoder=fake_encoder)
    with pytest.raises(ValueError, match=f'gamma must be a finite number >= 0 .*got {gamma}'):
        MODELS.build(dict(tiny_model_cfg('MoCo', scorer), gamma=gamma))


@pytest.mark.parametrize('options,shown', [
    (dict(mean=[120, 115, 100]), 'mean and std go together, 3 values each'),
    (dict(mean=[1, 2], std=[1, 2]), 'mean and std go together, 3 values each'),
    (dict(autocast_dtype='float8'), "autocast_dtype must be 'float16' or 'bfloat16', got 'float8'"),
    (dict(autocast_dtype='cuda'), "autocast_dtype must be 'float16' or 'bfloat16', got 'cuda'"),
    (dict(autocast_dtype=torch.int8), "autocast_dtype must be 'float16' or 'bfloat16'"),
    (dict(cast_weights='no'), "cast_weights must be True or False, got 'no'"),
    (dict(overlap='no'), "overlap must be True or False, got 'no'")])
def test_scorer_options_are_checked_when_built(fake_encoder, fake_pca_path, options, shown):
    """A lone mean, an autocast dtype that is not one, a switch spelt as a string: one error
    naming the option when the scorer is built (a TypeError or AttributeError at the first step,
    or 'no' taken as True, before)."""
    with pytest.raises(ValueError, match=re.escape(shown)):
        PairQualityScorer(fake_pca_path, encoder=fake_encoder, **options)
    assert PairQualityScorer(fake_pca_path, encoder=fake_encoder, autocast_dtype=torch.bfloat16,
                             mean=[1, 2, 3], std=[4, 5, 6]).autocast_dtype == torch.bfloat16


def test_tiny_clip_through_transformers(tiny_clip_path, tiny_scorer_pca):
    scorer = MODELS.build(dict(type='PairQualityScorer', encoder=tiny_clip_path,
                               pca_path=tiny_scorer_pca))
    assert scorer.encoder.grid == (8, 8) and scorer.state_dict() == {}
    x = torch.randn(3, 3, 32, 32)
    y = x + 0.5 * torch.randn_like(x)
    scores = scorer(x, y, data_preprocessor=_preprocessor())
    pre = _preprocessor()
    raw = torch.cat([x, y]) * pre.std + pre.mean
    tokens = scorer.encoder(_clip_pixels(raw, scorer.encoder))
    ref = reference_quality(tokens[:3], tokens[3:], scorer.__dict__['_direction'])
    torch.testing.assert_close(scores.q.double(), ref[:, 2], atol=1e-4, rtol=0)
    assert (scores.q.abs() <= 2).all()


def test_outer_autocast_keeps_scores_float32(fake_encoder, fake_pca_path):
    scorer = PairQualityScorer(fake_pca_path, encoder=fake_encoder)
    x, y = torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)
    plain = scorer(x, y, _preprocessor())
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):  # as under AMP training
        amp = scorer(x, y, _preprocessor())
    assert amp.q.dtype == torch.float32 and amp.s_f.dtype == torch.float32
    torch.testing.assert_close(amp.q, plain.q, atol=1e-6, rtol=0)


def test_arguments_and_pca_file_are_checked_before_the_encoder_loads(tmp_path):
    """A typo in pca_path, gamma or normalize was reported only after the encoder had loaded:
    with the default encoder on an offline node the error was about its weights (online, a
    download of gigabytes came first). Here the encoder cannot load at all, and each error
    named is the argument's."""
    from genview_tiny import tiny_model_cfg
    typo, no_encoder = str(tmp_path / 'typo_pca.pth'), str(tmp_path / 'no_encoder')
    with pytest.raises(ValueError, match="autocast_dtype must be 'float16' or 'bfloat16'"):
        PairQualityScorer(typo, encoder=no_encoder, autocast_dtype='float8')
    with pytest.raises(ForegroundPCAError, match=f"file not found: '{re.escape(typo)}'"):
        PairQualityScorer(typo, encoder=no_encoder)
    scorer = dict(type='PairQualityScorer', pca_path=typo, encoder=no_encoder)
    for bad, shown in ((dict(normalize='globl'), 'normalize must be one of'),
                       (dict(gamma=-1.0), 'gamma must be a finite number >= 0')):
        with pytest.raises(ValueError, match=shown):
            MODELS.build(dict(tiny_model_cfg('MoCo', scorer), **bad))


def test_a_one_value_mean_and_std_are_read_for_the_three_channels():
    """MMEngine's preprocessors take a mean/std of 1 or 3 values; a 1-value one crashed the
    scorer with "shape '[1, 3, 1, 1]' is invalid for input of size 1"."""
    from mmpretrain.models import SelfSupDataPreprocessor

    from genview_mm.models.scorers.normalization import ssl_normalisation
    pre = SelfSupDataPreprocessor(mean=[127.5], std=[127.5], to_rgb=True)
    mean, std, bgr = ssl_normalisation(pre, None, None)
    assert (mean, std, bgr) == ([127.5] * 3, [127.5] * 3, False)
    with pytest.raises(ValueError, match=r'mean of 2 values: give 1 or 3'):
        ssl_normalisation(None, [1.0, 2.0], [1.0, 1.0, 1.0])
