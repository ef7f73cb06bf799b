"""The GenView algorithms (GenViewMoCo, ...MoCoV3, ...BYOL, ...SimSiam, ...SimCLR, ...SwAV): each
trains on CPU, keeps upstream keys, never trains CLIP, and weights its loss rows exactly."""
import copy
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmpretrain.registry import MODELS

from genview_tiny import TINY_MODELS, StubScorer, tiny_batch, tiny_model_cfg


@pytest.fixture(autouse=True)
def max_iters():
    """BYOL/MoCo v3 cosine momentum reads the run length from the message hub."""
    from mmengine.logging import MessageHub
    MessageHub.get_current_instance().update_info('max_iters', 10)


@pytest.fixture(scope='module')
def clip_scorer(tiny_clip_path, tiny_scorer_pca) -> dict:
    return dict(type='PairQualityScorer', encoder=tiny_clip_path, pca_path=tiny_scorer_pca)


@pytest.mark.parametrize('method', list(TINY_MODELS))
def test_trains_with_finite_loss_and_upstream_keys(method, clip_scorer):
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg(method, clip_scorer))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    clip_params = {id(p) for p in model.scorer.encoder.parameters()}
    assert clip_params and not clip_params & {id(p) for p in model.parameters()}
    for step in range(3):
        log_vars = model.train_step(tiny_batch(method, seed=step), optim)
        assert torch.isfinite(log_vars['loss'])
    assert log_vars['genview_w_mean'].item() == pytest.approx(1.0, abs=1e-5)
    for key in ('genview_w_std', 'genview_w_min', 'genview_w_max', 'genview_sf', 'genview_sb',
                'genview_nonfinite'):
        assert torch.isfinite(log_vars[key])
    assert all(p.grad is None for p in model.scorer.encoder.parameters())
    torch.manual_seed(0)
    upstream = MODELS.build(tiny_model_cfg(method))
    state = model.state_dict()
    assert list(state) == list(upstream.state_dict())
    assert not any('scorer' in k or 'clip' in k.lower() for k in state)
    upstream.load_state_dict(state, strict=True)


def test_gradients_reach_ssl_model_never_clip(clip_scorer):
    model = MODELS.build(tiny_model_cfg('MoCoV3', clip_scorer))
    data = model.data_preprocessor(tiny_batch('MoCoV3'), True)
    losses = model(**data, mode='loss')
    losses['loss'].backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(g is not None for g in (p.grad for p in model.head.predictor.parameters()))
    assert all(p.grad is None and not p.requires_grad
               for p in model.scorer.encoder.parameters())
    for k in losses:
        if k.startswith('genview_'):
            assert not losses[k].requires_grad


def test_unit_weights_reproduce_upstream_loss():
    for method in ('BYOL', 'SimCLR', 'MoCo'):
        torch.manual_seed(0)
        upstream = MODELS.build(tiny_model_cfg(method))
        genview = MODELS.build(tiny_model_cfg(method, StubScorer(torch.ones(4))))
        genview.load_state_dict(upstream.state_dict())
        data = upstream.data_preprocessor(tiny_batch(method), True)
        torch.manual_seed(1)
        ref = upstream(**copy.deepcopy(data), mode='loss')['loss']
        torch.manual_seed(1)
        got = genview(**data, mode='loss')['loss']
        assert abs(got.item() - ref.item()) < 1e-6, method


def test_simclr_weights_both_rows_of_each_pair():
    w = torch.tensor([2.0, 0.5, 1.2, 0.3])  # mean 1
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg('SimCLR', StubScorer(w)))
    assert torch.equal(model.loss_row_weights(w), torch.tensor([2., 2., .5, .5, 1.2, 1.2, .3, .3]))
    data = model.data_preprocessor(tiny_batch('SimCLR'), True)
    got = model(**data, mode='loss')['loss']
    # direct NT-Xent: rows interleaved (2i, 2i+1) as upstream stacks the views
    x = torch.stack(data['inputs'], 1).flatten(0, 1)
    z = F.normalize(model.neck(model.backbone(x))[0], dim=1)
    s = z @ z.t() / 0.1
    s = s.masked_fill(torch.eye(8, dtype=torch.bool), float('-inf'))
    partner = torch.arange(8) ^ 1
    rows = torch.logsumexp(s, 1) - s[torch.arange(8), partner]
    expected = (rows * w.repeat_interleave(2)).mean()
    assert got.item() == pytest.approx(expected.item(), abs=1e-5)


def test_swav_weights_each_sample_across_all_crops():
    w = torch.tensor([2.0, 0.5, 1.2, 0.3])  # mean 1
    torch.manual_seed(0)
    model = MODELS.build(tiny_model_cfg('SwAV', StubScorer(w)))
    twin = copy.deepcopy(model)
    data = model.data_preprocessor(tiny_batch('SwAV'), True)
    got = model(**copy.deepcopy(data), mode='loss')['loss']
    from genview_mm.models.weighting import swav_per_sample_loss
    views = data['inputs']
    feats = twin.neck([twin.backbone(torch.cat(views[:2])), twin.backbone(torch.cat(views[2:]))])
    per_sample = swav_per_sample_loss(twin.head.loss_module, feats)
    assert got.item() == pytest.approx((w * per_sample).mean().item(), abs=1e-5)


def test_head_wrapped_once_and_scorer_optional():
    cfg = tiny_model_cfg('MoCo', StubScorer(torch.ones(4)))
    cfg['head'] = dict(type='QualityDrivenContrastiveHead', head=cfg['head'])
    model = MODELS.build(cfg)
    assert type(model.head.wrapped).__name__ == 'ContrastiveHead'
    with mock.patch('genview_mm.models.selfsup.genview_mixin.print_log') as log:
        baseline = MODELS.build(tiny_model_cfg('MoCo', None) | dict(type='GenViewMoCo'))
    assert baseline.scorer is None  # said: a config that lost its scorer trains the baseline
    assert log.call_args[0][0].startswith('GenViewMoCo has no scorer: it trains the upstream '
                                          'loss, unweighted')
    data = baseline.data_preprocessor(tiny_batch('MoCo'), True)
    assert set(baseline(**data, mode='loss')) == {'loss'}
