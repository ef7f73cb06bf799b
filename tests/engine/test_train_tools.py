"""The launchers end to end on CPU: tools/train.py (+ resume), tools/dist_train.sh with 2 gloo
processes, and an MMDetection Mask R-CNN through tools/train.py and tools/test.py."""
import glob
import json
import math
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest
import torch

from tiny_models import write_photos

MOCO_CFG = 'configs/demo/mocov2_r18_tiny_cpu.py'
MASK_CFG = 'configs/demo/mask-rcnn_r18_fpn_tiny_cpu.py'


def run(cmd, cwd, env=None, timeout=600):
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', **(env or {}))
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{cmd} failed ({proc.returncode}):\n{out[-6000:]}'
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def logged_losses(work_dir):
    """(iter, loss) pairs from every run's scalars.json under work_dir."""
    rows = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f if '"loss"' in line]
    return [(r['iter'], r['loss']) for r in rows]


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('photos'))
    write_photos(folder, 16, size=40)
    return folder


def test_train_then_resume(repo_root, tmp_path, photos):
    work = str(tmp_path / 'work')
    common = [sys.executable, 'tools/train.py', MOCO_CFG, '--work-dir', work, '--cfg-options',
              f'train_dataloader.dataset.data_root={photos}']
    run(common + ['train_cfg.max_epochs=1'], repo_root)
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    assert not osp.exists(osp.join(work, 'epoch_2.pth'))
    first = logged_losses(work)
    assert [it for it, _ in first] == [1, 2]  # 16 images / batch 8
    ckpt1 = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=True)
    assert ckpt1['meta']['epoch'] == 1 and ckpt1['meta']['iter'] == 2

    out = run(common + ['train_cfg.max_epochs=2', '--resume'], repo_root)
    assert re.search(r'resumed epoch: 1, iter: 2', out), out[-3000:]
    ckpt2 = torch.load(osp.join(work, 'epoch_2.pth'), weights_only=True)
    assert ckpt2['meta']['epoch'] == 2 and ckpt2['meta']['iter'] == 4
    losses = logged_losses(work)
    assert [it for it, _ in losses] == [1, 2, 3, 4]  # the resumed run continued at iter 3
    assert all(math.isfinite(v) for _, v in losses)
    # the resumed run really started from the saved weights: they differ after one more epoch
    w1 = ckpt1['state_dict']['backbone.conv1.weight']
    assert not torch.equal(w1, ckpt2['state_dict']['backbone.conv1.weight'])


def test_dist_train_two_cpu_processes(repo_root, tmp_path, photos):
    work = str(tmp_path / 'dist')
    out = run(['bash', 'tools/dist_train.sh', MOCO_CFG, '2', '--work-dir', work, '--cfg-options',
               f'train_dataloader.dataset.data_root={photos}', 'train_cfg.max_epochs=1'],
              repo_root, env=dict(PORT=str(free_port())))
    assert 'Distributed training: True' in out
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=True)
    # 16 images, 2 processes x batch 8 -> 1 iteration per epoch
    assert ckpt['meta']['iter'] == 1
    assert all(math.isfinite(v) for _, v in logged_losses(work))


def test_mask_rcnn_train_and_test(repo_root, tmp_path):
    data = str(tmp_path / 'coco') + '/'
    out = run([sys.executable, 'tools/make_toy_coco.py', data, '--num-images', '6'], repo_root)
    ann = osp.join(data, 'annotations.json')
    assert f'wrote 6 images and {ann}' in out
    work = str(tmp_path / 'det')
    opts = [f'train_dataloader.dataset.data_root={data}', f'val_dataloader.dataset.data_root={data}',
            f'test_dataloader.dataset.data_root={data}', f'val_evaluator.ann_file={ann}',
            f'test_evaluator.ann_file={ann}']
    # from a converted backbone of the tiny MoCo v2 layout, as the README's override does
    from mmpretrain.registry import MODELS
    backbone = MODELS.build(dict(type='ResNet', depth=18, stem_channels=8, base_channels=8))
    converted = str(tmp_path / 'demo_r18_backbone.pth')
    torch.save({'state_dict': {'backbone.' + k: v for k, v in backbone.state_dict().items()}},
               converted)
    out = run([sys.executable, 'tools/train.py', MASK_CFG, '--work-dir', work, '--no-validate',
               '--cfg-options', f'model.backbone.init_cfg.checkpoint={converted}'] + opts,
              repo_root)
    assert converted in out  # MMEngine logs the checkpoint it initialised the backbone from
    run([sys.executable, 'tools/train.py', MASK_CFG, '--work-dir', work, '--no-validate',
         '--cfg-options', 'model.backbone.init_cfg=None', 'train_cfg.max_epochs=1'] + opts,
        repo_root)  # and from scratch
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    out = run([sys.executable, 'tools/test.py', MASK_CFG, ckpt, '--work-dir', work,
               '--show-dir', 'shown', '--cfg-options'] + opts, repo_root)
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        match = re.search(re.escape(key) + r"'?:\s*(-?[0-9.]+)", out)
        assert match, f'{key} missing from:\n{out[-3000:]}'
        assert -1.0 <= float(match.group(1)) <= 1.0
    assert glob.glob(osp.join(work, '*', 'shown', '*.png'))
