"""Benchmark and detection configs: they load, match pretraining normalisation, and the C4 model
takes res2-res5 from one converted checkpoint."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.utils import get_installed_path

from genview_mm.engine.launch import replace_sync_bn
from genview_mm.evaluation.convert import convert_checkpoint

IMAGENET_MEAN, IMAGENET_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
# linear-probe config -> the upstream pretraining config the GenView config is a delta on
LINEAR = {
    'genview_mocov2_r50': 'mocov2/mocov2_resnet50_8xb32-coslr-200e_in1k.py',
    'genview_mocov3_r50': 'mocov3/mocov3_resnet50_8xb512-amp-coslr-100e_in1k.py',
    'genview_mocov3_vit-base-p16': 'mocov3/mocov3_vit-base-p16_16xb256-amp-coslr-300e_in1k.py',
    'genview_mocov3_vit-small-p16': 'mocov3/mocov3_vit-small-p16_16xb256-amp-coslr-300e_in1k.py',
    'genview_byol_r50': 'byol/byol_resnet50_16xb256-coslr-200e_in1k.py',
    'genview_simsiam_r50': 'simsiam/simsiam_resnet50_8xb32-coslr-200e_in1k.py',
    'genview_swav_r50': 'swav/swav_resnet50_8xb32-mcrop-coslr-200e_in1k-224px-96px.py',
    'genview_simclr_r50': 'simclr/simclr_resnet50_16xb256-coslr-200e_in1k.py',
}
DETECTION = ['genview_mask-rcnn_r50-fpn_ms-1x_coco.py', 'genview_mask-rcnn_r50-fpn_ms-2x_coco.py',
             'genview_mask-rcnn_r50-c4_ms-1x_coco.py']


def pretraining_normalisation(repo_root: str, stem: str, upstream: str) -> list:
    """Normalisations a probe must match: the upstream base and the GenView config if present."""
    path = osp.join(get_installed_path('mmpretrain'), '.mim', 'configs', upstream)
    found = [Config.fromfile(path).data_preprocessor]
    found += [Config.fromfile(p).model.get('data_preprocessor') or Config.fromfile(p)
              .data_preprocessor for p in glob.glob(osp.join(repo_root, 'configs', stem + '*.py'))]
    return found


@pytest.mark.parametrize('stem', sorted(LINEAR))
def test_linear_probe_configs(stem, repo_root):
    paths = glob.glob(osp.join(repo_root, 'configs', 'benchmarks', stem + '_linear-*.py'))
    assert len(paths) == 1, paths
    cfg = Config.fromfile(paths[0])
    assert cfg.model.backbone.frozen_stages in (4, 12)
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', prefix='backbone.',
                                               checkpoint=f'checkpoints/{stem}_backbone.pth')
    assert 'genview_mm' in cfg.custom_imports.imports
    pretrain_cfgs = glob.glob(osp.join(repo_root, 'configs', stem + '_*in1k.py'))
    assert pretrain_cfgs, stem
    for path in pretrain_cfgs:  # the probe builds the pretrained backbone (ViT-S vs ViT-B, R50)
        pre_bb = Config.fromfile(path).model.backbone
        for key in ('type', 'arch', 'depth', 'patch_size'):
            assert cfg.model.backbone.get(key) == pre_bb.get(key), (path, key)
    probe = cfg.data_preprocessor
    for pre in pretraining_normalisation(repo_root, stem, LINEAR[stem]):
        assert list(pre.mean) == list(probe.mean) == IMAGENET_MEAN
        assert list(pre.std) == list(probe.std) == IMAGENET_STD
        assert bool(pre.get('to_rgb') or pre.get('bgr_to_rgb')) and probe.to_rgb


@pytest.mark.parametrize('pct', [1, 10])
def test_semi_supervised_configs(pct, repo_root):
    cfg = Config.fromfile(osp.join(repo_root, 'configs', 'benchmarks',
                                   f'genview_r50_finetune-{pct}pct-20e_in1k.py'))
    assert cfg.train_dataloader.dataset.ann_file == f'meta/train_{pct}percent.txt'
    assert cfg.model.backbone.get('frozen_stages', -1) == -1  # the whole network is fine-tuned
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys['head'].lr_mult == 100
    assert cfg.train_cfg.max_epochs == 20 and list(cfg.data_preprocessor.mean) == IMAGENET_MEAN


@pytest.mark.parametrize('name', DETECTION)
def test_detection_configs(name, repo_root):
    cfg = Config.fromfile(osp.join(repo_root, 'configs', 'detection', name))
    assert cfg.default_scope == 'mmdet' and 'genview_mm' in cfg.custom_imports.imports
    pre, bb = cfg.model.data_preprocessor, cfg.model.backbone
    assert list(pre.mean) == IMAGENET_MEAN and list(pre.std) == IMAGENET_STD and pre.bgr_to_rgb
    assert bb.norm_cfg == dict(type='SyncBN', requires_grad=True)
    assert bb.norm_eval is False and bb.frozen_stages == -1 and bb.style == 'pytorch'
    assert bb.init_cfg.type == 'Pretrained' and bb.init_cfg.prefix == 'backbone.'
    assert set(cfg.val_evaluator.metric) == {'bbox', 'segm'}
    assert cfg.train_cfg.max_epochs == (24 if '2x' in name else 12)
    if 'fpn' in name:
        assert cfg.model.neck.norm_cfg.type == 'SyncBN'
        assert cfg.model.roi_head.bbox_head.type == 'Shared4Conv1FCBBoxHead'
    else:
        head = cfg.model.roi_head.shared_head
        assert head.type == 'ResLayerExtraNorm' and head.norm_cfg.type == 'SyncBN'
        assert head.style == 'pytorch' and head.init_cfg.prefix == 'backbone.'


def test_c4_loads_res2_to_res5_from_one_checkpoint(repo_root, tmp_path):
    import genview_mm  # noqa: F401
    from mmdet.registry import MODELS as DET_MODELS
    from mmdet.utils import register_all_modules
    from mmpretrain.registry import MODELS

    register_all_modules(init_default_scope=False)
    import mmpretrain.models  # noqa: F401  (registers ResLayerExtraNorm into mmdet)
    resnet = MODELS.build(dict(type='ResNet', depth=18))
    with torch.no_grad():  # distinctive weights and BN statistics
        for t in resnet.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * 0.1)
    torch.save({'state_dict': {'backbone.' + k: v for k, v in resnet.state_dict().items()}},
               str(tmp_path / 'ssl.pth'))
    ckpt = str(tmp_path / 'backbone.pth')
    convert_checkpoint(str(tmp_path / 'ssl.pth'), ckpt)
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
