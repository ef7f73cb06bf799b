"""GenViewPairDataset is upstream MultiView when no generated view is used: upstream's own test
cases pass against it, and with prob=0 (manifest or not) a seed gives MultiView's very views."""
import os.path as osp
import random

import numpy as np
import pytest
import torch
from mmcv.transforms import Compose, LoadImageFromFile, Resize
from mmpretrain.datasets import GaussianBlur, MultiView, Solarize

from genview_mm.apis import load_config
from genview_mm.datasets import GenViewPairDataset
from helpers import ROOT, photos_with_views, write_photos

N = 4


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """4 photos (40 px) with a fake manifest of views of them."""
    return photos_with_views(str(tmp_path_factory.mktemp('dropin')), N, 40, ext='.png')


def builds(manifest):
    """GenViewPairDataset with MultiView's positional arguments: at prob=0 without a manifest,
    and at prob=1 with one (inputs without img_path have no generated view)."""
    return [lambda t, n: GenViewPairDataset(t, n, prob=0.0),
            lambda t, n: GenViewPairDataset(t, n, manifest=manifest)]


@pytest.mark.parametrize('which', [0, 1])
def test_upstream_multiview_cases(data, which):
    """mmpretrain 1.2.0 tests/test_datasets/test_transforms/test_wrappers.py::test_multi_view,
    run against GenViewPairDataset (input dicts hold only `img`)."""
    build = builds(data.manifest)[which]
    original_img = np.ones((4, 4, 3), dtype=np.uint8)
    pipeline1 = [Resize(2), GaussianBlur(magnitude_range=(0.1, 2), magnitude_std='inf')]
    for num_views in (2, [2]):
        results = build([pipeline1], num_views)(dict(img=original_img))
        assert len(results['img']) == 2
        assert results['img'][0].shape == (2, 2, 3)
    pipeline2 = [Solarize(thr=128), GaussianBlur(magnitude_range=(0.1, 2), magnitude_std='inf')]
    transform = build([pipeline1, pipeline2], [1, 2])
    results = transform(dict(img=original_img))
    assert len(results['img']) == 3
    assert results['img'][0].shape == (2, 2, 3)
    assert results['img'][1].shape == (4, 4, 3)
    assert results['genview_slot'] == -1
    assert isinstance(str(transform), str)
    # MultiView's attributes: one Compose per entry of `transforms`, one pipeline per view
    upstream = MultiView([pipeline1, pipeline2], [1, 2])
    assert len(transform.pipelines) == len(upstream.pipelines) == 2
    assert len(transform.transforms) == len(upstream.transforms) == 3
    assert [transform.pipelines.index(p) for p in transform.transforms] == [0, 1, 1]
    assert transform.num_views == upstream.num_views == [1, 2]


def test_one_view_as_multiview_but_no_generated_pair(data):
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    out = GenViewPairDataset([[Resize(2)]], num_views=1, prob=0.0)(dict(img=img))
    expected = MultiView([[Resize(2)]], num_views=1)(dict(img=img))
    assert len(out['img']) == 1
    np.testing.assert_array_equal(out['img'][0], expected['img'][0])
    with pytest.raises(ValueError, match='makes 1 view; a generated view needs a pair'):
        GenViewPairDataset([[Resize(2)]], num_views=1, manifest=data.manifest)


def draw_from_every_stream(results):
    """A transform drawing from python's random, numpy and torch (callables are allowed)."""
    img = results['img'].astype(np.int32)
    img += random.randint(0, 9) + int(np.random.randint(0, 9)) + int(torch.randint(0, 9, ()))
    results['img'] = np.clip(img, 0, 255).astype(np.uint8)
    return results


VIEW = [dict(type='RandomResizedCrop', scale=24, crop_ratio_range=(0.2, 1.0)),
        dict(type='RandomApply', prob=0.8,
             transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
                              hue=0.1)]),
        dict(type='RandomGrayscale', prob=0.2, keep_channels=True),
        dict(type='RandomFlip', prob=0.5), draw_from_every_stream]


def views_after_seed(transform, paths, seed=3):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    pipeline = Compose([LoadImageFromFile(), transform])
    outs = [pipeline(dict(img_path=p, sample_idx=i)) for i, p in enumerate(paths * 3)]
    return outs, (random.random(), float(np.random.rand()), float(torch.rand(())))


@pytest.mark.parametrize('case', ['prob0', 'prob0_no_manifest', 'no_view_for_image'])
def test_same_seed_same_views_as_multiview(data, tmp_path, case):
    """Bit for bit, and the random streams are left where MultiView leaves them."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import TRANSFORMS
    init_default_scope('mmpretrain')
    paths = data.sources
    if case == 'no_view_for_image':  # prob=1, but these images have no generated view
        paths = write_photos(str(tmp_path / 'other'), 2, size=40, ext='.png')
    manifest = None if case == 'prob0_no_manifest' else data.manifest
    prob = 1.0 if case == 'no_view_for_image' else 0.0
    views = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in VIEW]
    theirs, their_state = views_after_seed(MultiView([views], 2), paths)
    ours, our_state = views_after_seed(
        GenViewPairDataset([views], 2, manifest=manifest, prob=prob), paths)
    assert our_state == their_state
    assert len(ours) == len(theirs) == 3 * len(paths)
    for mine, upstream in zip(ours, theirs):
        assert mine['genview_slot'] == -1 and len(mine['img']) == 2
        for a, b in zip(mine['img'], upstream['img']):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)
    assert not all(np.array_equal(a['img'][0], b['img'][0]) for a, b in zip(ours, ours[1:]))


def test_genview_config_at_prob0_gives_upstream_mocov2_samples(data, tmp_path):
    """configs/genview_mocov2_r50_in1k.py with genview.prob=0 (its default manifest path does
    not exist here and is not read) packs the same inputs as upstream MoCo v2's config; at
    prob=1 without a manifest it refuses, naming the setting."""
    from mmengine.config import Config
    from mmengine.dataset import Compose as MMCompose
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    ours_cfg = load_config(osp.join(ROOT, 'configs', 'genview_mocov2_r50_in1k.py'),
                           {'genview.prob': 0.0})
    assert not osp.exists(ours_cfg.train_pipeline[1]['manifest'])
    upstream = tmp_path / 'upstream_mocov2.py'
    upstream.write_text("_base_ = 'mmpretrain::mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py'\n")
    upstream_cfg = Config.fromfile(str(upstream))
    outs = []
    for cfg in (ours_cfg, upstream_cfg):
        random.seed(0)
        np.random.seed(0)
        torch.manual_seed(0)
        pipeline = MMCompose(cfg.train_dataloader.dataset.pipeline)
        outs.append([pipeline(dict(img_path=p, sample_idx=0))['inputs'] for p in data.sources])
    for mine, upstream in zip(*outs):
        assert len(mine) == 2 and all(torch.equal(a, b) for a, b in zip(mine, upstream))
    refusing = load_config(osp.join(ROOT, 'configs', 'genview_mocov2_r50_in1k.py'),
                           {'genview.manifest': None})
    pipeline = MMCompose(refusing.train_dataloader.dataset.pipeline)
    with pytest.raises(ValueError, match=r'no manifest \(prob=1.0\).*genview = dict\(manifest='):
        pipeline(dict(img_path=data.sources[0], sample_idx=0))
