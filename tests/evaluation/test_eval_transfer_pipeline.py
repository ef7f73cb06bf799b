"""End to end on toy data, through the real tools: tiny MoCo v2 pretraining (with the kNN monitor)
-> checkpoint conversion -> linear probe -> Mask R-CNN training from a downstream config outside
the repository (``_base_ = 'genview_mm::detection/...'``) -> tools/test.py with COCO metrics.
"""
import json
import math
import os
import os.path as osp
import re
import runpy
import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision

from eval_toy_data import write_class_folders, write_coco
from genview_mm.evaluation.convert import convert_checkpoint, load_state_dict

PRETRAIN_BASE = 'mmpretrain::mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py'
DET_BASE = 'genview_mm::detection/genview_mask-rcnn_r50-fpn_ms-1x_coco.py'


# One thread per process: on a shared 2-core machine OpenMP's spinning threads slow tiny
# convolutions down several-fold.
ENV = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def run_tool(repo_root: str, cwd: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, osp.join(repo_root, 'tools', args[0]), *args[1:]],
                          cwd=cwd, capture_output=True, text=True, timeout=600, env=ENV)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


def write_cfg(path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp('transfer')
    write_class_folders(str(root / 'cls_train'), per_class=8, seed=0)
    write_class_folders(str(root / 'cls_val'), per_class=4, seed=1)
    write_coco(str(root / 'coco'), 'train', 8, seed=0)
    write_coco(str(root / 'coco'), 'val', 4, seed=1)
    return root


@pytest.fixture(scope='module')
def pretrained(ws, repo_root):
    """Tiny MoCo v2 (ResNet-18, 32 px), 6 iterations, kNN monitor every 3 iterations."""
    cfg = write_cfg(ws / 'pretrain_cfg.py', f"""
        _base_ = '{PRETRAIN_BASE}'
        custom_imports = dict(imports=['genview_mm'], allow_failed_imports=False)
        model = dict(queue_len=32, feat_dim=16, backbone=dict(depth=18),
                     neck=dict(in_channels=512, hid_channels=32, out_channels=16))
        views = [dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.5, 1.0),
                      backend='pillow'), dict(type='RandomFlip', prob=0.5)]
        train_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
            dataset=dict(_delete_=True, type='CustomDataset', data_root='{ws}/cls_train',
                         pipeline=[dict(type='LoadImageFromFile'),
                                   dict(type='MultiView', num_views=2, transforms=[views]),
                                   dict(type='PackInputs')]))
        knn_loader = dict(batch_size=6, dataset=dict(type='CustomDataset', data_root='',
            pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
        custom_hooks = [dict(type='KNNMonitorHook', interval=3, by_epoch=False, k=5,
            train_dataloader=dict(knn_loader, dataset=dict(knn_loader['dataset'],
                                                          data_root='{ws}/cls_train')),
            val_dataloader=dict(knn_loader, dataset=dict(knn_loader['dataset'],
                                                        data_root='{ws}/cls_val')))]
        train_cfg = dict(max_epochs=1)
        default_hooks = dict(logger=dict(interval=1))
        randomness = dict(seed=0)
        """)
    work = ws / 'pretrain_work'
    log = run_tool(repo_root, str(ws), 'train.py', cfg, '--work-dir', str(work))
    return work, log


def test_pretrain_reports_knn(pretrained):
    work, log = pretrained
    found = re.findall(r'knn/top1: ([\d.]+) \(weighted kNN, k=5, T=0.07, 24 train / 12 val '
                       r'images\) after iter (\d+)', log)
    assert [int(it) for _, it in found] == [3, 6], log[-3000:]
    values = [float(v) for v, _ in found]
    assert values[-1] > 80.0  # colour classes are separable even for a barely trained ResNet
    scalars = [json.loads(line) for line in open(next(work.glob('*/vis_data/scalars.json')))]
    assert [(s['step'], s['knn/top1']) for s in scalars if 'knn/top1' in s] == [
        (3, values[0]), (6, values[1])]


@pytest.fixture(scope='module')
def converted(pretrained, ws, repo_root):
    work, _ = pretrained
    ckpt = str(work / 'epoch_1.pth')
    out = {'mmpretrain': str(ws / 'backbone.pth'), 'torchvision': str(ws / 'tv.pth')}
    tool = osp.join(repo_root, 'tools', 'convert_checkpoint.py')
    argv = sys.argv
    sys.argv = [tool, ckpt, out['mmpretrain']]
    try:  # the CLI, run in process: a second interpreter would re-import the whole stack
        runpy.run_path(tool, run_name='__main__')
    finally:
        sys.argv = argv
    convert_checkpoint(ckpt, out['torchvision'], 'torchvision')  # all formats: test_eval_convert
    return ckpt, out


def test_converted_weights_equal_trained_backbone(converted):
    ckpt, out = converted
    trained = load_state_dict(ckpt)  # the runner checkpoint loads with weights_only=True
    backbone = {k: v for k, v in trained.items() if k.startswith('backbone.')}
    saved = torch.load(out['mmpretrain'], map_location='cpu', weights_only=True)['state_dict']
    assert saved.keys() == backbone.keys()
    assert all(torch.equal(saved[k], v) for k, v in backbone.items())
    tv = torch.load(out['torchvision'], map_location='cpu', weights_only=True)
    res = torchvision.models.resnet18().load_state_dict(tv, strict=False)
    assert res.unexpected_keys == [] and sorted(res.missing_keys) == ['fc.bias', 'fc.weight']


def test_linear_probe_reports_accuracy(converted, ws, repo_root):
    _, out = converted
    data = lambda split: f"""dict(_delete_=True, type='CustomDataset',
            data_root='{ws}/cls_{split}', pipeline=[dict(type='LoadImageFromFile'),
            dict(type='PackInputs')])"""  # noqa: E731
    cfg = write_cfg(ws / 'linear_cfg.py', f"""
        _base_ = '{repo_root}/configs/benchmarks/genview_mocov2_r50_linear-steplr-100e_in1k.py'
        model = dict(backbone=dict(depth=18, init_cfg=dict(checkpoint='{out['mmpretrain']}')),
                     head=dict(num_classes=3, in_channels=512, topk=(1, )))
        data_preprocessor = dict(num_classes=3)
        train_dataloader = dict(batch_size=8, num_workers=0, persistent_workers=False,
                                dataset={data('train')})
        val_dataloader = dict(batch_size=12, num_workers=0, persistent_workers=False,
                              dataset={data('val')})
        test_dataloader = val_dataloader
        val_evaluator = dict(type='Accuracy', topk=(1, ))
        test_evaluator = val_evaluator
        optim_wrapper = dict(optimizer=dict(lr=1.0))
        train_cfg = dict(max_epochs=1, val_interval=1)
        default_hooks = dict(logger=dict(interval=1))
        """)
    log = run_tool(repo_root, str(ws), 'train.py', cfg, '--work-dir', str(ws / 'linear_work'))
    acc = re.findall(r'accuracy/top1: ([\d.]+)', log)
    assert acc and 0.0 <= float(acc[-1]) <= 100.0, log[-3000:]
    assert f"load backbone. in model from: {out['mmpretrain']}" in log


def det_cfg_text(ws, backbone: str, base: str = DET_BASE) -> str:
    test_pipeline = """[dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(128, 128), keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                              'scale_factor'))]"""
    loader = lambda split, pipe, bs: f"""dict(batch_size={bs}, num_workers=0,
        persistent_workers=False, dataset=dict(data_root='{ws}/coco/', ann_file='{split}.json',
        data_prefix=dict(img='images/'), metainfo=metainfo, pipeline={pipe}))"""  # noqa: E731
    return f"""
        _base_ = '{base}'
        metainfo = dict(classes=('rectangle', 'ellipse'))
        model = dict(
            backbone=dict(depth=18, init_cfg=dict(checkpoint='{backbone}')),
            neck=dict(in_channels=[64, 128, 256, 512], out_channels=32),
            rpn_head=dict(in_channels=32, feat_channels=32),
            roi_head=dict(
                bbox_roi_extractor=dict(out_channels=32),
                bbox_head=dict(in_channels=32, conv_out_channels=32, fc_out_channels=64,
                               num_classes=2),
                mask_roi_extractor=dict(out_channels=32),
                mask_head=dict(in_channels=32, conv_out_channels=32, num_classes=2)),
            test_cfg=dict(rcnn=dict(score_thr=0.0, max_per_img=20)))
        train_pipeline = [dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='Resize', scale=(128, 128), keep_ratio=True),
            dict(type='RandomFlip', prob=0.5), dict(type='PackDetInputs')]
        train_dataloader = {loader('train', 'train_pipeline', 2)}
        val_dataloader = {loader('val', test_pipeline, 2)}
        test_dataloader = val_dataloader
        val_evaluator = dict(ann_file='{ws}/coco/val.json', metric=['bbox', 'segm'])
        test_evaluator = val_evaluator
        train_cfg = dict(max_epochs=1)
        param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                                end=4)]
        default_hooks = dict(logger=dict(interval=1))
        """


def test_mask_rcnn_downstream_config_trains_and_tests(converted, ws, tmp_path, repo_root):
    """A config outside the repository inherits genview_mm::detection/..., trains a few
    iterations from the converted backbone; tools/test.py reports bbox and segm mAP."""
    _, out = converted
    outside = tmp_path / 'my_project'
    outside.mkdir()
    cfg = write_cfg(outside / 'my_mask_rcnn.py', det_cfg_text(ws, out['mmpretrain']))
    work = str(outside / 'work')
    log = run_tool(repo_root, str(outside), 'train.py', cfg, '--work-dir', work,
                   '--no-validate')
    assert f"load backbone. in model from: {out['mmpretrain']}" in log
    assert 'replaced' in log and 'SyncBN' in log  # CPU run: SyncBN -> BN by the launcher
    text = run_tool(repo_root, str(outside), 'test.py', cfg, osp.join(work, 'epoch_1.pth'),
                    '--work-dir', work)
    metrics = dict(re.findall(r"'(coco/\w+)': (-?[\d.]+|nan)", text))  # print(metrics) line
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert key in metrics, text[-3000:]
        assert math.isfinite(float(metrics[key])) and float(metrics[key]) >= 0.0, metrics


def test_mask_rcnn_c4_trains_and_validates(converted, ws, tmp_path, repo_root):
    """The C4 config (res5 + extra norm in the RoI head, both halves from one checkpoint)
    trains an iteration and validates with bbox and segm metrics."""
    _, out = converted
    ckpt = out['mmpretrain']
    pipe = """[dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='Resize', scale=(96, 96), keep_ratio=True), dict(type='PackDetInputs')]"""
    loader = f"""dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
        data_root='{ws}/coco/', ann_file='val.json', data_prefix=dict(img='images/'),
        metainfo=dict(classes=('rectangle', 'ellipse')), indices=2, pipeline={pipe}))"""
    cfg = write_cfg(tmp_path / 'c4.py', f"""
        _base_ = 'genview_mm::detection/genview_mask-rcnn_r50-c4_ms-1x_coco.py'
        model = dict(
            backbone=dict(depth=18, init_cfg=dict(checkpoint='{ckpt}')),
            rpn_head=dict(in_channels=256, feat_channels=32),
            roi_head=dict(
                shared_head=dict(depth=18, init_cfg=dict(checkpoint='{ckpt}')),
                bbox_head=dict(in_channels=512, num_classes=2),
                mask_head=dict(in_channels=512, conv_out_channels=32, num_classes=2)),
            train_cfg=dict(rpn_proposal=dict(nms_pre=100, max_per_img=16),
                           rcnn=dict(sampler=dict(num=16))),
            test_cfg=dict(rpn=dict(nms_pre=100, max_per_img=16),
                          rcnn=dict(score_thr=0.0, max_per_img=10)))
        train_dataloader = {loader}
        val_dataloader = {loader}
        val_evaluator = dict(ann_file='{ws}/coco/val.json')
        train_cfg = dict(max_epochs=1)
        param_scheduler = []
        default_hooks = dict(logger=dict(interval=1))
        """)
    log = run_tool(repo_root, str(tmp_path), 'train.py', cfg, '--work-dir',
                   str(tmp_path / 'work'))
    assert log.count(f'load backbone. in model from: {ckpt}') == 2  # backbone + shared head
    segm = re.findall(r'coco/segm_mAP: (-?[\d.]+)', log)
    assert segm and math.isfinite(float(segm[-1])), log[-3000:]
    assert re.findall(r'coco/bbox_mAP: (-?[\d.]+)', log)
