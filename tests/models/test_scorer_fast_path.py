"""The scorer's fast path on CPU with a tiny timm ConvNeXt: bit-identical scores with the weights
stored in the autocast dtype (bf16 autocast, which CPUs run), the accuracy rule for channels_last
and torch.compile against the official two-call path, the fixed-batch runner's padding and
fallbacks, and the CUDA-only switches turning themselves off with a log line."""
import copy

import pytest
import torch
from mmpretrain.registry import MODELS

from genview_mm.models.scorers import (
    PairQualityScorer,
    fast_path,
    official_scores,
    score_errors,
    within_accuracy_rule,
)
from genview_mm.models.weighting import quality_weights
from genview_tiny import SSL_MEAN, SSL_STD
from helpers import save_pca

#: stated tolerance of the tests where the kernels change (channels_last, inductor): errors at
#: most 1.5x the official path's (the benchmark prints the strict comparison)
SLACK = 1.5
EXACT = dict(autocast=True, autocast_dtype='bfloat16', channels_last=False, compile=False,
             cuda_graph=False)


@pytest.fixture(scope='module')
def convnext():
    """A tiny random timm ConvNeXt (``test_convnext``) as a patch encoder, 64 px."""
    import genview_mm  # noqa: F401
    torch.manual_seed(0)
    return MODELS.build(dict(type='TimmPatchEncoder', model_name='test_convnext',
                             pretrained=False, input_size=64))


@pytest.fixture(scope='module')
def pca(convnext, tmp_path_factory):
    path = str(tmp_path_factory.mktemp('pca') / 'convnext.pth')
    return save_pca(path, convnext.name, convnext.dim, convnext.grid, convnext.input_size,
                    arch=convnext.arch)


def views(pairs: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mean, std = torch.tensor(SSL_MEAN).view(1, 3, 1, 1), torch.tensor(SSL_STD).view(1, 3, 1, 1)
    raw = torch.randint(0, 256, (2, pairs, 3, 64, 64), generator=g).float()
    return (raw[0] - mean) / std, (raw[1] - mean) / std


def scorer(pca, convnext, **kwargs) -> PairQualityScorer:
    return PairQualityScorer(pca, encoder=copy.deepcopy(convnext), mean=SSL_MEAN, std=SSL_STD,
                             **kwargs)


def official(convnext, direction, v1, v2, dtype):
    return official_scores(convnext, direction, v1, v2, dtype, SSL_MEAN, SSL_STD)['q']


def test_weights_in_the_autocast_dtype_give_identical_scores(pca, convnext):
    plain = scorer(pca, convnext, cast_weights=False, **EXACT)
    cast = scorer(pca, convnext, cast_weights=True, **EXACT)
    v1, v2 = views(6)
    a, b = plain(v1, v2), cast(v1, v2)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    assert torch.equal(quality_weights(a.q).weights, quality_weights(b.q).weights)
    model = cast.encoder.model
    assert model.stem[0].weight.dtype == torch.bfloat16  # a Conv2d
    assert {p.dtype for n, p in model.named_parameters() if 'norm' in n} == {torch.float32}
    assert {p.dtype for p in plain.encoder.parameters()} == {torch.float32}
    assert cast.speed_settings() == dict(autocast=True, cast_weights=True, channels_last=False,
                                         compile=False, cuda_graph=False)
    # then a device without autocast (the scorer moved from a GPU to the CPU, where 'auto'
    # is off): its bfloat16 weights failed on a dtype mismatch; it scores as loaded again
    fp32 = scorer(pca, convnext, cast_weights=False, autocast=False, channels_last=False,
                  compile=False, cuda_graph=False)
    cast.switches['autocast'] = False
    cast.__dict__['_plan'] = None  # (the plan of another device)
    for x, y in zip(fp32(v1, v2), cast(v1, v2)):
        assert torch.equal(x, y)
    assert {p.dtype for p in cast.encoder.parameters()} == {torch.float32}
    assert all(torch.equal(p, q) for p, q in zip(cast.encoder.parameters(),
                                                 convnext.parameters()))


def test_one_call_matches_the_official_two_calls_in_float32(pca, convnext):
    s = scorer(pca, convnext, autocast=False)
    v1, v2 = views(4)
    torch.testing.assert_close(s(v1, v2).q, official(convnext, s.__dict__['_direction'], v1, v2,
                                                     None), atol=1e-5, rtol=0)


def test_the_official_reference_is_float32_under_an_outer_autocast(pca, convnext):
    """Inside a training step's AMP the official path's pair maths ran in bfloat16: its
    'float32 reference' (dtype None) gave bfloat16 scores, far from float32."""
    u = scorer(pca, convnext).__dict__['_direction']
    v1, v2 = views(4)
    plain = official_scores(convnext, u, v1, v2, None, SSL_MEAN, SSL_STD)
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        amp = official_scores(convnext, u, v1, v2, None, SSL_MEAN, SSL_STD)
    for key in ('s_f', 's_b', 'q'):
        assert amp[key].dtype == torch.float32, key
        torch.testing.assert_close(amp[key], plain[key], atol=1e-6, rtol=0)


def errors_of(pca, convnext, pairs=8, **kwargs):
    """Errors of the official bf16 path (O) and of a scorer (P) against float32."""
    v1, v2 = views(pairs, seed=3)
    fast = scorer(pca, convnext, **dict(EXACT, **kwargs))
    u = fast.__dict__['_direction']
    ref = official(convnext, u, v1, v2, None)
    o = score_errors(official(convnext, u, v1, v2, torch.bfloat16), ref)
    return o, score_errors(fast(v1, v2).q, ref), fast


def test_channels_last_keeps_the_accuracy_rule(pca, convnext):
    o, p, _ = errors_of(pca, convnext, channels_last=True)
    assert o['q'] > 0 and o['w'] > 0  # bf16 does move the scores: the comparison means something
    assert within_accuracy_rule(p, o, slack=SLACK), (p, o)


@pytest.mark.slow
def test_compile_on_cpu_keeps_the_accuracy_rule_and_pads_a_tail_batch(pca, convnext):
    o, p, fast = errors_of(pca, convnext, channels_last=True, compile=True)
    runner = fast.__dict__['_plan'][2]
    assert runner.pairs == 8 and runner.compile and runner.fast is not runner.fn
    assert within_accuracy_rule(p, o, slack=SLACK), (p, o)
    v1, v2 = views(8, seed=3)
    full = fast(v1, v2).q
    tail = fast(v1[:5], v2[:5]).q  # padded to 8 pairs, same compiled graph
    assert tail.shape == (5, ) and torch.equal(tail, full[:5])


def test_runner_pads_smaller_batches_and_runs_larger_ones_eagerly(monkeypatch):
    shapes, messages = [], []
    monkeypatch.setattr(fast_path, 'print_log', lambda msg, **kw: messages.append(msg))

    def fake_compile(fn, **kwargs):
        def compiled(x):
            shapes.append(tuple(x.shape))
            return fn(x)
        return compiled

    monkeypatch.setattr(torch, 'compile', fake_compile)

    def fn(x):  # a per-pair score: sum of the first view minus the second
        n = x.size(0) // 2
        s = x.flatten(1).sum(1)
        return s[:n], s[n:], s[:n] - s[n:]

    runner = fast_path.FixedBatchRunner(fn, compile=True)
    x = torch.arange(8.).view(8, 1)  # 4 pairs: views 0-3, then 4-7
    assert [t.tolist() for t in runner(x)] == [[0, 1, 2, 3], [4, 5, 6, 7], [-4] * 4]
    small = torch.tensor([[10.], [11.], [20.], [21.]])  # 2 pairs, padded to 4
    assert runner(small)[2].tolist() == [-10, -10]
    assert shapes == [(8, 1), (8, 1)]
    assert runner(torch.arange(12.).view(12, 1))[2].tolist() == [-6] * 6  # eager
    assert shapes == [(8, 1), (8, 1)]
    assert messages == ['PairQualityScorer: 6 pairs, more than the 4 it was compiled for; '
                        'scoring them eagerly.']


def test_a_failed_compile_is_logged_and_scoring_goes_on_eagerly(pca, convnext, monkeypatch):
    messages = []
    monkeypatch.setattr(fast_path, 'print_log', lambda msg, **kw: messages.append(msg))

    def broken(fn, **kwargs):
        def compiled(x):
            raise RuntimeError('no C++ compiler')
        return compiled

    monkeypatch.setattr(torch, 'compile', broken)
    s = scorer(pca, convnext, **dict(EXACT, compile=True))
    v1, v2 = views(3)
    q = s(v1, v2).q
    assert torch.equal(q, scorer(pca, convnext, **EXACT)(v1, v2).q)
    assert s.speed_settings()['compile'] is False
    assert len(messages) == 1 and 'RuntimeError: no C++ compiler' in messages[0]
    assert 'scoring eagerly from now on' in messages[0]


def test_cuda_only_switches_fall_back_on_cpu_with_a_log_line(pca, convnext, monkeypatch):
    messages = []
    monkeypatch.setattr(fast_path, 'print_log', lambda msg, **kw: messages.append(msg))
    v1, v2 = views(3)
    graphed = scorer(pca, convnext, cuda_graph=True)
    assert torch.equal(graphed(v1, v2).q, scorer(pca, convnext, cuda_graph=False)(v1, v2).q)
    assert messages == ['PairQualityScorer: cuda_graph=True needs a CUDA device; scoring on '
                        'cpu without it (same numbers).']
    assert graphed.speed_settings()['cuda_graph'] is False


def test_auto_switches_are_on_for_cuda_only():
    cpu, cuda = torch.device('cpu'), torch.device('cuda')
    assert fast_path.resolve_switch('compile', 'auto', cuda, set())
    assert not fast_path.resolve_switch('compile', 'auto', cpu, set())
    assert fast_path.resolve_switch('compile', True, cpu, set())  # compile runs on CPU
    assert fast_path.resolve_graph('auto', cuda, 64, set(), 128)
    assert not fast_path.resolve_graph('auto', cuda, 65, set(), 128)  # large: no graph
    assert not fast_path.resolve_graph('auto', cpu, 4, set(), 128)


def test_defaults_on_cpu_are_the_plain_float32_path(pca, convnext):
    s = scorer(pca, convnext)
    s(*views(2))
    assert s.speed_settings() == dict(autocast=False, cast_weights=False, channels_last=False,
                                      compile=False, cuda_graph=False)
    assert {p.dtype for p in s.encoder.parameters()} == {torch.float32}


def test_bad_switch_values_are_refused(pca, convnext):
    with pytest.raises(ValueError, match=r"compile=\.\.\.\) must be True, False or 'auto'"):
        scorer(pca, convnext, compile='yes')


@pytest.mark.parametrize('config', ['genview_mocov2_r50_in1k.py', 'genview_mocov3_r50_in1k.py'])
def test_paper_configs_use_the_optimised_scorer(repo_root, config):
    from genview_mm.apis import load_config
    scorer = load_config(f'{repo_root}/configs/{config}').model.scorer
    assert {k: scorer[k] for k in ('autocast_dtype', 'cast_weights', 'channels_last', 'compile',
                                   'cuda_graph')} == dict(
        autocast_dtype='float16', cast_weights=True, channels_last='auto', compile=False,
        cuda_graph='auto')
    assert not scorer.get('overlap', False)  # opt-in


@pytest.mark.parametrize('to_rgb', [True, False])
def test_official_style_scorer_matches_the_scorer_in_float32(pca, convnext, to_rgb):
    from genview_mm.models.scorers import OfficialStyleScorer
    pre = MODELS.build(dict(type='SelfSupDataPreprocessor', mean=SSL_MEAN, std=SSL_STD,
                            to_rgb=to_rgb))
    v1, v2 = views(3)
    kwargs = dict(encoder=copy.deepcopy(convnext), autocast=False)
    got = OfficialStyleScorer(pca, **kwargs)(v1, v2, pre)
    want = PairQualityScorer(pca, **kwargs)(v1, v2, pre)
    torch.testing.assert_close(torch.stack(got), torch.stack(want), atol=1e-5, rtol=0)
