"""Benchmark and detection configs: they load, normalise as GenView pretraining (CLIP mean/std,
as the official configs), keep upstream's recipe, and the C4 model takes res2-res5 from one
converted checkpoint."""
import functools
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.utils import get_installed_path

from genview_mm.apis.launch import replace_sync_bn
from genview_mm.evaluation.convert import convert_checkpoint
from helpers import save_backbone_checkpoint

CLIP_MEAN = [255 * 0.48145466, 255 * 0.4578275, 255 * 0.40821073]
CLIP_STD = [255 * 0.26862954, 255 * 0.26130258, 255 * 0.27577711]
# linear-probe config -> upstream MMPretrain's linear benchmark of that method
LINEAR_UPSTREAM = {
    'genview_mocov2_r50': 'mocov2/benchmarks/resnet50_8xb32-linear-steplr-100e_in1k.py',
    'genview_mocov3_r50': 'mocov3/benchmarks/resnet50_8xb128-linear-coslr-90e_in1k.py',
    'genview_mocov3_vit-base-p16': 'mocov3/benchmarks/vit-base-p16_8xb128-linear-coslr-90e_in1k.py',
    'genview_mocov3_vit-small-p16':
        'mocov3/benchmarks/vit-small-p16_8xb128-linear-coslr-90e_in1k.py',
    'genview_byol_r50': 'byol/benchmarks/resnet50_8xb512-linear-coslr-90e_in1k.py',
    'genview_simsiam_r50': 'simsiam/benchmarks/resnet50_8xb512-linear-coslr-90e_in1k.py',
    'genview_swav_r50': 'swav/benchmarks/resnet50_8xb512-linear-coslr-90e_in1k.py',
    'genview_simclr_r50': 'simclr/benchmarks/resnet50_8xb512-linear-coslr-90e_in1k.py',
}
LINEAR = LINEAR_UPSTREAM
DETECTION = ['genview_mask-rcnn_r50-fpn_ms-1x_coco.py', 'genview_mask-rcnn_r50-fpn_ms-2x_coco.py',
             'genview_mask-rcnn_r50-c4_ms-1x_coco.py']


@functools.lru_cache(maxsize=None)
def read_config(path: str) -> Config:
    """``Config.fromfile(path)``, parsed once per module (the tests only read it)."""
    return Config.fromfile(path)


def unscoped(node):
    """A config subtree without the ``_scope_`` tags MMEngine adds to inherited entries."""
    if isinstance(node, dict):
        return {k: unscoped(v) for k, v in node.items() if k != '_scope_'}
    if isinstance(node, (list, tuple)):
        return [unscoped(v) for v in node]
    return node


def pretraining_normalisation(repo_root: str, stem: str) -> list:
    """Normalisations a probe must match: those of the GenView pretraining config(s)."""
    found = [read_config(p).model.get('data_preprocessor') or read_config(p).data_preprocessor
             for p in glob.glob(osp.join(repo_root, 'configs', stem + '*.py'))]
    assert found, stem
    return found


@pytest.mark.parametrize('stem', sorted(LINEAR))
def test_linear_probe_configs(stem, repo_root):
    paths = glob.glob(osp.join(repo_root, 'configs', 'benchmarks', stem + '_linear-*.py'))
    assert len(paths) == 1, paths
    cfg = read_config(paths[0])
    assert cfg.model.backbone.frozen_stages in (4, 12)
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', prefix='backbone.',
                                               checkpoint=f'checkpoints/{stem}_backbone.pth')
    assert 'genview_mm' in cfg.custom_imports.imports
    pretrain_cfgs = glob.glob(osp.join(repo_root, 'configs', stem + '_*in1k.py'))
    assert pretrain_cfgs, stem
    for path in pretrain_cfgs:  # the probe builds the pretrained backbone (ViT-S vs ViT-B, R50)
        pre_bb = read_config(path).model.backbone
        for key in ('type', 'arch', 'depth', 'patch_size'):
            assert cfg.model.backbone.get(key) == pre_bb.get(key), (path, key)
    probe = cfg.data_preprocessor
    for pre in pretraining_normalisation(repo_root, stem):
        assert list(pre.mean) == list(probe.mean) == pytest.approx(CLIP_MEAN)
        assert list(pre.std) == list(probe.std) == pytest.approx(CLIP_STD)
        assert bool(pre.get('to_rgb') or pre.get('bgr_to_rgb')) and probe.to_rgb
    # the rest of the recipe is upstream's benchmark for this method
    upstream = Config.fromfile(osp.join(get_installed_path('mmpretrain'), '.mim', 'configs',
                                        LINEAR_UPSTREAM[stem]))
    assert all(unscoped(cfg[k]) == unscoped(upstream[k])
               for k in ('optim_wrapper', 'param_scheduler', 'train_cfg', 'train_dataloader'))


@pytest.mark.parametrize('pct', [1, 10])
def test_semi_supervised_configs(pct, repo_root):
    cfg = Config.fromfile(osp.join(repo_root, 'configs', 'benchmarks',
                                   f'genview_r50_finetune-{pct}pct-20e_in1k.py'))
    assert cfg.train_dataloader.dataset.ann_file == f'meta/train_{pct}percent.txt'
    assert cfg.model.backbone.get('frozen_stages', -1) == -1  # the whole network is fine-tuned
    # MMSelfSup's benchmark: BN over the step's 256 images (plain BN saw a GPU's 32)
    assert cfg.model.backbone.norm_cfg == dict(type='SyncBN')
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['head'].lr_mult == 100
    # MMSelfSup's imagenet_{1,10}percent configs: weight decay 5e-4 for 1%, 1e-4 for 10%
    assert cfg.optim_wrapper.optimizer.weight_decay == {1: 5e-4, 10: 1e-4}[pct]
    assert cfg.optim_wrapper.optimizer.lr == 0.01 and cfg.optim_wrapper.optimizer.type == 'SGD'
    assert cfg.train_cfg.max_epochs == 20
    # ... and its crops and resizes are Pillow's (the val set's too)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        resizes = [t for t in cfg[loader].dataset.pipeline
                   if t['type'] in ('RandomResizedCrop', 'ResizeEdge')]
        assert len(resizes) == 1 and resizes[0].get('backend') == 'pillow', loader
        assert cfg[loader].dataset.pipeline[-1]['type'] == 'PackInputs'
    assert list(cfg.data_preprocessor.mean) == pytest.approx(CLIP_MEAN)


@pytest.mark.parametrize('name', DETECTION)
def test_detection_configs(name, repo_root):
    cfg = Config.fromfile(osp.join(repo_root, 'configs', 'detection', name))
    assert cfg.default_scope == 'mmdet' and 'genview_mm' in cfg.custom_imports.imports
    pre, bb = cfg.model.data_preprocessor, cfg.model.backbone
    assert list(pre.mean) == pytest.approx(CLIP_MEAN) and pre.bgr_to_rgb
    assert list(pre.std) == pytest.approx(CLIP_STD)
    assert bb.norm_cfg == dict(type='SyncBN', requires_grad=True)
    assert bb.norm_eval is False and bb.frozen_stages == -1 and bb.style == 'pytorch'
    assert bb.init_cfg.type == 'Pretrained' and bb.init_cfg.prefix == 'backbone.'
    assert set(cfg.val_evaluator.metric) == {'bbox', 'segm'}
    assert cfg.train_cfg.max_epochs == (24 if '2x' in name else 12)
    # MoCo's multi-scale training (shorter side 640-800) in place of upstream's single Resize
    pipeline = cfg.train_dataloader.dataset.pipeline
    assert [t['type'] for t in pipeline] == ['LoadImageFromFile', 'LoadAnnotations',
                                             'RandomChoiceResize', 'RandomFlip', 'PackDetInputs']
    assert [s[1] for s in pipeline[2]['scales']] == [640, 672, 704, 736, 768, 800]
    if 'fpn' in name:
        assert cfg.model.neck.norm_cfg.type == 'SyncBN'
        assert cfg.model.roi_head.bbox_head.type == 'Shared4Conv1FCBBoxHead'
    else:
        head = cfg.model.roi_head.shared_head
        assert head.type == 'ResLayerExtraNorm' and head.norm_cfg.type == 'SyncBN'
        assert head.style == 'pytorch' and head.init_cfg.prefix == 'backbone.'


def test_c4_loads_res2_to_res5_from_one_checkpoint(repo_root, tmp_path):
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.utils import register_all_modules
    from mmpretrain.registry import MODELS

    import genview_mm  # noqa: F401

    register_all_modules(init_default_scope=False)
    import mmpretrain.models  # noqa: F401  (registers ResLayerExtraNorm into mmdet)
    resnet = MODELS.build(dict(type='ResNet', depth=18))
    with torch.no_grad():  # distinctive weights and BN statistics
        for t in resnet.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * 0.1)
    ckpt = str(tmp_path / 'backbone.pth')
    convert_checkpoint(save_backbone_checkpoint(resnet, str(tmp_path / 'ssl.pth')), ckpt)
    cfg = Config.fromfile(osp.join(repo_root, 'configs', 'detection', DETECTION[2]))
    cfg.merge_from_dict({
        'model.backbone.depth': 18, 'model.backbone.init_cfg.checkpoint': ckpt,
        'model.roi_head.shared_head.depth': 18,
        'model.roi_head.shared_head.init_cfg.checkpoint': ckpt,
        'model.rpn_head.in_channels': 256, 'model.roi_head.bbox_head.in_channels': 512,
        'model.roi_head.mask_head.in_channels': 512})
    replace_sync_bn(cfg._cfg_dict)
    det = DET_MODELS.build(cfg.model)
    det.init_weights()
    assert torch.equal(det.backbone.layer1[0].conv1.weight, resnet.layer1[0].conv1.weight)
    assert torch.equal(det.backbone.layer3[1].bn2.running_mean, resnet.layer3[1].bn2.running_mean)
    head = det.roi_head.shared_head
    assert torch.equal(head.layer4[0].conv2.weight, resnet.layer4[0].conv2.weight)
    assert torch.equal(head.layer4[1].bn1.weight, resnet.layer4[1].bn1.weight)
    assert head.norm.weight.shape == (512, )
