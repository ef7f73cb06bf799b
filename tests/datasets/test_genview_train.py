"""tools/train.py with the tiny GenView MoCo v2 on a manifest-backed dataset: a checkpoint with
finite loss, GenView telemetry in the log, no CLIP weights saved, resume, and a user's config
outside the repository."""
import math
import os.path as osp

import pytest
import torch

from helpers import run_tool, scalar_rows

CFG = 'configs/demo/genview_mocov2_r18_tiny_cpu.py'

pytestmark = pytest.mark.slow


def train(work, opts, extra=()):
    return run_tool('train.py', CFG, '--work-dir', work, *extra, '--cfg-options', *opts).output


def test_genview_mocov2_trains_and_resumes(tmp_path, train_photos, tiny_clip_path,
                                          tiny_scorer_pca):
    work = str(tmp_path / 'work')
    opts = [f'train_dataloader.dataset.data_root={train_photos.src_root}',
            f'genview.manifest={train_photos.manifest}',
            f'model.scorer.encoder={tiny_clip_path}', f'model.scorer.pca_path={tiny_scorer_pca}']
    out = train(work, opts + ['train_cfg.max_epochs=1'])
    assert '16/16 checked images (100.0%)' in out  # GenViewPairHook's start check
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=True)
    assert not any(k.startswith('scorer') or 'vision_model' in k for k in ckpt['state_dict'])
    assert any(k.startswith('backbone.') for k in ckpt['state_dict'])
    rows = scalar_rows(work, 'loss')
    assert [r['iter'] for r in rows] == [1, 2]
    for r in rows:
        assert math.isfinite(r['loss'])
        assert abs(r['genview_w_mean'] - 1.0) < 1e-4
        assert r['genview_gen_frac'] == 1.0  # prob 1 and every image has a view
        assert r['genview_w_min'] <= 1.0 <= r['genview_w_max']

    out = train(work, opts + ['train_cfg.max_epochs=2'], extra=['--resume'])
    assert 'resumed epoch: 1, iter: 2' in out
    ckpt2 = torch.load(osp.join(work, 'epoch_2.pth'), weights_only=True)
    assert ckpt2['meta']['iter'] == 4
    assert [r['iter'] for r in scalar_rows(work, 'loss')] == [1, 2, 3, 4]


DOWNSTREAM = '''
_base_ = 'genview_mm::genview_mocov2_r50_in1k.py'
model = dict(queue_len=64, feat_dim=32,
             backbone=dict(depth=18, stem_channels=8, base_channels=8),
             neck=dict(in_channels=64, hid_channels=64, out_channels=32),
             scorer=dict(encoder={clip!r}, pca_path={pca!r}))
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root={src!r}, with_label=False,
                 pipeline=[dict(type='GenViewPairDataset', manifest={manifest!r},
                                num_views=2,
                                transforms=[[dict(type='RandomResizedCrop', scale=32),
                                             dict(type='RandomFlip', prob=0.5)]]),
                           dict(type='PackInputs')]))
optim_wrapper = dict(optimizer=dict(lr=0.001))
train_cfg = dict(max_epochs=1)
'''


def test_downstream_config_outside_repo_inherits_genview(tmp_path, train_photos, tiny_clip_path,
                                                        tiny_scorer_pca):
    """A user's project config: `_base_ = 'genview_mm::genview_mocov2_r50_in1k.py'`."""
    project = tmp_path / 'my_project'
    project.mkdir()
    cfg = project / 'my_genview.py'
    cfg.write_text(DOWNSTREAM.format(clip=tiny_clip_path, pca=tiny_scorer_pca,
                                     src=train_photos.src_root, manifest=train_photos.manifest))
    work = str(tmp_path / 'work')
    run_tool('train.py', cfg, '--work-dir', work, cwd=str(project))
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=True)
    assert ckpt['meta']['iter'] == 2
    assert ckpt['state_dict']['backbone.conv1.weight'].shape[0] == 8  # the override applied
    assert 'GenViewMoCo' in ckpt['meta']['cfg']  # the GenView model came from the base
    rows = scalar_rows(work, 'loss')
    assert [r['iter'] for r in rows] == [2] and all(math.isfinite(r['loss']) for r in rows)
