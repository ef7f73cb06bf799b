"""quality_weights, the pure weight rule w = N * softmax(gamma * q) (arXiv:2403.12003,
Sec. 3.3): mean one, order kept, gamma, detached, non-finite scores, bad arguments."""
import math

import pytest
import torch

from genview_mm.models.weighting import quality_weights


def test_mean_is_one_and_matches_formula():
    q = torch.tensor([0.3, -0.5, 1.2, 0.0, -1.9, 0.7])
    w, bad = quality_weights(q, gamma=1.0)
    assert bad == 0
    assert w.dtype == torch.float32 and w.shape == (6, )
    assert abs(w.mean().item() - 1.0) < 1e-6
    expected = 6 * torch.exp(q.double()) / torch.exp(q.double()).sum()
    torch.testing.assert_close(w.double(), expected, atol=1e-6, rtol=0)


def test_order_preserved_and_gamma_sharpens():
    q = torch.tensor([0.1, 0.9, -0.4, 0.5])
    w1, _ = quality_weights(q, gamma=1.0)
    w4, _ = quality_weights(q, gamma=4.0)
    assert torch.equal(torch.argsort(w1), torch.argsort(q))
    assert w4.max() > w1.max() and w4.min() < w1.min()


def test_gamma_zero_and_equal_scores_are_uniform():
    q = torch.tensor([0.3, -1.0, 2.0])
    assert torch.equal(quality_weights(q, gamma=0.0).weights, torch.ones(3))
    assert torch.equal(quality_weights(torch.full((5, ), 0.7)).weights, torch.ones(5))


def test_detached_from_graph():
    q = torch.tensor([0.2, 0.4], requires_grad=True)
    w, _ = quality_weights(q * 2)
    assert not w.requires_grad and w.grad_fn is None


@pytest.mark.parametrize('bad_value', [math.nan, math.inf, -math.inf])
def test_nonfinite_falls_back_to_uniform(bad_value):
    q = torch.tensor([0.2, bad_value, -0.3, bad_value])
    w, bad = quality_weights(q)
    assert bad == 2
    assert torch.equal(w, torch.ones(4))


def test_global_without_process_group_equals_local():
    q = torch.randn(7)
    torch.testing.assert_close(quality_weights(q, normalize='global').weights,
                               quality_weights(q, normalize='local').weights)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match='normalize'):
        quality_weights(torch.zeros(2), normalize='batch')
    with pytest.raises(ValueError, match='1-D'):
        quality_weights(torch.zeros(2, 2))


def test_no_host_read_in_a_local_step(monkeypatch):
    """Weights and telemetry stay on the device: no ``.item()``/``bool()``/``int()`` of a
    tensor (each waits for a GPU to finish the scorer before the SSL forward can be queued)."""
    from genview_mm.models.scorers import PairScores
    from genview_mm.models.selfsup.genview_mixin import quality_log_vars
    q = torch.tensor([0.2, 0.5, -0.1])
    expected = quality_weights(q)
    log_vars = quality_log_vars(PairScores(q, q, q), expected)

    def refuse(*args):
        raise AssertionError('a host read of a tensor')
    for name in ('item', 'tolist', '__bool__', '__int__', '__float__'):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    got = quality_weights(q)
    got_vars = quality_log_vars(PairScores(q, q, q), got)
    monkeypatch.undo()
    assert torch.equal(got.weights, expected.weights) and got.num_nonfinite == 0
    assert all(torch.equal(got_vars[k], log_vars[k]) for k in log_vars)
    assert log_vars['genview_nonfinite'].dtype == torch.float32


@pytest.mark.parametrize('gamma', [float('nan'), float('inf'), -5.0])
def test_gamma_is_checked_by_the_rule_itself(gamma):
    """Only GenViewMixin checked gamma: the public rule gave NaN weights for a NaN or inf
    gamma with num_nonfinite 0 (its fallback counts non-finite scores only), and favoured the
    worst pairs for a negative one."""
    with pytest.raises(ValueError, match=f'gamma must be a finite number >= 0 .*got {gamma}'):
        quality_weights(torch.tensor([0.5, -0.2, 1.0]), gamma)
