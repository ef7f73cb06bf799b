"""QualityDrivenContrastiveHead (arXiv:2403.12003, Sec. 3.3): equal to the wrapped head with
unit weights, exact per-sample weighting otherwise, upstream state-dict keys."""
import copy

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS

from genview_mm.models.weighting import swav_per_sample_loss
from genview_tiny import nonlinear

N, C = 6, 8


def _head_cases():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return {
        'ContrastiveHead': (dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                                 temperature=0.2), (r(N, 1), r(N, 10))),
        'MoCoV3Head': (dict(type='MoCoV3Head', temperature=0.2,
                            predictor=nonlinear(C, C, hid=16, avg=False, with_last_bn=False),
                            loss=dict(type='CrossEntropyLoss', loss_weight=0.4)),
                       (r(N, C), r(N, C))),
        'LatentPredictHead': (dict(type='LatentPredictHead',
                                   loss=dict(type='CosineSimilarityLoss'),
                                   predictor=nonlinear(C, C, hid=16, avg=False)),
                              (r(N, C), r(N, C))),
        'SwAVHead': (dict(type='SwAVHead', loss=dict(type='SwAVLoss', feat_dim=C,
                                                     num_crops=[2, 2], num_prototypes=5)),
                     (F.normalize(r(4 * N, C), dim=1), )),
    }


CASES = _head_cases()


def _build(name):
    torch.manual_seed(0)
    return MODELS.build(dict(type='QualityDrivenContrastiveHead', head=CASES[name][0]))


@pytest.mark.parametrize('name', list(CASES))
def test_unit_weights_equal_wrapped_head(name):
    head = _build(name)
    args = CASES[name][1]
    ref = copy.deepcopy(head).wrapped.loss(*args)
    unweighted = copy.deepcopy(head).loss(*args)
    with head.sample_weights(torch.ones(N)):
        got = head.loss(*args)
    assert abs(got.item() - ref.item()) < 1e-6
    assert unweighted.item() == ref.item()


@pytest.mark.parametrize('name', list(CASES))
def test_state_dict_keys_are_upstream(name):
    head = _build(name)
    torch.manual_seed(0)
    upstream = MODELS.build(CASES[name][0])
    assert list(head.state_dict()) == list(upstream.state_dict())
    assert head.loss_module is head.wrapped.loss_module


def _manual_per_sample(name, head, args):
    if name == 'ContrastiveHead':
        pos, neg = args
        return F.cross_entropy(torch.cat([pos, neg], 1) / 0.2, torch.zeros(N, dtype=torch.long),
                               reduction='none')
    if name == 'MoCoV3Head':
        pred = F.normalize(head.predictor([args[0]])[0], dim=1)
        logits = pred @ F.normalize(args[1], dim=1).t() / 0.2
        return 0.4 * F.cross_entropy(logits, torch.arange(N), reduction='none')
    if name == 'LatentPredictHead':
        return -F.cosine_similarity(head.predictor([args[0]])[0], args[1], dim=1)
    return swav_per_sample_loss(copy.deepcopy(head.loss_module), *args)


@pytest.mark.parametrize('name', list(CASES))
def test_weighted_loss_is_mean_of_weighted_rows(name):
    head = _build(name)
    args = CASES[name][1]
    w = torch.tensor([3.0, 0.1, 0.5, 1.0, 0.0, 2.2])  # mean != 1 (a rank's slice of a global batch)
    expected = (w * _manual_per_sample(name, copy.deepcopy(head), args)).sum() / N
    with head.sample_weights(w):
        got = head.loss(*args)
    assert got.item() == pytest.approx(expected.item(), abs=1e-5)
    assert head._row_weights is None  # restored after the block


def test_swav_per_sample_matches_upstream_with_queue():
    head = _build('SwAVHead')
    (x, ) = CASES['SwAVHead'][1]
    head.loss_module.queue = torch.randn(2, 2 * N, C)  # as SwAVHook sets it (filled)
    ref = copy.deepcopy(head).wrapped.loss(x)
    twin = copy.deepcopy(head)
    per = swav_per_sample_loss(twin.loss_module, x)
    assert per.shape == (N, )
    assert abs(per.mean().item() - ref.item()) < 1e-6
    assert twin.loss_module.use_queue
    with head.sample_weights(torch.ones(N)):
        assert abs(head.loss(x).item() - ref.item()) < 1e-6


def test_swav_per_sample_loss_of_a_sample_reaches_only_its_crops():
    """The references above are built with swav_per_sample_loss itself, and a mean does not
    see the order: a loss returned flipped (sample i weighted as sample N-1-i) passed them.
    Sample i's loss must reach rows i, i+N, ... of the crop-major features, and no other."""
    head = _build('SwAVHead')
    (x, ) = CASES['SwAVHead'][1]
    crops = x.shape[0] // N
    assert crops >= 2 and x.shape[0] == crops * N
    for i in (0, 2, N - 1):
        leaf = x.detach().clone().requires_grad_(True)
        swav_per_sample_loss(copy.deepcopy(head.loss_module), leaf)[i].backward()
        reached = sorted(leaf.grad.abs().sum(dim=1).nonzero().flatten().tolist())
        assert reached == [i + k * N for k in range(crops)], i


def test_wrong_row_count_and_unsupported_loss_raise():
    head = _build('ContrastiveHead')
    with head.sample_weights(torch.ones(N + 1)):
        with pytest.raises(ValueError, match='loss rows'):
            head.loss(*CASES['ContrastiveHead'][1])
    # (N, 1) weights passed the count and broadcast against the (N,) row losses into an
    # (N, N) product: a wrong loss (7.10 -> 9.97 for CrossEntropy), no error
    with pytest.raises(ValueError, match=r'must be a 1-D \(R,\) tensor, one per loss row, got '
                       rf'shape \({N}, 1\)'):
        with head.sample_weights(torch.ones(N, 1)):
            pass
    with pytest.raises(NotImplementedError, match='supported losses'):
        MODELS.build(dict(type='QualityDrivenContrastiveHead', head=dict(
            type='LatentCrossCorrelationHead', in_channels=4,
            loss=dict(type='CrossCorrelationLoss'))))


def test_gradients_follow_weights():
    head = _build('LatentPredictHead')
    x = CASES['LatentPredictHead'][1][0].clone().requires_grad_(True)
    w = torch.tensor([0., 1., 1., 1., 1., 2.])
    with head.sample_weights(w):
        head.loss(x, CASES['LatentPredictHead'][1][1]).backward()
    assert x.grad is not None
    # sample 0 has weight 0; BN in the predictor still couples rows, so check the head alone:
    head2 = MODELS.build(dict(type='QualityDrivenContrastiveHead', head=dict(
        type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2)))
    pos = torch.randn(N, 1, requires_grad=True)
    with head2.sample_weights(w):
        head2.loss(pos, torch.randn(N, 4)).backward()
    assert pos.grad[0].item() == 0.0 and pos.grad[5].abs().item() > 0


@pytest.mark.parametrize('w, dtype', [
    (torch.full((N,), 1e-17), torch.float16),  # a rank's slice of global weights, under AMP
    (torch.zeros(N), torch.float32),           # ... underflowed to 0 even in float32
])
def test_cosine_loss_of_weights_that_underflow_is_zero_not_nan(w, dtype):
    """BYOL/SimSiam pass the weights as CosineSimilarityLoss's mask: sum(w l) / sum(w). A
    rank whose weights under normalize='global' all round to 0 (fp16 under AMP, or a large
    gamma) gave 0/0: a NaN loss and NaN gradients, all-reduced into every rank, while the
    scores were finite (nothing warned). Its loss is mean(w l), ~0, with finite gradients."""
    head = _build('LatentPredictHead')
    pred, target = (a.clone() for a in CASES['LatentPredictHead'][1])
    cast = head.loss_module.register_forward_pre_hook(
        lambda m, a: tuple(x.to(dtype) for x in a))  # the dtype autocast gives the loss
    with head.sample_weights(w):
        loss = head.loss(pred, target)
    cast.remove()
    loss.float().backward()
    assert torch.isfinite(loss) and abs(loss.item()) < 1e-6
    assert all(torch.isfinite(p.grad).all() for p in head.parameters() if p.grad is not None)


def test_cosine_weights_are_not_rounded_to_the_autocast_dtype():
    """BYOL/SimSiam under AMP: the mask w / max(w) was cast to the predictor's bfloat16 while
    CosineSimilarityLoss's rows are float32, so the loss was off mean(w l) by ~0.2%; the
    weights stay float32 (as the CE rule's, and the official code's)."""
    head = _build('LatentPredictHead').eval()
    g = torch.Generator().manual_seed(1)
    x, t = torch.randn(8, C, generator=g), torch.randn(8, C, generator=g)
    w = torch.tensor([1.37, .61, 1.13, .89, 1.71, .33, .97, .99])
    w = w / w.mean()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        pred = head.predictor([x])[0]
        assert pred.dtype == torch.bfloat16
        rows = torch.stack([head.loss_module(pred, t, mask=row)  # the loss's own rows
                            for row in torch.eye(8)]).float()
        with head.sample_weights(w):
            got = head.loss(x, t)
    torch.testing.assert_close(got.float(), (w * rows).mean(), rtol=1e-5, atol=1e-7)
