"""The launchers on CPU, end to end: tools/train.py (+ resume), tools/dist_train.sh with 2 gloo
processes, and an MMDetection Mask R-CNN through tools/train.py and tools/test.py."""
import glob
import json
import math
import os.path as osp
import re

import pytest
import torch

from helpers import free_port, run_tool, save_backbone_checkpoint, scalar_rows

MOCO_CFG = 'configs/demo/mocov2_r18_tiny_cpu.py'
MASK_CFG = 'configs/demo/mask-rcnn_r18_fpn_tiny_cpu.py'

pytestmark = pytest.mark.slow


def logged_losses(work_dir):
    """(iter, loss) pairs from every run's scalars.json under work_dir."""
    return [(r['iter'], r['loss']) for r in scalar_rows(work_dir, 'loss')]


def test_train_then_resume(tmp_path, train_photos):
    work = str(tmp_path / 'work')
    common = [MOCO_CFG, '--work-dir', work, '--cfg-options',
              f'train_dataloader.dataset.data_root={train_photos.src_root}']
    run_tool('train.py', *common, 'train_cfg.max_epochs=1')
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    assert not osp.exists(osp.join(work, 'epoch_2.pth'))
    first = logged_losses(work)
    assert [it for it, _ in first] == [1, 2]  # 16 images / batch 8
    ckpt1 = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=True)
    assert ckpt1['meta']['epoch'] == 1 and ckpt1['meta']['iter'] == 2

    out = run_tool('train.py', *common, 'train_cfg.max_epochs=2', '--resume').output
    assert re.search(r'resumed epoch: 1, iter: 2', out), out[-3000:]
    ckpt2 = torch.load(osp.join(work, 'epoch_2.pth'), weights_only=True)
    assert ckpt2['meta']['epoch'] == 2 and ckpt2['meta']['iter'] == 4
    losses = logged_losses(work)
    assert [it for it, _ in losses] == [1, 2, 3, 4]  # the resumed run continued at iter 3
    assert all(math.isfinite(v) for _, v in losses)
    # the resumed run really started from the saved weights: they differ after one more epoch
    w1 = ckpt1['state_dict']['backbone.conv1.weight']
    assert not torch.equal(w1, ckpt2['state_dict']['backbone.conv1.weight'])
    # resumed at its end: nothing trained (exit 0, as a requeued job wants), and said so
    out = run_tool('train.py', *common, 'train_cfg.max_epochs=2', '--resume').output
    assert 'resumed at epoch 2 of 2 (train_cfg.max_epochs): nothing left to train; raise ' \
        'train_cfg.max_epochs to train longer' in out, out[-3000:]
    assert [it for it, _ in logged_losses(work)] == [1, 2, 3, 4]


def test_dist_train_two_cpu_processes(tmp_path, train_photos):
    """With MMPretrain's NonLinearNeck (the MoCo v3, BYOL, SimSiam and SimCLR neck), whose
    default norm is SyncBN: DDP on CPU refused it ('SyncBatchNorm layers only work with GPU
    modules')."""
    work = str(tmp_path / 'dist')
    out = run_tool('dist_train.sh', MOCO_CFG, '2', '--work-dir', work, '--cfg-options',
                   f'train_dataloader.dataset.data_root={train_photos.src_root}',
                   'model.neck.type=NonLinearNeck', 'train_cfg.max_epochs=1',
                   env=dict(PORT=str(free_port()))).output
    assert 'Distributed training: True' in out
    # the neck and its momentum copy
    assert 'No CUDA: 4 SyncBatchNorm layer(s) the model built without a config entry' in out
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=True)
    # 16 images, 2 processes x batch 8 -> 1 iteration per epoch
    assert ckpt['meta']['iter'] == 1
    losses = logged_losses(work)
    assert [it for it, _ in losses] == [1] and all(math.isfinite(v) for _, v in losses)


def test_mask_rcnn_train_and_test(tmp_path):
    data = str(tmp_path / 'coco') + '/'
    out = run_tool('make_toy_coco.py', data, '--num-images', '6').output
    ann = osp.join(data, 'annotations.json')
    assert f'wrote 6 images and {ann}' in out
    work = str(tmp_path / 'det')
    opts = [f'{split}_dataloader.dataset.data_root={data}' for split in ('train', 'val', 'test')]
    opts += [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']
    # from a converted backbone of the tiny MoCo v2 layout, as the README's override does
    from mmpretrain.registry import MODELS
    backbone = MODELS.build(dict(type='ResNet', depth=18, stem_channels=8, base_channels=8))
    converted = save_backbone_checkpoint(backbone, str(tmp_path / 'demo_r18_backbone.pth'))
    out = run_tool('train.py', MASK_CFG, '--work-dir', work, '--no-validate', '--cfg-options',
                   f'model.backbone.init_cfg.checkpoint={converted}', *opts).output
    assert converted in out  # MMEngine logs the checkpoint it initialised the backbone from
    run_tool('train.py', MASK_CFG, '--work-dir', work, '--no-validate', '--cfg-options',
             'model.backbone.init_cfg=None', 'train_cfg.max_epochs=1', *opts)  # and from scratch
    ckpt = osp.join(work, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    out = run_tool('test.py', MASK_CFG, ckpt, '--work-dir', work, '--show-dir', 'shown',
                   '--cfg-options', *opts).output
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        match = re.search(re.escape(key) + r"'?:\s*(-?[0-9.]+)", out)
        assert match, f'{key} missing from:\n{out[-3000:]}'
        assert -1.0 <= float(match.group(1)) <= 1.0
    with open(ann) as f:  # every test image drawn with its predictions
        names = {im['file_name'] for im in json.load(f)['images']}
    assert {osp.basename(p) for p in glob.glob(osp.join(work, '*', 'shown', '*'))} == names
