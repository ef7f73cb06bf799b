"""genview_mm.compat, round 3: safe loading cannot switch itself off (a loader that stops
passing weights_only is caught at import), and the hue fix returns writable arrays, equal to
upstream's wherever upstream worked."""
import importlib.util
import os
import time
import warnings

import numpy as np
import pytest
import torch

from genview_mm import compat


def weights_only_false_loader(filename, map_location):
    """What MMEngine's main branch does (mmengine/runner/checkpoint.py, 151a87ab)."""
    return torch.load(filename, map_location=map_location, weights_only=False)


def test_safe_loading_check_passes_here_and_is_cheap():
    compat.check_safe_checkpoint_loading()  # MMEngine 0.10.7: refused, so no error
    times = []
    for _ in range(5):
        start = time.perf_counter()
        compat.check_safe_checkpoint_loading()
        times.append(time.perf_counter() - start)
    assert sorted(times)[2] < 0.1, times  # ~4 ms measured on the 2-core CI machine


def test_a_loader_without_weights_only_fails_closed(monkeypatch):
    from mmengine.runner.checkpoint import CheckpointLoader
    monkeypatch.setitem(CheckpointLoader._schemes, '', weights_only_false_loader)
    with pytest.raises(compat.UnsafeCheckpointLoading) as err:
        compat.check_safe_checkpoint_loading()
    msg = str(err.value)
    assert 'runs code from checkpoint files' in msg and 'stops rather than load unsafely' in msg
    assert "replaced MMEngine's checkpoint loader" in msg  # the version is the verified one
    # and at import: apply() refuses to finish
    monkeypatch.setattr(compat, '_applied', False)
    with pytest.raises(compat.UnsafeCheckpointLoading):
        compat.apply()
    assert compat._applied is False


def test_another_mmengine_release_is_told_to_pin(monkeypatch):
    import mmengine
    from mmengine.runner.checkpoint import CheckpointLoader
    monkeypatch.setitem(CheckpointLoader._schemes, '', weights_only_false_loader)
    monkeypatch.setattr(mmengine, '__version__', '0.10.8')
    with pytest.raises(compat.UnsafeCheckpointLoading, match=r"pip install 'mmengine==0\.10\.7'"):
        compat.check_safe_checkpoint_loading()


def test_a_torch_before_2_6_is_told_to_upgrade(monkeypatch, repo_root):
    """torch < 2.6 loads with weights_only=False unless told otherwise, and setup.py accepted
    torch>=2.0 (the usual OpenMMLab env: torch 2.1 with mmcv 2.1.0's prebuilt wheel): import
    genview_mm then stopped telling the user to remove a replaced MMEngine loader that nobody
    had replaced. It names torch now, and setup.py asks for the torch that loads safely."""
    from mmengine.runner.checkpoint import CheckpointLoader
    monkeypatch.setitem(CheckpointLoader._schemes, '', weights_only_false_loader)  # 2.5's default
    monkeypatch.setattr(torch, '__version__', '2.5.1+cu121')
    with pytest.raises(compat.UnsafeCheckpointLoading) as err:
        compat.check_safe_checkpoint_loading()
    assert str(err.value).endswith(
        '(MMEngine 0.10.7, torch 2.5.1+cu121) runs code from checkpoint files: it loaded a test '
        'file whose unpickling calls a function, so genview_mm stops rather than load unsafely; '
        'torch before 2.6 loads with weights_only=False by default: install torch>=2.6 '
        '(verified: torch==2.14.1 torchvision==0.29.1) and mmcv built for it.')
    with open(os.path.join(repo_root, 'setup.py')) as f:
        text = f.read()
    assert "'torch>=2.6'" in text and "'torch>=2.0'" not in text


def test_torch_switch_off_variable_is_caught(monkeypatch):
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')  # torch's own switch
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # torch warns that it forces weights_only=False
        with pytest.raises(compat.UnsafeCheckpointLoading, match='unset TORCH_FORCE_NO_WEIGHTS'):
            compat.check_safe_checkpoint_loading()


def test_setup_pins_the_verified_mmengine(repo_root):
    with open(os.path.join(repo_root, 'setup.py')) as f:
        text = f.read()
    assert f"'mmengine=={compat.VERIFIED_MMENGINE}'" in text
    assert 'mmengine>=' not in text


# ---- mmcv.adjust_hue ---------------------------------------------------------------------
def upstream_adjust_hue():
    """mmcv 2.1.0's own adjust_hue, loaded afresh from its file (compat replaced the name)."""
    import mmcv.image.photometric as photometric
    spec = importlib.util.spec_from_file_location('mmcv.image._upstream_photometric',
                                                  photometric.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.adjust_hue


def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((5, 7), (32, 24))]


@pytest.mark.parametrize('backend', ['cv2', 'pillow'])
def test_adjust_hue_is_writable_and_equals_upstream_where_upstream_worked(backend):
    import mmcv
    upstream = upstream_adjust_hue()
    assert upstream is not mmcv.adjust_hue
    for img in images():
        for factor in (0.0, 0.02, 0.1, 0.25, 0.5):  # upstream works for factors >= 0
            ours, theirs = mmcv.adjust_hue(img, factor, backend), upstream(img, factor, backend)
            assert ours.flags.writeable and theirs.flags.writeable
            assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), (backend, factor)
        out = mmcv.adjust_hue(img, -0.2, backend)  # upstream: OverflowError under numpy 2
        assert out.flags.writeable
        out[0, 0] = 7  # in place, as the next transform may do
        if backend == 'pillow':
            with pytest.raises(OverflowError):
                upstream(img, -0.2, backend)


def test_color_jitter_then_random_erasing_in_place():
    from mmcv.transforms import Compose
    from mmpretrain.registry import TRANSFORMS
    pipeline = Compose([
        TRANSFORMS.build(dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
                              hue=0.1, backend='pillow')),
        TRANSFORMS.build(dict(type='RandomErasing', erase_prob=1.0, mode='const',
                              min_area_ratio=0.1, max_area_ratio=0.3)),
    ])
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.random.seed(0)
    for _ in range(16):  # ColorJitter shuffles its ops: hue comes last on some samples
        out = pipeline(dict(img=img.copy()))['img']
        assert out.shape == img.shape and (out == 128).all(-1).any()
