"""GenView MoCo v2 (tiny) through tools/train.py on a manifest-backed dataset: checkpoint with
finite loss, GenView telemetry in the log, no CLIP weights saved, and resume."""
import glob
import json
import math
import os.path as osp
import subprocess
import sys

import torch

from tiny_models import write_fake_manifest, write_photos

CFG = 'configs/demo/genview_mocov2_r18_tiny_cpu.py'


def scalars(work):
    rows = []
    for path in sorted(glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f if '"loss"' in line]
    return rows


def train(repo_root, work, opts, extra=()):
    proc = subprocess.run([sys.executable, 'tools/train.py', CFG, '--work-dir', work, *extra,
                           '--cfg-options', *opts], cwd=repo_root, capture_output=True,
                          text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return out


def test_genview_mocov2_trains_and_resumes(repo_root, tmp_path, tiny_clip_path, tiny_scorer_pca):
    src = str(tmp_path / 'images')
    sources = write_photos(osp.join(src, 'all'), 16, size=40)
    manifest = write_fake_manifest(str(tmp_path / 'views'), sources, src)
    work = str(tmp_path / 'work')
    opts = [f'train_dataloader.dataset.data_root={src}',
            f'genview.manifest={manifest}',
            f'model.scorer.encoder={tiny_clip_path}', f'model.scorer.pca_path={tiny_scorer_pca}']
    out = train(repo_root, work, opts + ['train_cfg.max_epochs=1'])
    assert '16/16 checked images (100.0%)' in out  # GenViewPairHook's start check
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=True)
    assert not any(k.startswith('scorer') or 'vision_model' in k for k in ckpt['state_dict'])
    assert any(k.startswith('backbone.') for k in ckpt['state_dict'])
    rows = scalars(work)
    assert [r['iter'] for r in rows] == [1, 2]
    for r in rows:
        assert math.isfinite(r['loss'])
        assert abs(r['genview_w_mean'] - 1.0) < 1e-4
        assert r['genview_gen_frac'] == 1.0  # prob 1 and every image has a view
        assert r['genview_w_min'] <= 1.0 <= r['genview_w_max']

    out = train(repo_root, work, opts + ['train_cfg.max_epochs=2'], extra=['--resume'])
    assert 'resumed epoch: 1, iter: 2' in out
    ckpt2 = torch.load(osp.join(work, 'epoch_2.pth'), weights_only=True)
    assert ckpt2['meta']['iter'] == 4
    assert [r['iter'] for r in scalars(work)] == [1, 2, 3, 4]


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
                                view_pipelines=[[dict(type='RandomResizedCrop', scale=32),
                                                 dict(type='RandomFlip', prob=0.5)]]),
                           dict(type='PackInputs')]))
optim_wrapper = dict(optimizer=dict(lr=0.001))
train_cfg = dict(max_epochs=1)
'''


def test_downstream_config_outside_repo_inherits_genview(repo_root, tmp_path, tiny_clip_path,
                                                        tiny_scorer_pca):
    """A user's project config: `_base_ = 'genview_mm::genview_mocov2_r50_in1k.py'`."""
    src = str(tmp_path / 'images')
    sources = write_photos(osp.join(src, 'all'), 16, size=40)
    manifest = write_fake_manifest(str(tmp_path / 'views'), sources, src)
    project = tmp_path / 'my_project'
    project.mkdir()
    cfg = project / 'my_genview.py'
    cfg.write_text(DOWNSTREAM.format(clip=tiny_clip_path, pca=tiny_scorer_pca, src=src,
                                     manifest=manifest))
    work = str(tmp_path / 'work')
    proc = subprocess.run([sys.executable, osp.join(repo_root, 'tools', 'train.py'), str(cfg),
                           '--work-dir', work], cwd=str(project), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=True)
    assert ckpt['meta']['iter'] == 2
    assert ckpt['state_dict']['backbone.conv1.weight'].shape[0] == 8  # the override applied
    assert 'GenViewMoCo' in ckpt['meta']['cfg']  # the GenView model came from the base
    assert all(math.isfinite(r['loss']) for r in scalars(work))
