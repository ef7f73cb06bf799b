"""genview_mm.compat: mmpretrain imports under transformers 5; checkpoints load with
weights_only=True, and anything beyond MMEngine's own types is still refused."""
import os
import pickle
import sys

import numpy as np
import pytest
import torch


def test_import_registers_and_fixes_mmpretrain():
    import genview_mm
    import mmpretrain.models  # noqa: F401  (fails without the compat fix under transformers 5)
    from mmpretrain.registry import MODELS
    from mmpretrain.utils import dependency
    assert isinstance(genview_mm.__version__, str) and genview_mm.__version__.count('.') == 2
    assert dependency.WITH_MULTIMODAL is False
    assert 'mmpretrain.models' in sys.modules
    assert MODELS.get('MoCo') is not None


def _message_hub_checkpoint(path):
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('compat_test_hub')
    for v in (1.0, 2.0, 3.0):
        hub.update_scalar('train/loss', v)
    hub.update_info('iter', 7)
    ckpt = dict(meta=dict(epoch=1, iter=7, seed=np.int64(3), hub=hub.state_dict(),
                          arr=np.arange(4, dtype=np.float32)),
                state_dict={'backbone.w': torch.ones(2)})
    torch.save(ckpt, path)


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint
    path = str(tmp_path / 'ok.pth')
    _message_hub_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    buf = ckpt['meta']['hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    assert buf.mean() == pytest.approx(2.0)
    assert buf.statistics('max') == 3.0
    assert ckpt['meta']['arr'].tolist() == [0.0, 1.0, 2.0, 3.0]
    # and through MMEngine's own loader, which calls torch.load without weights_only
    assert torch.equal(_load_checkpoint(path)['state_dict']['backbone.w'], torch.ones(2))


class _Evil:
    def __reduce__(self):
        return (os.system, ('touch /tmp/genview_mm_pwned',))


class _GetattrEscape:
    """Reaches a module global through getattr on an allow-listed class."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


@pytest.mark.parametrize('payload', [_Evil(), _GetattrEscape()], ids=['reduce', 'getattr'])
def test_arbitrary_pickled_object_is_refused(tmp_path, payload):
    from mmengine.runner.checkpoint import _load_checkpoint
    if os.path.exists('/tmp/genview_mm_pwned'):
        os.remove('/tmp/genview_mm_pwned')
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, meta=dict(x=payload)), path)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(path)
    assert not os.path.exists('/tmp/genview_mm_pwned')


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_adjust_hue_negative_factor_rotates_hue(backend):
    import mmcv
    img = np.zeros((4, 4, 3), np.uint8)
    img[..., 2] = 255  # pure red in BGR
    out_neg = mmcv.adjust_hue(img, -0.1, backend=backend)  # raised OverflowError under numpy 2
    out_pos = mmcv.adjust_hue(img, 0.1, backend=backend)
    out_zero = mmcv.adjust_hue(img, 0.0, backend=backend)
    # red turned a little towards magenta (blue up) for -0.1 and towards yellow (green up) for +0.1
    assert out_neg[0, 0, 0] > 100 and out_neg[0, 0, 1] < 10
    assert out_pos[0, 0, 1] > 100 and out_pos[0, 0, 0] < 10
    np.testing.assert_array_equal(out_zero, img)
    with pytest.raises(ValueError):
        mmcv.adjust_hue(img, 0.6, backend=backend)
