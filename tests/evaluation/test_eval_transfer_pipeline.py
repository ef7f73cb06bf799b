"""End to end on toy data, through the real tools: tiny GenView MoCo v2 pretraining (generated
views from a manifest, frozen tiny CLIP scorer, kNN monitor) -> checkpoint conversion -> linear
probe -> Mask R-CNN (FPN and C4) from downstream configs outside the repository
(``_base_ = 'genview_mm::detection/...'``) -> tools/test.py with COCO bbox and segm metrics.

The pretrained backbone is configs/demo's ResNet-18 layout with 8 base channels (stage widths
8/16/32/64); the transfer configs below are shrunk to match.
"""
import glob
import math
import re
import textwrap

import pytest
import torch

from genview_mm.evaluation.convert import convert_checkpoint, load_state_dict
from helpers import (
    run_script,
    run_tool,
    save_backbone_checkpoint,
    scalar_rows,
    write_class_folders,
    write_coco_shapes,
    write_fake_manifest,
)

PRETRAIN_CFG = 'configs/demo/genview_mocov2_r18_tiny_cpu.py'
DET_BASE = 'genview_mm::detection/genview_mask-rcnn_r50-fpn_ms-1x_coco.py'
TINY_R18 = 'depth=18, stem_channels=8, base_channels=8'

pytestmark = pytest.mark.slow


def train(cwd, cfg: str, *args: str) -> str:
    """tools/train.py CONFIG ARGS run from ``cwd``; its stdout and stderr."""
    return run_tool('train.py', cfg, *args, cwd=str(cwd)).output


def write_cfg(path, text: str) -> str:
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp('transfer')
    write_class_folders(str(root / 'cls_train'), per_class=8, seed=0)
    write_class_folders(str(root / 'cls_val'), per_class=4, seed=1)
    write_coco_shapes(str(root / 'coco_train'), 8, size=128, seed=0)
    write_coco_shapes(str(root / 'coco_val'), 4, size=128, seed=1)
    return root


@pytest.fixture(scope='module')
def pretrained(ws, repo_root, tiny_clip_path, tiny_scorer_pca):
    """Tiny GenView MoCo v2 on the 24 colour images (each with a 'generated view' in a manifest),
    2 epochs x 3 iterations, kNN monitor every 3 iterations."""
    sources = sorted(glob.glob(str(ws / 'cls_train' / '*' / '*.png')))
    manifest = write_fake_manifest(str(ws / 'views'), sources, str(ws / 'cls_train'))
    cfg = write_cfg(ws / 'pretrain_cfg.py', f"""
        _base_ = '{repo_root}/{PRETRAIN_CFG}'
        knn_loader = dict(batch_size=6, dataset=dict(type='CustomDataset', data_root='',
            pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
        custom_hooks = _base_.custom_hooks + [dict(type='KNNMonitorHook', interval=3,
            by_epoch=False, k=5,
            train_dataloader=dict(knn_loader, dataset=dict(knn_loader['dataset'],
                                                          data_root='{ws}/cls_train')),
            val_dataloader=dict(knn_loader, dataset=dict(knn_loader['dataset'],
                                                        data_root='{ws}/cls_val')))]
        """)
    work = ws / 'pretrain_work'
    log = train(ws, cfg, '--work-dir', str(work), '--cfg-options',
                f'train_dataloader.dataset.data_root={ws}/cls_train',
                f'genview.manifest={manifest}', f'model.scorer.encoder={tiny_clip_path}',
                f'model.scorer.pca_path={tiny_scorer_pca}')
    return work, log


def test_genview_pretraining_reports_knn(pretrained):
    work, log = pretrained
    assert 'GenViewMoCo' in log and 'genview_w_mean' in log  # GenView ran (quality weights)
    found = re.findall(r'knn/top1: ([\d.]+) \(weighted kNN, k=5, T=0.07, 24 train / 12 val '
                       r'images\) after iter (\d+)', log)
    assert [int(it) for _, it in found] == [3, 6], log[-3000:]
    values = [float(v) for v, _ in found]
    assert values[-1] > 60.0  # chance is 33%: colour classes separate even after 6 iterations
    logged = [(s['step'], s['knn/top1']) for s in scalar_rows(str(work), 'knn/top1')]
    assert [step for step, _ in logged] == [3, 6]
    assert [v for _, v in logged] == pytest.approx(values, abs=0.006)  # the log rounds


@pytest.fixture(scope='module')
def converted(pretrained, ws):
    work, _ = pretrained
    ckpt = str(work / 'epoch_2.pth')
    out = {'mmpretrain': str(ws / 'backbone.pth'), 'torchvision': str(ws / 'tv.pth')}
    # the CLI, run in process: a second interpreter would re-import the whole stack
    run_script('convert_checkpoint.py', ckpt, out['mmpretrain'])
    convert_checkpoint(ckpt, out['torchvision'], 'torchvision')  # all formats: test_eval_convert
    return ckpt, out


def test_converted_weights_equal_trained_backbone(converted):
    ckpt, out = converted
    trained = load_state_dict(ckpt)  # the runner checkpoint loads with weights_only=True
    backbone = {k: v for k, v in trained.items() if k.startswith('backbone.')}
    assert not any(k.startswith('scorer') for k in trained)  # the frozen CLIP is not saved
    saved = torch.load(out['mmpretrain'], map_location='cpu', weights_only=True)['state_dict']
    assert saved.keys() == backbone.keys()
    assert all(torch.equal(saved[k], v) for k, v in backbone.items())
    tv = torch.load(out['torchvision'], map_location='cpu', weights_only=True)
    # torchvision names are MMPretrain's ResNet names (a torchvision ResNet load is tested in
    # test_eval_convert at torchvision's widths; this backbone is 8 channels wide)
    assert tv.keys() == {k[len('backbone.'):] for k in backbone}
    assert all(torch.equal(tv[k[len('backbone.'):]], v) for k, v in backbone.items())


def test_linear_probe_reports_accuracy(converted, ws, repo_root):
    _, out = converted
    data = lambda split: f"""dict(_delete_=True, type='CustomDataset',
            data_root='{ws}/cls_{split}', pipeline=[dict(type='LoadImageFromFile'),
            dict(type='PackInputs')])"""  # noqa: E731
    cfg = write_cfg(ws / 'linear_cfg.py', f"""
        _base_ = '{repo_root}/configs/benchmarks/genview_mocov2_r50_linear-steplr-100e_in1k.py'
        model = dict(backbone=dict({TINY_R18},
                                   init_cfg=dict(checkpoint='{out['mmpretrain']}')),
                     head=dict(num_classes=3, in_channels=64, topk=(1, )))
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
    log = train(ws, cfg, '--work-dir', str(ws / 'linear_work'))
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
        persistent_workers=False, dataset=dict(data_root='{ws}/coco_{split}/',
        ann_file='annotations.json', data_prefix=dict(img='images/'), metainfo=metainfo,
        pipeline={pipe}))"""  # noqa: E731
    return f"""
        _base_ = '{base}'
        metainfo = dict(classes=('rectangle', 'ellipse'))
        model = dict(
            backbone=dict({TINY_R18}, init_cfg=dict(checkpoint='{backbone}')),
            neck=dict(in_channels=[8, 16, 32, 64], out_channels=32),
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
        val_evaluator = dict(ann_file='{ws}/coco_val/annotations.json', metric=['bbox', 'segm'])
        test_evaluator = val_evaluator
        train_cfg = dict(max_epochs=1)
        param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                                end=4)]
        default_hooks = dict(logger=dict(interval=1))
        """


def test_mask_rcnn_downstream_config_trains_and_tests(converted, ws, tmp_path):
    """A config outside the repository inherits genview_mm::detection/..., trains a few
    iterations from the converted backbone; tools/test.py reports bbox and segm mAP."""
    _, out = converted
    outside = tmp_path / 'my_project'
    outside.mkdir()
    cfg = write_cfg(outside / 'my_mask_rcnn.py', det_cfg_text(ws, out['mmpretrain']))
    work = str(outside / 'work')
    log = train(outside, cfg, '--work-dir', work, '--no-validate')
    assert f"load backbone. in model from: {out['mmpretrain']}" in log
    assert 'replaced' in log and 'SyncBN' in log  # CPU run: SyncBN -> BN by the launcher
    text = run_tool('test.py', cfg, f'{work}/epoch_1.pth', '--work-dir', work,
                    cwd=str(outside)).output
    metrics = dict(re.findall(r"'(coco/\w+)': (-?[\d.]+|nan)", text))  # print(metrics) line
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP', 'coco/segm_mAP_50'):
        assert key in metrics, text[-3000:]
        assert math.isfinite(float(metrics[key])) and float(metrics[key]) >= 0.0, metrics


def test_mask_rcnn_c4_trains_and_validates(ws, tmp_path):
    """The C4 config (res5 + extra norm in the RoI head, both halves from one checkpoint)
    trains an iteration and validates with bbox and segm metrics. mmdet's res5 head has fixed
    stage widths, so this uses a converted standard-width ResNet-18."""
    from mmpretrain.registry import MODELS
    resnet = MODELS.build(dict(type='ResNet', depth=18))
    ckpt = str(tmp_path / 'r18_backbone.pth')
    convert_checkpoint(save_backbone_checkpoint(resnet, str(tmp_path / 'r18_ssl.pth')), ckpt)
    pipe = """[dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
        dict(type='Resize', scale=(96, 96), keep_ratio=True), dict(type='PackDetInputs')]"""
    loader = f"""dict(batch_size=2, num_workers=0, persistent_workers=False, dataset=dict(
        data_root='{ws}/coco_val/', ann_file='annotations.json', data_prefix=dict(img='images/'),
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
        val_evaluator = dict(ann_file='{ws}/coco_val/annotations.json')
        train_cfg = dict(max_epochs=1)
        param_scheduler = []
        default_hooks = dict(logger=dict(interval=1))
        """)
    log = train(tmp_path, cfg, '--work-dir', str(tmp_path / 'work'))
    assert log.count(f'load backbone. in model from: {ckpt}') == 2  # backbone + shared head
    segm = re.findall(r'coco/segm_mAP: (-?[\d.]+)', log)
    assert segm and math.isfinite(float(segm[-1])), log[-3000:]
    assert re.findall(r'coco/bbox_mAP: (-?[\d.]+)', log)
