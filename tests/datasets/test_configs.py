"""configs/genview_*.py: each is the paper's recipe on its upstream config (the official scorer,
per-GPU weights, CLIP normalisation, prob 1, upstream's views), loads, and its model and data
pipeline build and run one loss step on CPU (tiny CLIP scorer, tiny manifest, small images)."""
import glob
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from genview_mm.apis import load_config
from helpers import ROOT, photos_with_views

CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'genview_*.py')))
EXPECTED = {'genview_mocov2_r50_in1k': 'GenViewMoCo', 'genview_mocov3_r50_in1k': 'GenViewMoCoV3',
            'genview_mocov3_r50_300e_in1k': 'GenViewMoCoV3',
            'genview_mocov3_vit-base-p16_in1k': 'GenViewMoCoV3',
            'genview_mocov3_vit-small-p16_in1k': 'GenViewMoCoV3',
            'genview_byol_r50_in1k': 'GenViewBYOL', 'genview_simsiam_r50_in1k': 'GenViewSimSiam',
            'genview_swav_r50_in1k': 'GenViewSwAV', 'genview_simclr_r50_in1k': 'GenViewSimCLR'}


def _upstream_path(path: str) -> str:
    """The file of the mmpretrain:: base a GenView config names first."""
    import re

    from mmengine.utils import get_installed_path
    base = re.search(r"'mmpretrain::([^']+)'", open(path).read()).group(1)
    return osp.join(get_installed_path('mmpretrain'), '.mim', 'configs', base)


def test_all_paper_configs_are_shipped():
    assert sorted(osp.basename(c)[:-3] for c in CONFIGS) == sorted(EXPECTED)


@pytest.fixture(scope='module')
def manifest(tmp_path_factory):
    data = photos_with_views(str(tmp_path_factory.mktemp('cfg_data')), 2, 64, ext='.png')
    return data.manifest, data.sources


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.basename(p)[:-3])
def test_config_builds_and_runs_a_loss_step(path, manifest, tiny_clip_path, tiny_scorer_pca):
    from mmengine.dataset import Compose, default_collate
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import genview_mm  # noqa: F401
    init_default_scope('mmpretrain')
    from genview_mm.datasets import GEN_KEYS
    manifest_path, sources = manifest
    cfg = load_config(path)
    name = osp.basename(path)[:-3]
    assert cfg.model.type == EXPECTED[name]
    assert cfg.custom_imports['imports'] == ['genview_mm']
    assert any(h['type'] == 'GenViewPairHook' for h in cfg.custom_hooks)
    # the paper's recipe: official scorer at 224 px, weights per GPU, CLIP normalisation
    assert cfg.model.scorer.encoder == dict(
        type='TimmPatchEncoder', model_name='convnext_base.clip_laion2b_augreg', input_size=224)
    assert cfg.model.get('normalize', 'local') == 'local' and cfg.model.get('gamma', 1.0) == 1.0
    # the model's own, and a top-level one that agrees (SwAV's kept upstream's ImageNet values)
    for preprocessor in (cfg.model.get('data_preprocessor'), cfg.get('data_preprocessor')):
        if preprocessor is not None:
            assert preprocessor['mean'] == pytest.approx([122.7709383, 116.7460125,
                                                          104.09373615])
            assert preprocessor['std'] == pytest.approx([68.5005327, 66.6321579, 70.32316305])
    assert cfg.model.get('data_preprocessor') or cfg.get('data_preprocessor')
    # upstream's pipeline with MultiView turned into GenViewPairDataset (same views)
    upstream = Config.fromfile(_upstream_path(path)).train_dataloader.dataset.pipeline
    pipeline_cfg = cfg.train_dataloader.dataset.pipeline
    assert [p['type'] for p in pipeline_cfg] == ['LoadImageFromFile', 'GenViewPairDataset',
                                                  'PackInputs']
    pair = pipeline_cfg[1]
    assert pair['manifest'] == cfg.genview.manifest == 'data/genview/views/manifest.jsonl'
    assert pair['prob'] == 1.0
    assert (pair['num_views'], pair['transforms']) == (upstream[1]['num_views'],
                                                      upstream[1]['transforms'])
    assert tuple(pipeline_cfg[2]['algorithm_keys']) == GEN_KEYS

    cfg.model.scorer.update(encoder=tiny_clip_path, pca_path=tiny_scorer_pca)
    if 'backbone' in cfg.model and cfg.model.backbone.get('norm_cfg'):
        cfg.model.backbone.norm_cfg = dict(type='BN')  # SyncBN needs CUDA
    for key in ('neck', 'head'):
        sub = cfg.model.get(key) or {}
        for part in (sub, sub.get('predictor') or {}):
            if part.get('norm_cfg'):
                part['norm_cfg'] = dict(type='BN1d')
    if 'queue_len' in cfg.model:
        cfg.model.queue_len = 64
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert not any(k.startswith('scorer') or 'vision_model' in k for k in model.state_dict())

    pipeline_cfg[1]['manifest'] = manifest_path
    pipeline = Compose(pipeline_cfg)
    batch = default_collate([pipeline(dict(img_path=p, sample_idx=i))
                             for i, p in enumerate(sources * 2)])
    assert [int(s.genview_slot) in (0, 1) for s in batch['data_samples']] == [True] * 4
    assert len(batch['inputs']) == (8 if 'swav' in name else 2)
    if 'vit' in name:  # ViTs at 224 px are slow on CPU: check the views, skip the step
        assert batch['inputs'][0].shape[-2:] == (224, 224)
        return
    data = model.data_preprocessor(batch, training=True)
    data['inputs'] = [torch.nn.functional.interpolate(v, size=64) for v in data['inputs']]
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert math.isfinite(float(total))
    assert abs(float(losses['genview_w_mean']) - 1.0) < 1e-5
