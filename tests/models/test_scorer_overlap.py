"""``PairQualityScorer(overlap=True)``: the weights are made where the head first needs them
(after the SSL forward was queued; on CUDA the scorer runs on a side stream meanwhile). On CPU the
same losses as without overlap, and one log line saying the side stream needs CUDA."""
import copy

import pytest
import torch
from mmpretrain.registry import MODELS

from genview_mm.models.scorers import fast_path
from genview_mm.models.selfsup import genview_mixin
from genview_tiny import FakePatchEncoder, tiny_batch, tiny_model_cfg


def build(method: str, pca: str, overlap: bool):
    torch.manual_seed(0)
    scorer = dict(type='PairQualityScorer', pca_path=pca, encoder=FakePatchEncoder(),
                  overlap=overlap)
    return MODELS.build(tiny_model_cfg(method, scorer))


@pytest.mark.parametrize('method', ['MoCo', 'MoCoV3', 'SimCLR'])
def test_overlap_gives_the_same_losses_and_weighs_after_the_forward(fake_pca_path, monkeypatch,
                                                                    method):
    messages, events = [], []
    monkeypatch.setattr(fast_path, 'print_log', lambda msg, **kw: messages.append(msg))
    real_weights = genview_mixin.quality_weights

    def recording_weights(*args, **kwargs):
        events.append('weights')
        return real_weights(*args, **kwargs)

    monkeypatch.setattr(genview_mixin, 'quality_weights', recording_weights)
    losses, order = {}, {}
    for overlap in (False, True):
        model = build(method, fake_pca_path, overlap)
        model.backbone.register_forward_hook(lambda *a: events.append('backbone'))
        data = model.data_preprocessor(tiny_batch(method), True)
        events.clear()
        torch.manual_seed(1)
        losses[overlap] = model(**copy.deepcopy(data), mode='loss')
        # backbone forwards queued before the weights are made
        order[overlap] = events[:events.index('weights')].count('backbone')
        assert 'loss' not in model.head.__dict__  # the deferred loss is removed again
    assert order[False] == 0 and order[True] >= 1
    assert losses[True].keys() == losses[False].keys()
    for key, value in losses[False].items():
        assert torch.equal(losses[True][key], value), key
    assert messages == ['PairQualityScorer: overlap=True needs a CUDA device; scoring on cpu '
                        'in line (same numbers).']
