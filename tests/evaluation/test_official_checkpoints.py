"""Official GenView model-zoo checkpoints (stand-ins in their exact layout, numpy-1 pickling) go
the user's way: tools/convert_checkpoint.py -> our linear-probe, semi-supervised and detection
configs with init_cfg.checkpoint=<converted> -> init_weights() -> the source backbone, bit for
bit; the raw official file works as init_cfg.checkpoint too."""
import argparse
import os.path as osp

import pytest
import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope

from genview_mm.apis.launch import replace_sync_bn
from genview_mm.evaluation.convert import convert_checkpoint
from helpers import run_tool
from numpy1_checkpoints import NUMPY1_RECONSTRUCT, data_pkl, pickled_globals
from official_layout import (
    CLIP_MEAN,
    CLIP_STD,
    OFFICIAL,
    VIT_B_2_LAYERS,
    build_standin,
    save_standin,
)

MOCOV3_R50 = 'mocov3_resnet50_8xb512-amp-coslr-100e_in1k_genview.pth'

pytestmark = pytest.mark.slow  # full-size ResNet-50 and ViT stand-ins, built and pickled


def backbone_of(ckpt: dict) -> dict:
    return {k[len('backbone.'):]: v for k, v in ckpt['state_dict'].items()
            if k.startswith('backbone.')}


def assert_same(module: torch.nn.Module, expected: dict, prefix: str = '') -> int:
    """Every tensor of ``module`` equals ``expected[prefix + name]``; returns how many."""
    state = module.state_dict()
    for k, v in state.items():
        assert torch.equal(v, expected[prefix + k]), k
    return len(state)


def build(repo_root: str, rel: str, checkpoint: str, scope: str = 'mmpretrain', arch=None):
    """Our config's model with init_cfg.checkpoint=checkpoint (and another backbone arch if
    given), after init_weights()."""
    cfg = Config.fromfile(osp.join(repo_root, 'configs', rel))
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    if 'c4' in rel:
        cfg.model.roi_head.shared_head.init_cfg.checkpoint = checkpoint
    if arch is not None:  # a shallower ViT: freeze all of its layers, as the probe does
        assert cfg.model.backbone.frozen_stages == 12
        cfg.model.backbone.arch, cfg.model.backbone.frozen_stages = arch, arch['num_layers']
    replace_sync_bn(cfg._cfg_dict)
    if scope == 'mmdet':
        import mmpretrain.models  # noqa: F401  (ResLayerExtraNorm, the C4 head)
        from mmdet.registry import MODELS
    else:
        from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
        model.init_weights()
    return model, cfg


@pytest.fixture(scope='module')
def official(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp('official'))
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = save_standin(name, folder)
        return cache[name]
    return get


def test_standin_has_the_official_layout(official):
    item = official(MOCOV3_R50)
    tops = {k.split('.', 1)[0] for k in item['ckpt']['state_dict']}
    assert tops == {'backbone', 'neck', 'head', 'momentum_encoder', 'clip_model'}
    assert {'meta', 'message_hub', 'optimizer'} <= set(item['ckpt'])
    assert NUMPY1_RECONSTRUCT in pickled_globals(item['path'])
    assert b'numpy._core' not in data_pkl(item['path'])


@pytest.mark.parametrize('name', [n for n in OFFICIAL if 'resnet50' in n],
                         ids=lambda n: n.split('_')[0])
def test_official_r50_converts_for_the_linear_probe(name, official, repo_root, tmp_path):
    item = official(name)
    expected = backbone_of(item['ckpt'])
    dst = str(tmp_path / 'backbone.pth')
    out = convert_checkpoint(item['path'], dst)
    assert set(out['state_dict']) == {'backbone.' + k for k in expected}  # no clip_model, EMA
    assert out['meta']['pretrain_normalisation'] == dict(mean=CLIP_MEAN, std=CLIP_STD,
                                                         to_rgb=True)
    linear = OFFICIAL[name][2]
    for source in (dst, item['path']):  # converted, then the raw official file
        model, _ = build(repo_root, f'benchmarks/{linear}', source)
        assert assert_same(model.backbone, expected) == len(expected) == 318  # ResNet-50


def test_official_r50_semi_supervised_and_detection(official, repo_root, tmp_path):
    item = official(MOCOV3_R50)
    expected = backbone_of(item['ckpt'])
    dst = str(tmp_path / 'backbone.pth')
    convert_checkpoint(item['path'], dst)
    for pct in (1, 10):
        semi, _ = build(repo_root, f'benchmarks/genview_r50_finetune-{pct}pct-20e_in1k.py', dst)
        assert assert_same(semi.backbone, expected) == len(expected)
    for source in (dst, item['path']):
        fpn, _ = build(repo_root, 'detection/genview_mask-rcnn_r50-fpn_ms-1x_coco.py', source,
                       scope='mmdet')
        assert assert_same(fpn.backbone, expected) == len(expected)
    c4, _ = build(repo_root, 'detection/genview_mask-rcnn_r50-c4_ms-1x_coco.py', dst,
                  scope='mmdet')
    n = assert_same(c4.backbone, expected) + assert_same(c4.roi_head.shared_head.layer4,
                                                         expected, prefix='layer4.')
    assert n == len(expected)  # res2-res4 in the backbone + res5 in the RoI head: all of R50


@pytest.mark.parametrize('arch', ['vit-small', 'vit-base'])
def test_official_vit_converts_for_the_linear_probe(arch, official, repo_root, tmp_path):
    name = f'mocov3_{arch}-p16_16xb256-amp-coslr-300e_in1k_genview.pth'
    item = official(name)
    expected = backbone_of(item['ckpt'])
    dst = str(tmp_path / 'backbone.pth')
    convert_checkpoint(item['path'], dst)
    # the real ViT-B has 12 layers; the stand-in keeps 2 of them (same names and shapes)
    for source in (dst, item['path']):
        model, cfg = build(repo_root, f'benchmarks/{OFFICIAL[name][2]}', source,
                           arch=VIT_B_2_LAYERS if arch == 'vit-base' else None)
        assert assert_same(model.backbone, expected) == len(expected)
        assert all(not p.requires_grad for p in model.backbone.parameters())  # a linear probe
    assert expected['pos_embed'].shape == (1, 197, 384 if arch == 'vit-small' else 768)


def test_vit_base_standin_names_match_the_real_vit_base():
    from mmpretrain.registry import MODELS
    real = MODELS.build(dict(type='MoCoV3ViT', arch='base', img_size=224, patch_size=16))
    real_state = real.state_dict()
    name = 'mocov3_vit-base-p16_16xb256-amp-coslr-300e_in1k_genview.pth'
    standin = backbone_of(build_standin(name))
    for k, v in standin.items():  # every stand-in key exists in ViT-B/16 with the same shape
        assert real_state[k].shape == v.shape, k
    per_layer = {k.split('.', 2)[2] for k in real_state if k.startswith('layers.')}
    assert {k.split('.', 2)[2] for k in standin if k.startswith('layers.')} == per_layer
    assert {k for k in real_state if not k.startswith('layers.')} == \
        {k for k in standin if not k.startswith('layers.')}


def test_convert_tool_on_official_file_and_on_other_normalisations(official, repo_root,
                                                                   tmp_path):
    """An official (CLIP-normalised) file needs nothing more: our transfer configs normalise
    as it was trained. A checkpoint pretrained with ImageNet's mean/std gets a note with the
    --cfg-options that make the transfer configs match it."""
    item = official(MOCOV3_R50)
    dst = str(tmp_path / 'mocov3_r50_backbone.pth')

    def convert(src, out):
        return run_tool('convert_checkpoint.py', src, out).stdout

    stdout = convert(item['path'], dst)
    assert f'wrote {len(backbone_of(item["ckpt"]))} backbone tensors' in stdout
    assert 'note:' not in stdout
    probe = Config.fromfile(osp.join(repo_root, 'configs', 'benchmarks',
                                     OFFICIAL[MOCOV3_R50][2])).data_preprocessor
    assert list(probe.mean) == pytest.approx(CLIP_MEAN, abs=1e-3)
    assert list(probe.std) == pytest.approx(CLIP_STD, abs=1e-3)

    imagenet = torch.load(item['path'], weights_only=True)
    imagenet['meta']['cfg'] = ("data_preprocessor = dict(mean=[123.675, 116.28, 103.53], "
                               "std=[58.395, 57.12, 57.375], to_rgb=True)\n")
    src = str(tmp_path / 'imagenet_normalised.pth')
    torch.save(imagenet, src)
    lines = convert(src, str(tmp_path / 'b.pth')).splitlines()
    probe_opts = next(ln for ln in lines if 'linear probe' in ln).split(': ', 1)[1]
    det_opts = next(ln for ln in lines if 'detection:' in ln).split(': ', 1)[1]
    # the printed options, as a shell and MMEngine's DictAction read them, fix the normalisation
    for opts, rel in ((probe_opts, 'benchmarks/' + OFFICIAL[MOCOV3_R50][2]),
                      (det_opts, 'detection/genview_mask-rcnn_r50-fpn_ms-1x_coco.py')):
        ns = argparse.Namespace()
        shell_words = [o.replace('"', '') for o in opts.split()]
        DictAction(['--cfg-options'], 'cfg_options')(None, ns, shell_words)
        cfg = Config.fromfile(osp.join(repo_root, 'configs', rel))
        cfg.merge_from_dict(ns.cfg_options)
        pre = cfg.model.data_preprocessor if 'detection' in rel else cfg.data_preprocessor
        assert list(pre.mean) == pytest.approx([123.675, 116.28, 103.53])
        assert list(pre.std) == pytest.approx([58.395, 57.12, 57.375])
        assert pre.get('to_rgb', pre.get('bgr_to_rgb')) is True
    converted = torch.load(dst, weights_only=True)
    assert torch.equal(converted['state_dict']['backbone.layer4.2.bn3.running_var'],
                       item['ckpt']['state_dict']['backbone.layer4.2.bn3.running_var'])
