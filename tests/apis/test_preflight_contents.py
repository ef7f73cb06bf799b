"""The preflight checks contents, not existence: checkpoints against the model they load into,
the views a manifest names, empty folders and annotation files, unloadable scorer weights, a
checkpoint to resume; a config at prob=0 needs no manifest."""
import os
import os.path as osp
import random
import re
import shutil

import numpy as np
import pytest
import torch

from genview_mm.apis import load_config
from genview_mm.apis.preflight import format_checklist, preflight_passes, run_preflight
from helpers import (
    ROOT,
    photos_with_views,
    save_backbone_checkpoint,
    save_pca,
    write_coco_shapes,
    write_photos,
    zero_tensor_bytes,
)

GENVIEW_TINY = osp.join(ROOT, 'configs', 'demo', 'genview_mocov2_r18_tiny_cpu.py')
MASK_RCNN = osp.join(ROOT, 'configs', 'demo', 'mask-rcnn_r18_fpn_tiny_cpu.py')
INIT_KEY = 'pretrained weights [model.backbone.init_cfg.checkpoint]'


def by_what(checks):
    return {c.what: c for c in checks}


def tiny_backbone(kind='r18', width=8):
    """The backbone of configs/demo (ResNet-18 layout, 8 base channels) or a tiny ViT."""
    from mmengine.registry import init_default_scope
    from mmpretrain.models import ResNet, VisionTransformer
    init_default_scope('mmpretrain')
    if kind == 'vit':
        return VisionTransformer(arch=dict(embed_dims=32, num_layers=1, num_heads=2,
                                           feedforward_channels=64), img_size=32, patch_size=8)
    return ResNet(depth=18, stem_channels=width, base_channels=width)


@pytest.fixture
def coco(tmp_path):
    root = str(tmp_path / 'coco') + '/'
    write_coco_shapes(root, 2)
    return root


def detection_cfg(coco, checkpoint=None):
    opts = {f'{k}_dataloader.dataset.data_root': coco for k in ('train', 'val', 'test')}
    opts.update({'val_evaluator.ann_file': coco + 'annotations.json',
                 'test_evaluator.ann_file': coco + 'annotations.json'})
    if checkpoint:
        opts['model.backbone.init_cfg.checkpoint'] = checkpoint
    return load_config(MASK_RCNN, opts)


def test_init_cfg_checkpoint_must_fit_the_backbone(coco, tmp_path):
    """A ViT backbone, a wider ResNet and a file without the prefix are named with the mismatch
    and the conversion command; the converted R18 of the demo passes."""
    r18 = save_backbone_checkpoint(tiny_backbone(), str(tmp_path / 'r18.pth'))
    assert preflight_passes(run_preflight(detection_cfg(coco, r18)))
    vit = save_backbone_checkpoint(tiny_backbone('vit'), str(tmp_path / 'vit.pth'))
    check = by_what(run_preflight(detection_cfg(coco, vit)))[INIT_KEY]
    assert check.status == 'BROKEN', check
    assert 'none of its' in check.detail and "belongs to the ResNet" in check.detail
    assert "the ResNet's: 'conv1.weight'" in check.detail and 'patch_embed' in check.detail
    assert check.fix[0].startswith('python tools/convert_checkpoint.py ')
    wide = save_backbone_checkpoint(tiny_backbone(width=16), str(tmp_path / 'r18w16.pth'))
    check = by_what(run_preflight(detection_cfg(coco, wide)))[INIT_KEY]
    assert check.status == 'BROKEN'
    assert "'conv1.weight' (16, 3, 7, 7) in the checkpoint, (8, 3, 7, 7) in the model" in \
        check.detail
    plain = str(tmp_path / 'plain.pth')
    torch.save(tiny_backbone().state_dict(), plain)  # no 'backbone.' prefix
    check = by_what(run_preflight(detection_cfg(coco, plain)))[INIT_KEY]
    assert check.status == 'BROKEN' and "prefix 'backbone.'" in check.detail


def test_a_backbone_pretrained_with_another_normalisation_is_refused(coco, tmp_path):
    """A backbone converted from a run that normalised with ImageNet's mean/std (upstream
    MMPretrain's configs) passed the preflight of a CLIP-normalised transfer config: the
    converter's note was the only word of it, and the inputs were silently ~20% off. The fix the
    check gives is the one the converter prints, and with it the check passes."""
    from genview_mm.apis.preflight.checkpoint_checks import check_checkpoints
    from genview_mm.evaluation.convert import convert_checkpoint
    raw = save_backbone_checkpoint(tiny_backbone(), str(tmp_path / 'raw.pth'))
    state = torch.load(raw, weights_only=True)
    imagenet = ('data_preprocessor = dict(type=\'SelfSupDataPreprocessor\', '
                'mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)\n')
    torch.save(dict(state, meta=dict(cfg=imagenet)), raw)
    converted = str(tmp_path / 'converted.pth')
    convert_checkpoint(raw, converted)
    for path in (raw, converted):  # the run's own config, or what the converted file records
        check = by_what(check_checkpoints(detection_cfg(coco, path)))[INIT_KEY]
        assert check.status == 'BROKEN', check
        assert check.detail == (
            f'{path} was pretrained on inputs normalised with mean=[123.675, 116.28, 103.53] '
            'std=[58.395, 57.12, 57.375] (RGB), but this config normalises with mean=[122.771, '
            '116.746, 104.094] std=[68.501, 66.632, 70.323] (RGB) (model.data_preprocessor): '
            'the backbone would see inputs scaled and ordered otherwise than in pretraining')
        assert check.fix[0] == ('append to --cfg-options: model.data_preprocessor.mean='
                                '"[123.675,116.28,103.53]" model.data_preprocessor.std='
                                '"[58.395,57.12,57.375]" model.data_preprocessor.bgr_to_rgb=True')
    fixed = detection_cfg(coco, converted)
    fixed.model.data_preprocessor.update(mean=[123.675, 116.28, 103.53],
                                         std=[58.395, 57.12, 57.375])
    assert by_what(check_checkpoints(fixed))[INIT_KEY].status == 'ok'
    fixed.model.data_preprocessor.bgr_to_rgb = False  # BGR: the channels swapped
    assert by_what(check_checkpoints(fixed))[INIT_KEY].status == 'BROKEN'
    # a file that records no normalisation is not refused
    plain = save_backbone_checkpoint(tiny_backbone(), str(tmp_path / 'plain.pth'))
    assert by_what(check_checkpoints(detection_cfg(coco, plain)))[INIT_KEY].status == 'ok'


@pytest.mark.parametrize('pre, flag', [
    (dict(type='ClsDataPreprocessor', to_rgb=True), 'to_rgb'),  # MMPretrain's, under model.
    (dict(type='mmpretrain.SelfSupDataPreprocessor'), 'to_rgb'),
    (dict(type='DetDataPreprocessor'), 'bgr_to_rgb'), (dict(bgr_to_rgb=True), 'bgr_to_rgb'),
    (dict(), 'bgr_to_rgb')])  # no type, no flag: by where it sits (model.: detection)
def test_the_normalisation_fix_names_the_flag_of_the_configs_preprocessor(pre, flag, tmp_path):
    """An MMPretrain config with its preprocessor under model. was told to set
    model.data_preprocessor.bgr_to_rgb, MMDetection's name, which MMPretrain's preprocessors
    refuse when the model is built: the fix did not run."""
    from mmengine.config import Config

    from genview_mm.apis.preflight.checkpoint_checks import check_checkpoint, config_normalisation
    raw = save_backbone_checkpoint(tiny_backbone(), str(tmp_path / 'raw.pth'))
    imagenet = ('data_preprocessor = dict(type=\'SelfSupDataPreprocessor\', '
                'mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)\n')
    torch.save(dict(torch.load(raw, weights_only=True), meta=dict(cfg=imagenet)), raw)
    cfg = Config(dict(model=dict(type='ImageClassifier', data_preprocessor=dict(
        pre, mean=[122.771, 116.746, 104.094], std=[68.501, 66.632, 70.323]))))
    check = check_checkpoint('load_from checkpoint', raw, 'load_from',
                             expect=config_normalisation(cfg))
    assert check.status == 'BROKEN', check
    assert check.fix[0].endswith(f' model.data_preprocessor.{flag}=True'), check.fix
    assert check.fix[1].endswith(f'model.data_preprocessor.mean/std/{flag} say)'), check.fix


def test_a_backbone_checkpoint_with_fewer_blocks_is_refused(coco, tmp_path):
    """A ResNet-18 backbone in a ResNet-34 config and a converted file without layer4 fitted
    'partly' (a note, silent at launch): the missing blocks kept their random initialisation.
    A layer that no pretraining has (the C4 RoI head's extra norm) is still only a note."""
    from genview_mm.apis.preflight.state_dict_checks import compare
    r18 = save_backbone_checkpoint(tiny_backbone(), str(tmp_path / 'r18.pth'))
    cfg = detection_cfg(coco, r18)
    cfg.model.backbone.depth = 34
    check = by_what(run_preflight(cfg))[INIT_KEY]
    assert check.status == 'BROKEN' and 'fewer blocks or stages than the ResNet' in check.detail
    assert "80 of the ResNet's tensors are not in it" in check.detail
    assert "e.g. 'layer1.2.conv1.weight'" in check.detail
    state = torch.load(r18, weights_only=True)
    state['state_dict'] = {k: v for k, v in state['state_dict'].items() if 'layer4' not in k}
    torch.save(state, str(tmp_path / 'no_layer4.pth'))
    check = by_what(run_preflight(detection_cfg(coco, str(tmp_path / 'no_layer4.pth'))))[INIT_KEY]
    assert check.status == 'BROKEN' and "e.g. 'layer4.0.conv1.weight'" in check.detail
    # a backbone file without the stem: every later layer loaded, conv1/bn1 stayed random
    # (a note before: their names match no loaded block's)
    state = torch.load(r18, weights_only=True)
    state['state_dict'] = {k: v for k, v in state['state_dict'].items()
                           if not k.startswith(('backbone.conv1', 'backbone.bn1'))}
    torch.save(state, str(tmp_path / 'no_stem.pth'))
    check = by_what(run_preflight(detection_cfg(coco, str(tmp_path / 'no_stem.pth'))))[INIT_KEY]
    assert check.status == 'BROKEN' and 'its input layers are not in it: 5 of the ResNet' in \
        check.detail and "e.g. 'conv1.weight', 'bn1.weight', 'bn1.bias'" in check.detail
    model = {'layer4.0.conv1.weight': (4, 4), 'norm.weight': (4,), 'norm.bias': (4,)}
    status, found = compare({'layer4.0.conv1.weight': (4, 4)}, model, 'ResLayerExtraNorm', False)
    assert status == 'note' and "'norm.weight', 'norm.bias'" in found
    status, _ = compare({'layer1.0.w': (1,)}, {'layer1.0.w': (1,), 'layer1.1.w': (1,)}, 'M',
                        False, lenient=True)
    assert status == 'note'  # load_from may start from a partial model on purpose
    # a GroupNorm backbone: its convolutions fitted, every norm layer stayed at its
    # initialisation, and the check said 'note' (the frozen linear probe learned on that)
    bn = ('weight', 'bias', 'running_mean', 'running_var')
    model = {k: (4,) for m in ('', 'layer1.0.') for k in
             [f'{m}conv1.weight'] + [f'{m}bn1.{leaf}' for leaf in bn]}
    gn = {k: (4,) for m in ('', 'layer1.0.') for k in
          [f'{m}conv1.weight', f'{m}gn1.weight', f'{m}gn1.bias']}
    status, found = compare(gn, model, 'ResNet', False)
    assert status == 'BROKEN' and found == (
        "most of the ResNet's tensors are not in it: 8 of 10 would keep their random "
        "initialisation, e.g. 'bn1.weight', 'bn1.bias', 'bn1.running_mean', while 4 of its "
        "tensors have no place in the ResNet, e.g. 'gn1.weight', 'gn1.bias', "
        "'layer1.0.gn1.weight' (a network with other layers or another normalisation, or keys "
        "renamed?)")
    fits = {f'layer2.{i}.conv.weight': (1,) for i in range(10)}
    status, found = compare(dict(gn, **fits), dict(model, **fits), 'ResNet', False)
    # most of it fits: a note, that names the unused tensors
    assert status == 'note' and found.endswith("; the checkpoint's tensors it has no place "
                                               "for: 'gn1.weight', 'gn1.bias', "
                                               "'layer1.0.gn1.weight'")


def test_a_backbone_checkpoint_with_more_blocks_is_refused(coco, tmp_path):
    """A ResNet-34 backbone in a ResNet-18 config (a ResNet-101 in a ResNet-50 one) fitted
    every key: OK, while MMEngine dropped the extra blocks and the later stages got features
    they were not trained on. A stage the model lacks altogether (C4: layer4 in the RoI head)
    is not counted as more blocks."""
    from mmpretrain.models import ResNet
    r34 = save_backbone_checkpoint(ResNet(depth=34, stem_channels=8, base_channels=8),
                                   str(tmp_path / 'r34.pth'))
    check = by_what(run_preflight(detection_cfg(coco, r34)))[INIT_KEY]
    assert check.status == 'BROKEN' and check.detail.startswith(
        f'{r34}: it has more blocks than the ResNet: '), check.detail
    assert "e.g. 'layer1.2.conv1.weight', 'layer1.2.bn1.weight', 'layer1.2.bn1.bias'" in \
        check.detail and 'a ResNet-101 for a ResNet-50?' in check.detail
    from genview_mm.apis.preflight.state_dict_checks import compare
    model = {f'layer{s}.0.conv1.weight': (4, 4) for s in (1, 2, 3)}
    status, found = compare(dict(model, **{'layer4.0.conv1.weight': (4, 4)}), model, 'ResNet',
                            False)
    assert (status, found) == ('ok', 'all 3 tensors fit the ResNet')  # not 'more blocks'
    r18 = save_backbone_checkpoint(tiny_backbone(), str(tmp_path / 'r18.pth'))
    assert by_what(run_preflight(detection_cfg(coco, r18)))[INIT_KEY].status == 'ok'


def test_a_checkpoint_without_batchnorm_statistics_is_refused(coco, tmp_path):
    """A backbone saved from named_parameters() (no buffers) was a note: every BatchNorm kept
    running mean 0 and variance 1, and the frozen linear probe learned on those features."""
    r18 = tiny_backbone()
    path = str(tmp_path / 'params.pth')
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in r18.named_parameters()}}, path)
    check = by_what(run_preflight(detection_cfg(coco, path)))[INIT_KEY]
    assert check.status == 'BROKEN' and 'it has no normalisation statistics: all 40 ' \
        'running_mean and running_var tensors of the ResNet are missing' in check.detail, \
        check.detail
    from genview_mm.apis.preflight.state_dict_checks import compare
    model = {'conv.weight': (4, 4), 'bn.weight': (4,), 'bn.bias': (4,), 'bn.running_mean': (4,),
             'bn.running_var': (4,)}
    saved = {k: v for k, v in model.items() if 'running' not in k}
    assert compare(saved, model, 'ResNet', False, lenient=True)[0] == 'note'  # load_from
    assert compare(dict(saved, **{'bn.running_mean': (4,)}), model, 'ResNet', False)[0] == \
        'note'  # some statistics are there: a partial file, as before


def test_a_vit_checkpoint_of_another_image_size_fits():
    """MMPretrain's ViTs resize pos_embed while loading (a 224-px checkpoint for a 384-px
    model): the preflight called it BROKEN and stopped a run that would have loaded."""
    from genview_mm.apis.preflight.state_dict_checks import compare
    model = {'cls_token': (1, 1, 32), 'pos_embed': (1, 577, 32), 'layers.0.w': (32, 32)}
    saved = dict(model, pos_embed=(1, 197, 32))
    assert compare(saved, model, 'VisionTransformer', False) == (
        'ok', 'all 3 tensors fit the VisionTransformer')
    status, found = compare(dict(model, pos_embed=(1, 197, 16)), model, 'VisionTransformer',
                            False)  # another width is no resize
    assert status == 'BROKEN' and "'pos_embed' (1, 197, 16) in the checkpoint" in found


def test_a_checkpoint_path_under_the_home_folder_is_found(coco, tmp_path, monkeypatch):
    """MMEngine's loader expands '~' (a config's load_from, or --cfg-options ...checkpoint=~/x,
    which bash leaves alone): the preflight said MISSING and train.py stopped."""
    monkeypatch.setenv('HOME', str(tmp_path))
    save_backbone_checkpoint(tiny_backbone(), str(tmp_path / 'r18.pth'))
    check = by_what(run_preflight(detection_cfg(coco, '~/r18.pth')))[INIT_KEY]
    assert check.status == 'ok', check.detail
    check = by_what(run_preflight(detection_cfg(coco, '~/none.pth')))[INIT_KEY]
    assert check.status == 'MISSING' and check.detail == f"{tmp_path / 'none.pth'} not found"


def test_checkpoint_to_test_must_be_this_models(coco, tmp_path, tiny_scorer_pca):
    """A PCA file, a classification and a raw pretraining checkpoint are refused for a detection
    config; the detector's own checkpoint passes."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    cfg = detection_cfg(coco)
    cfg.model.backbone.init_cfg = None
    checks = run_preflight(cfg, 'test', tiny_scorer_pca)
    check = by_what(checks)['checkpoint to test']
    assert check.status == 'BROKEN' and 'is a foreground PCA file' in check.detail
    assert check.fix[0].startswith('train the model first')
    backbone = {'backbone.' + k: v for k, v in tiny_backbone().state_dict().items()}
    raw = {**backbone, 'neck.mlp.0.weight': torch.zeros(32, 64),
           'momentum_encoder.module.0.conv1.weight': torch.zeros(8, 3, 7, 7)}
    classification = {**backbone, 'head.fc.weight': torch.zeros(10, 64)}
    for name, state in (('raw', raw), ('classification', classification)):
        path = str(tmp_path / f'{name}.pth')
        torch.save({'state_dict': state, 'meta': {}}, path)
        check = by_what(run_preflight(cfg, 'test', path))['checkpoint to test']
        assert check.status == 'BROKEN', (name, check)
        assert 'no weights for neck, rpn_head, roi_head of the MaskRCNN' in check.detail
    init_default_scope('mmdet')
    detector = MODELS.build(cfg.model)
    trained = str(tmp_path / 'epoch_1.pth')
    torch.save({'state_dict': detector.state_dict(), 'meta': {}}, trained)
    checks = run_preflight(cfg, 'test', trained)
    assert preflight_passes(checks), format_checklist(checks, 'cfg', verbose=True)
    assert 'tensors fit the MaskRCNN' in by_what(checks)['checkpoint to test'].detail
    # bytes of a tensor zeroed (CRC-32s as written): torch.load and MMEngine's loader check no
    # checksum, so the preflight passed it and the test ran with other weights, exit 0
    holed = zero_tensor_bytes(trained, str(tmp_path / 'holed.pth'))
    check = by_what(run_preflight(cfg, 'test', holed))['checkpoint to test']
    assert check.status == 'BROKEN' and re.fullmatch(
        rf'{re.escape(holed)} is damaged: its entry \S*/data/\d+ does not match its checksum '
        r'\(.*\): copy or download it again', check.detail), check.detail
    with open(trained, 'rb') as f:  # cut short (a copy stopped half-way): what it is, not
        (tmp_path / 'cut.pth').write_bytes(f.read()[:50000])  # torch's error cut mid-sentence
    check = by_what(run_preflight(cfg, 'test', str(tmp_path / 'cut.pth')))['checkpoint to test']
    assert check.status == 'BROKEN' and check.detail.startswith(
        f"{tmp_path / 'cut.pth'} is not a PyTorch checkpoint: it is a truncated or damaged zip "
        'archive (an interrupted copy or download?); copy or download it again.'), check.detail
    # load_from may fine-tune from another head on purpose: noted, not refused
    state = detector.state_dict()
    state['roi_head.bbox_head.fc_cls.weight'] = torch.zeros(81, 32)
    torch.save({'state_dict': state, 'meta': {}}, trained)
    cfg.load_from = trained
    checks = run_preflight(cfg)
    check = by_what(checks)['load_from checkpoint']
    assert preflight_passes(checks) and check.status == 'note'
    assert "'roi_head.bbox_head.fc_cls.weight' (81, 32) in the checkpoint" in check.detail
    cfg.load_from = tiny_scorer_pca
    assert by_what(run_preflight(cfg))['load_from checkpoint'].status == 'BROKEN'
    # a missing one: the fix names a whole model's checkpoint, not convert_checkpoint.py's
    # backbone-only file (which the check then refused: no model key in it)
    cfg.load_from = str(tmp_path / 'gone.pth')
    check = by_what(run_preflight(cfg))['load_from checkpoint']
    assert check.status == 'MISSING' and 'convert_checkpoint.py work_dirs' not in check.fix[0]
    assert check.fix[0].startswith("give a checkpoint of this config's whole model")


def test_a_checkpoint_trained_with_another_normalisation_is_refused_for_test(coco, tmp_path):
    """A detector fine-tuned with the normalisation its backbone was pretrained with (the
    --cfg-options the converter prints) was tested by ``tools/test.py CONFIG CKPT`` with the
    config's own CLIP mean/std, with no word, and its boxes changed. The training config the
    checkpoint records (``meta['cfg']``) is compared, for a tested, resumed or loaded file."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    cfg = detection_cfg(coco)
    cfg.model.backbone.init_cfg = None
    init_default_scope('mmdet')
    detector = MODELS.build(cfg.model)
    used = ("model = dict(type='MaskRCNN', data_preprocessor=dict(type='DetDataPreprocessor', "
            'mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True))\n')
    trained = str(tmp_path / 'epoch_1.pth')
    torch.save({'state_dict': detector.state_dict(), 'meta': {'cfg': used, 'epoch': 1,
                'iter': 1}, 'message_hub': {}}, trained)
    check = by_what(run_preflight(cfg, 'test', trained))['checkpoint to test']
    assert check.status == 'BROKEN', check
    assert check.detail == (
        f'{trained} was trained on inputs normalised with mean=[123.675, 116.28, 103.53] '
        'std=[58.395, 57.12, 57.375] (RGB), but this config normalises with mean=[122.771, '
        '116.746, 104.094] std=[68.501, 66.632, 70.323] (RGB) (model.data_preprocessor): '
        'the backbone would see inputs scaled and ordered otherwise than in training')
    assert check.fix == ['append to --cfg-options: model.data_preprocessor.mean='
                         '"[123.675,116.28,103.53]" model.data_preprocessor.std='
                         '"[58.395,57.12,57.375]" model.data_preprocessor.bgr_to_rgb=True',
                         '(or use weights trained as model.data_preprocessor.mean/std/'
                         'bgr_to_rgb say)']
    cfg.load_from = trained
    assert by_what(run_preflight(cfg))['load_from checkpoint'].status == 'BROKEN'
    cfg.resume = True
    assert by_what(run_preflight(cfg))['checkpoint to resume'].status == 'BROKEN'
    cfg.resume, cfg.load_from = False, None
    cfg.model.data_preprocessor.update(mean=[123.675, 116.28, 103.53],
                                       std=[58.395, 57.12, 57.375])
    checks = run_preflight(cfg, 'test', trained)  # tested as it was trained: passes
    assert preflight_passes(checks), format_checklist(checks, 'cfg', verbose=True)


def test_checkpoint_to_resume(coco, tmp_path):
    cfg = detection_cfg(coco)
    cfg.model.backbone.init_cfg = None
    cfg.resume, cfg.load_from = True, str(tmp_path / 'work' / 'epoch_3.pth')
    check = by_what(run_preflight(cfg))['checkpoint to resume']
    assert check.status == 'MISSING'
    assert 'convert_checkpoint' not in ' '.join(check.fix)
    assert check.fix[0].startswith('pass --resume work_dirs/<config>/epoch_N.pth')
    cfg.load_from = save_backbone_checkpoint(tiny_backbone(), str(tmp_path / 'converted.pth'))
    check = by_what(run_preflight(cfg))['checkpoint to resume']
    assert check.status == 'BROKEN' and 'was not written by training' in check.detail
    # a whole model's weights with a meta (a release): the runner's resume reads the epoch,
    # the iteration and the message hub (a KeyError once built; the preflight said ok)
    import torch
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    state = MODELS.build(cfg.model).state_dict()
    torch.save({'meta': {'mmdet_version': '3.3.0'}, 'state_dict': state}, cfg.load_from)
    check = by_what(run_preflight(cfg))['checkpoint to resume']
    assert check.status == 'BROKEN' and 'was not written by training' in check.detail
    assert "no meta['epoch']" in check.detail
    torch.save({'meta': {'epoch': 3, 'iter': 30}, 'state_dict': state, 'message_hub': {}},
               cfg.load_from)  # what the runner's save writes
    assert by_what(run_preflight(cfg))['checkpoint to resume'].status == 'ok'


@pytest.fixture
def setup(tmp_path, tiny_clip_path, tiny_scorer_pca):
    data = photos_with_views(str(tmp_path), 6, 32)
    clip = shutil.copytree(tiny_clip_path, str(tmp_path / 'clip'))
    return dict(images=data.src_root, manifest=data.manifest, clip=clip, pca=tiny_scorer_pca,
                views=data.gen_dir)


def pretraining_cfg(s, **extra):
    return load_config(GENVIEW_TINY, {'train_dataloader.dataset.data_root': s['images'],
                                      'genview.manifest': s['manifest'],
                                      'model.scorer.encoder': s['clip'],
                                      'model.scorer.pca_path': s['pca'], **extra})


def test_manifest_whose_views_are_missing(setup):
    first = sorted(os.listdir(setup['views']))[0]
    os.remove(osp.join(setup['views'], first))
    check = by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest']
    assert check.status == 'note' and '1 of 6 sampled views are missing' in check.detail
    shutil.rmtree(setup['views'])
    check = by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest']
    assert check.status == 'BROKEN'
    assert '6 of 6 sampled views are missing' in check.detail and 'plain SSL' in check.detail
    assert "relative to the manifest's folder" in check.fix[0]
    assert f'--source-root {setup["images"]} --out' in check.fix[1]  # the config's images
    assert f'python tools/generate_views.py {setup["images"]} --pca' in check.fix[2]


def test_manifest_whose_views_are_the_dataset_images(setup):
    """A manifest imported with the views folder and --source-root swapped: check_config.py
    said OK ('6 of 6 sampled dataset images have a view') and training was plain SSL."""
    import json
    folder = osp.dirname(setup['manifest'])
    with open(setup['manifest']) as f:
        rows = [json.loads(line) for line in f]
    with open(setup['manifest'], 'w') as f:
        f.writelines(json.dumps(dict(r, output=osp.relpath(r['source'], folder))) + '\n'
                     for r in rows)
    check = by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest']
    assert check.status == 'BROKEN', check
    assert check.detail.endswith('; 6 of 6 sampled views are the dataset images themselves '
                                 f'or copies of them (e.g. {rows[0]["source"]}): every pair '
                                 'would be two views of the original (plain SSL)')
    assert check.fix[0].startswith('import again with the released views folder (the generated '
                                   'views, not a copy of the images) first')


def test_manifest_whose_views_are_copies_of_the_dataset_images(setup):
    """A views folder copied from the sources (not linked) passed: only one file under two
    names counted as the image itself, and training was plain SSL."""
    import json
    folder = osp.dirname(setup['manifest'])
    with open(setup['manifest']) as f:
        rows = [json.loads(line) for line in f]
    for r in rows:
        if r['output']:
            shutil.copyfile(r['source'], osp.join(folder, r['output']))
    check = by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest']
    assert check.status == 'BROKEN', check
    assert '6 of 6 sampled views are the dataset images themselves or copies of them (e.g. ' \
        f'{osp.join(folder, rows[0]["output"])})' in check.detail, check.detail


def test_manifest_whose_views_are_empty_files(setup):
    """0-byte views (left by a full disk) count as missing, named as empty: one is a note, all
    of them BROKEN with the command that remakes them; they passed as views before."""
    views = sorted(osp.join(setup['views'], n) for n in os.listdir(setup['views']))
    open(views[0], 'wb').close()
    check = by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest']
    assert check.status == 'note'
    assert (f'1 of 6 sampled views are empty files (0 bytes, e.g. {views[0]}: written on a full '
            'disk?): those images train on the original') in check.detail
    for path in views[1:]:
        open(path, 'wb').close()
    os.remove(views[0])
    check = by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest']
    assert check.status == 'BROKEN'
    assert (f'1 of 6 sampled views are missing (e.g. {views[0]}); 5 of 6 sampled views are '
            f'empty files (0 bytes, e.g. {views[1]}: written on a full disk?): training would '
            'fall back to the original for every image (plain SSL)') in check.detail
    assert "relative to the manifest's folder" in check.fix[0]
    assert check.fix[-1].startswith('unpack or generate the views again on a disk with room')


def test_manifest_whose_views_are_not_images(setup):
    """Views cut short by a copy or unpack (not images, not empty) passed as views; training
    then fell back to the original for each, a run of plain SSL: one is a note, all BROKEN."""
    views = sorted(osp.join(setup['views'], n) for n in os.listdir(setup['views']))
    with open(views[0], 'r+b') as f:
        f.truncate(20)  # the PNG signature and part of its header
    check = by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest']
    assert check.status == 'note'
    assert (f'1 of 6 decoded sampled views are not images (e.g. {views[0]} (not an image): '
            'copied or unpacked only in part?): those images train on the original'
            ) in check.detail
    for path in views[1:]:
        with open(path, 'wb') as f:
            f.write(b'<html>503 Service Unavailable</html>')
    check = by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest']
    assert check.status == 'BROKEN'
    assert ('6 of 6 decoded sampled views are not images' in check.detail
            and 'fall back to the original for every image (plain SSL)' in check.detail)
    assert check.fix[0].startswith('copy, unpack or generate the views again')


def test_missing_and_undecodable_views_count_together(setup):
    """2 of 6 views missing and 2 of the 4 there not images: each at most half, so the
    preflight noted it and exited 0, while GenViewPairHook (4 of 6 unusable) stopped the run
    at its start. Counted together, as the hook counts them: BROKEN."""
    views = sorted(osp.join(setup['views'], n) for n in os.listdir(setup['views']))
    for path in views[:2]:
        os.remove(path)
    for path in views[2:4]:
        with open(path, 'wb') as f:
            f.write(b'<html>503 Service Unavailable</html>')
    check = by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest']
    assert check.status == 'BROKEN', check
    assert ('2 of 6 sampled views are missing' in check.detail and
            '2 of 4 decoded sampled views are not images' in check.detail and
            'fall back to the original for most images (plain SSL)' in check.detail)
    os.remove(views[2])  # 3 of 6 missing, 1 of 3 there undecodable: 4 unusable, still BROKEN
    assert by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest'].status \
        == 'BROKEN'
    shutil.copy(views[4], views[3])  # 3 missing, the 3 there decode: half, a note
    assert by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest'].status \
        == 'note'


def test_a_manifest_made_from_other_pictures_is_broken(setup, tmp_path):
    """The manifest of one dataset used for another with the same layout: every image matched
    a row by its trailing path, the preflight said OK and training paired each image with a
    view of another picture. The rows' sources are there and differ: BROKEN, unless
    GenViewPairHook is told the data is a re-encoded copy (check_sources=False)."""
    from PIL import Image
    other = str(tmp_path / 'other')
    shutil.copytree(setup['images'], other)
    assert by_what(run_preflight(pretraining_cfg(setup, **{
        'train_dataloader.dataset.data_root': other})))['GenView views manifest'].status == 'ok'
    mine = sorted(osp.join(d, n) for d, _, names in os.walk(other) for n in names)
    with Image.open(mine[0]) as img:  # one re-saved since its view was made: a note
        img.convert('RGB').rotate(90).save(mine[0])
    cfg = pretraining_cfg(setup, **{'train_dataloader.dataset.data_root': other})
    check = by_what(run_preflight(cfg))['GenView views manifest']
    assert check.status == 'note' and check.detail.endswith(
        "; 1 of the 6 that match rows by file name differ from those rows' source (e.g. "
        f"{mine[0]} and {osp.join(setup['images'], osp.relpath(mine[0], other))}): they would be "
        "paired with another picture's view (re-saved since their views were made?)"), check
    for path in mine:  # other pictures under the same names
        with Image.open(path) as img:
            img.convert('RGB').rotate(90).save(path)
    check = by_what(run_preflight(cfg))['GenView views manifest']
    assert check.status == 'BROKEN', check
    assert "; 6 of the 6 that match rows by file name differ from those rows' source" in \
        check.detail
    assert check.fix[-1].endswith('check_sources=False of GenViewPairHook (custom_hooks)')
    cfg.custom_hooks = [dict(type='GenViewPairHook', check_sources=False)]
    assert by_what(run_preflight(cfg))['GenView views manifest'].status == 'ok'
    # the hook in default_hooks (MMEngine registers it there too), or as a hook object
    from genview_mm.engine import GenViewPairHook
    cfg.custom_hooks = []
    cfg.default_hooks['genview'] = dict(type='GenViewPairHook', check_sources=False)
    assert by_what(run_preflight(cfg))['GenView views manifest'].status == 'ok'
    cfg.default_hooks.pop('genview')
    cfg.custom_hooks = [GenViewPairHook(check_sources=False)]
    assert by_what(run_preflight(cfg))['GenView views manifest'].status == 'ok'


def test_the_preflight_applies_the_hooks_min_coverage(setup):
    """GenViewPairHook(min_coverage=0.9) stops a run whose coverage is lower at its start; the
    preflight noted 3 of 6 and exited 0."""
    import json
    with open(setup['manifest']) as f:
        rows = [json.loads(line) for line in f]
    with open(setup['manifest'], 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows[:3])
    cfg = pretraining_cfg(setup)
    assert by_what(run_preflight(cfg))['GenView views manifest'].status == 'note'
    cfg.custom_hooks = [dict(type='genview_mm.GenViewPairHook', min_coverage=0.9)]
    check = by_what(run_preflight(cfg))['GenView views manifest']
    assert (check.status, check.detail.split(': ', 1)[1]) == (
        'BROKEN', '3 rows; 3 of 6 sampled dataset images have a view: below min_coverage=0.9 '
        'of GenViewPairHook, which stops training at its start'), check
    assert check.fix == ['generate or import views for the images without one, or lower '
                         'min_coverage of GenViewPairHook (custom_hooks)']
    cfg.custom_hooks = [dict(type='GenViewPairHook', min_coverage=0.5)]
    assert by_what(run_preflight(cfg))['GenView views manifest'].status == 'note'


def test_manifest_of_a_generation_that_has_not_finished(setup):
    """The manifest's folder holds shard records of tools/generate_views.py but no merged
    manifest: the checklist said to import or generate the views from scratch."""
    out = osp.dirname(setup['manifest'])
    os.makedirs(osp.join(out, 'shards'))
    os.rename(setup['manifest'], osp.join(out, 'shards', 'shard-00000.jsonl'))
    open(osp.join(out, 'shards', 'shard-00001.journal'), 'w').close()
    for manifest in (out, setup['manifest']):  # genview.manifest: the folder or the file
        check = by_what(run_preflight(pretraining_cfg(setup, **{'genview.manifest': manifest}))
                        )['GenView views manifest']
        assert check.status == 'MISSING'
        assert check.detail == (
            f'{setup["manifest"]} not found; {out}/shards holds 1 finished shard record and 1 '
            'in progress: the generation has not finished (tools/generate_views.py merges when '
            'its last shard is done)')
        assert check.fix == [
            'finish it: run the same tools/generate_views.py command again (it skips the '
            'images done and merges at the end)',
            f'or train on the views made so far: python tools/merge_manifests.py {out}']


def test_views_filtered_by_min_clip_sim(setup):
    """The preflight applies the pair transform's min_clip_sim as training does: it said OK
    6/6, then training stopped with advice about generate_views/merge_manifests."""
    from genview_mm.apis.preflight.fixes import fix_lines
    check = by_what(run_preflight(pretraining_cfg(setup, **{'genview.min_clip_sim': 2.0})))[
        'GenView views manifest']
    assert check.status == 'BROKEN'
    assert check.detail == (f'{setup["manifest"]}: 7 rows; 0 of 6 sampled dataset images have '
                            'a view; 6 views filtered by min_clip_sim=2.0 (6 sampled images have '
                            'no other): lower it')
    assert check.fix == fix_lines('min_clip_sim', value=2.0)
    assert 'genview.min_clip_sim=X (below 2.0)' in check.fix[0]
    check = by_what(run_preflight(pretraining_cfg(setup, **{'genview.min_clip_sim': 0.65})))[
        'GenView views manifest']
    assert check.status == 'note' and check.detail.endswith(
        '3 of 6 sampled dataset images have a view; 3 views filtered by min_clip_sim=0.65 (3 '
        'sampled images have no other): lower it')
    from genview_mm.apis.preflight.manifest_checks import check_manifest
    check = check_manifest(setup['manifest'], None, min_clip_sim=2.0)  # nothing sampled
    assert (check.status, check.detail) == (
        'BROKEN', f'{setup["manifest"]} (7 rows; 6 views filtered by min_clip_sim=2.0): lower it')
    assert check_manifest(setup['manifest'], None, min_clip_sim=0.65).status == 'ok'


def test_prob0_needs_no_manifest(setup):
    os.remove(setup['manifest'])
    checks = run_preflight(pretraining_cfg(setup, **{'genview.prob': 0.0}))
    assert preflight_passes(checks), format_checklist(checks, 'cfg')
    check = by_what(checks)['GenView views manifest']
    assert check.status == 'note' and 'prob=0' in check.detail
    assert not preflight_passes(run_preflight(pretraining_cfg(setup)))  # prob 1 still refuses


# seed 2: bytes on which the unpickler raises IndexError ('pop from empty list'), which the
# timm file's identity let through as a traceback (the test failed now and then)
@pytest.mark.parametrize('content', [b'', os.urandom(4096), random.Random(2).randbytes(4096)],
                         ids=['zero_bytes', 'random', 'unpickler_index_error'])
def test_scorer_weights_that_do_not_load(setup, tmp_path, content, tiny_clip_path):
    weights = osp.join(setup['clip'], 'model.safetensors')
    assert osp.isfile(weights)
    with open(weights, 'wb') as f:
        f.write(content)
    check = by_what(run_preflight(pretraining_cfg(setup)))['scorer encoder']
    assert check.status == 'BROKEN' and 'is not a loadable safetensors file' in check.detail
    good = open(osp.join(tiny_clip_path, 'model.safetensors'), 'rb').read()
    shutil.move(weights, osp.join(setup['clip'], 'pytorch_model.bin'))  # an old, damaged save
    with open(weights, 'wb') as f:  # beside the whole one, which transformers loads
        f.write(good)
    assert by_what(run_preflight(pretraining_cfg(setup)))['scorer encoder'].status == 'ok'
    os.remove(osp.join(setup['clip'], 'pytorch_model.bin'))
    os.remove(weights)
    check = by_what(run_preflight(pretraining_cfg(setup)))['scorer encoder']
    assert check.status == 'BROKEN' and 'has no weights file' in check.detail
    cfg = pretraining_cfg(setup)
    junk = str(tmp_path / 'convnext.pth')
    with open(junk, 'wb') as f:
        f.write(content)
    cfg.model.scorer.encoder = dict(type='TimmPatchEncoder', model_name='convnext_atto',
                                    checkpoint_path=junk, input_size=64)
    check = by_what(run_preflight(cfg))['scorer encoder']
    assert check.status == 'BROKEN' and 'is not a loadable torch file' in check.detail


def test_a_model_folders_weights_are_checked_in_transformers_order(tmp_path):
    """transformers reads model.safetensors, else a safetensors shard index, else
    pytorch_model.bin, else a .bin index: a damaged old pytorch_model.bin beside a whole
    sharded safetensors save, or a .bin index with its shards gone beside model.safetensors,
    failed the preflight though neither is read."""
    import json

    from safetensors.torch import save_file

    from genview_mm.apis.preflight.weights import folder_weights_problem
    shard = 'model-00001-of-00001.safetensors'
    save_file(dict(w=torch.zeros(2)), str(tmp_path / shard))
    (tmp_path / 'model.safetensors.index.json').write_text(json.dumps(dict(
        metadata={}, weight_map=dict(w=shard))))
    (tmp_path / 'pytorch_model.bin').write_bytes(b'an old save, cut short')
    assert folder_weights_problem(str(tmp_path)) is None
    os.remove(tmp_path / shard)  # the index read: its shard missing is said
    assert 'lacks 1 weight shards' in folder_weights_problem(str(tmp_path))
    os.remove(tmp_path / 'model.safetensors.index.json')  # now the .bin is read
    assert 'is not a loadable torch file' in folder_weights_problem(str(tmp_path))
    save_file(dict(w=torch.zeros(2)), str(tmp_path / 'model.safetensors'))
    (tmp_path / 'pytorch_model.bin.index.json').write_text(json.dumps(dict(
        weight_map=dict(w='pytorch_model-00001-of-00002.bin'))))
    assert folder_weights_problem(str(tmp_path)) is None


def test_damaged_weights_in_the_hugging_face_cache(setup, tmp_path, monkeypatch):
    """A timm encoder whose cached weights file is random bytes (an interrupted download)."""
    import huggingface_hub.constants
    from timm.models import get_pretrained_cfg
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'hub'))
    repo = get_pretrained_cfg('convnext_atto').hf_hub_id
    cache = tmp_path / 'hub' / ('models--' + repo.replace('/', '--'))
    (cache / 'refs').mkdir(parents=True)
    (cache / 'refs' / 'main').write_text('0' * 40)
    (cache / 'snapshots' / ('0' * 40)).mkdir(parents=True)
    weights = cache / 'snapshots' / ('0' * 40) / 'model.safetensors'
    weights.write_bytes(os.urandom(1000))
    cfg = pretraining_cfg(setup)
    cfg.model.scorer.encoder = dict(type='TimmPatchEncoder', model_name='convnext_atto',
                                    input_size=64)
    check = by_what(run_preflight(cfg))['scorer encoder']
    assert check.status == 'BROKEN' and 'is not a loadable safetensors file' in check.detail
    assert check.fix[0].startswith(f'hf download {repo} --force-download')
    from safetensors.torch import save_file
    save_file({'stem.0.weight': torch.zeros(2)}, str(weights))
    assert by_what(run_preflight(cfg))['scorer encoder'].status == 'ok'


def test_a_clip_encoder_cached_without_its_weights_is_broken_offline(setup, tmp_path,
                                                                     monkeypatch):
    """A CLIP encoder's hub id whose cache holds only config.json (an interrupted download):
    OK on main with the hub offline, then the model failed to build. Offline, its weights must
    be cached (online, transformers downloads what is missing)."""
    import huggingface_hub.constants
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'hub'))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    repo = 'genview/tiny-clip'
    cache = tmp_path / 'hub' / 'models--genview--tiny-clip'
    (cache / 'refs').mkdir(parents=True)
    (cache / 'refs' / 'main').write_text('0' * 40)
    snapshot = cache / 'snapshots' / ('0' * 40)
    snapshot.mkdir(parents=True)
    shutil.copy(osp.join(setup['clip'], 'config.json'), str(snapshot / 'config.json'))
    cfg = pretraining_cfg(setup)
    cfg.model.scorer.encoder = repo
    check = by_what(run_preflight(cfg))['scorer encoder']
    assert check.status == 'BROKEN' and 'has no weights file' in check.detail, check
    for name in os.listdir(setup['clip']):
        if not osp.exists(str(snapshot / name)):
            shutil.copy(osp.join(setup['clip'], name), str(snapshot / name))
    check = by_what(run_preflight(cfg))['scorer encoder']
    assert check.status != 'BROKEN' and 'has no weights file' not in check.detail, check


def test_scorer_check_encoder_false_is_asked_of_the_pca_check(setup, tmp_path):
    """``model.scorer.check_encoder=False`` (the scorer then compares only token width, grid and
    input size): the preflight still required the file's encoder to be this one, BROKEN, and
    stopped a run the scorer builds."""
    from dataclasses import replace

    from genview_mm.foreground import ForegroundPCA
    other = str(tmp_path / 'other_pca.pth')
    pca = ForegroundPCA.load(setup['pca'])
    replace(pca, encoder='some-other-clip', fingerprint=None).save(other)
    cfg = pretraining_cfg(setup, **{'model.scorer.pca_path': other})
    assert by_what(run_preflight(cfg))['scorer PCA file'].status == 'BROKEN'
    cfg.model.scorer.check_encoder = False
    check = by_what(run_preflight(cfg))['scorer PCA file']
    assert check.status == 'ok' and 'check_encoder=False' in check.detail, check
    replace(pca, encoder='some-other-clip', input_size=pca.input_size * 2).save(other)
    assert by_what(run_preflight(cfg))['scorer PCA file'].status == 'BROKEN'  # a size still
    # a timm encoder's token width and grid are compared too (measured on the meta device):
    # a 320-d convnext_atto file for a 512-d resnet18 passed, and the scorer refused it
    import timm
    weights = str(tmp_path / 'r18.pth')
    torch.save(timm.create_model('resnet18', pretrained=False, num_classes=0).state_dict(),
               weights)
    atto = save_pca(str(tmp_path / 'atto.pth'), 'convnext_atto', 320, (2, 2), 64)
    cfg.model.scorer.pca_path = atto
    cfg.model.scorer.encoder = dict(type='TimmPatchEncoder', model_name='resnet18',
                                    checkpoint_path=weights, input_size=64)
    check = by_what(run_preflight(cfg))['scorer PCA file']
    assert check.status == 'BROKEN' and check.detail.endswith(
        "the scorer encoder 'resnet18' gives 512-d tokens on a 2x2 grid"), check


def test_fix_lines_name_the_config_paths_and_the_overwrite_they_need(setup, tmp_path):
    """The semi-supervised subsets' fix named data/imagenet/meta whatever the data_root; a
    damaged PCA file's fix wrote to it without --overwrite, which the tool then refused."""
    semi = osp.join(ROOT, 'configs', 'benchmarks', 'genview_r50_finetune-1pct-20e_in1k.py')
    root = tmp_path / 'in1k'
    write_photos(str(root / 'train' / 'n01'), 2, size=32)
    cfg = load_config(semi, {'train_dataloader.dataset.data_root': str(root),
                             'model.backbone.init_cfg': None})
    check = next(c for c in run_preflight(cfg) if 'train_1percent.txt not found' in c.detail)
    assert check.fix[0] == (f"python tools/make_semi_subsets.py --train-list "
                            f"{root / 'meta' / 'train.txt'} --simclr 1percent.txt 10percent.txt "
                            f"--out-dir {root / 'meta'}   (SimCLR's lists, the paper's subsets)")
    assert check.fix[1] == 'or draw class-balanced ones (an approximation): --percent 1 10'

    damaged = tmp_path / 'pca.pth'
    damaged.write_bytes(b'not a PCA file')
    check = by_what(run_preflight(pretraining_cfg(setup, **{
        'model.scorer.pca_path': str(damaged)})))['scorer PCA file']
    assert check.status == 'BROKEN' and check.fix[0].endswith(f'--out {damaged} --overwrite')


def test_the_authors_vector_as_pca_path_is_imported_beside_it(setup, tmp_path):
    """pca_path naming the authors' pca_vectors.npy (as their configs do): the detail was
    'not a foreground PCA file (... UnpicklingError)' and the fix wrote the PCA file over the
    vector (--out pca_vectors.npy --overwrite). Now the detail says to import it, and the fix
    writes beside it and points pca_path there."""
    folder = tmp_path / 'eigenvecters'
    folder.mkdir()
    vector = folder / 'pca_vectors.npy'
    np.save(str(vector), np.ones((32, 1), np.float32) / np.sqrt(32))
    check = by_what(run_preflight(pretraining_cfg(setup, **{
        'model.scorer.pca_path': str(vector)})))['scorer PCA file']
    assert check.status == 'BROKEN' and "is a NumPy array (the authors' pca_vectors.npy?)" in \
        check.detail and 'tools/import_official_pca.py' in check.detail, check
    assert f'--out {vector}' not in ' '.join(check.fix) and '--overwrite' not in check.fix[0]
    assert check.fix[1].startswith(f'then --cfg-options model.scorer.pca_path={folder}/'), check


def test_a_manifest_is_checked_against_images_two_folders_deep(setup, tmp_path):
    """Images two folders below the data root (root/x/y/*.jpg): the sample found none, so a
    manifest of other images was checked for its rows only and passed as OK."""
    deep = tmp_path / 'deep'
    write_photos(str(deep / 'x' / 'y'), 4, size=32)
    cfg = pretraining_cfg(setup, **{'train_dataloader.dataset.data_root': str(deep)})
    check = by_what(run_preflight(cfg))['GenView views manifest']
    assert check.status == 'BROKEN' and '0 of 4 sampled dataset images have a view' in \
        check.detail, check


def test_a_dataset_on_another_storage_backend_is_noted_not_missing(setup, coco):
    """An s3:// data root was always MISSING (checked with os.path), which stopped a run that
    reads it through its backend_args; so was an evaluator's s3:// annotation file."""
    cfg = pretraining_cfg(setup, **{'train_dataloader.dataset.data_root': 's3://bucket/imgs'})
    check = by_what(run_preflight(cfg))['CustomDataset data [train_dataloader.dataset]']
    assert check.status == 'note' and 's3://bucket/imgs' in check.detail, check
    # a remote list of local images: the local folder is still checked (it was a note as a whole)
    cfg = pretraining_cfg(setup, **{'train_dataloader.dataset.ann_file': 's3://bucket/train.txt',
                                    'train_dataloader.dataset.data_root': '/nowhere/imgs'})
    check = by_what(run_preflight(cfg))['CustomDataset data [train_dataloader.dataset]']
    assert check.status == 'MISSING' and check.detail == '/nowhere/imgs not found', check
    cfg.train_dataloader.dataset.data_root = setup['images']
    check = by_what(run_preflight(cfg))['CustomDataset data [train_dataloader.dataset]']
    assert check.status == 'note' and 's3://bucket/train.txt' in check.detail, check
    cfg = detection_cfg(coco)
    cfg.model.backbone.init_cfg = None
    cfg.val_evaluator.ann_file = 's3://bucket/coco/instances_val2017.json'
    checks = run_preflight(cfg)
    check = by_what(checks)['CocoMetric annotations [val_evaluator]']
    assert check.status == 'note' and check.detail.startswith(
        's3://bucket/coco/instances_val2017.json is on another storage backend'), check
    assert preflight_passes(checks)


def test_labels_of_a_dataset_without_classes_are_bound_by_the_head(tmp_path):
    """A CustomDataset fixes no classes: a label beyond the head's num_classes (or -1) passed
    the preflight, and the linear probe's loss failed where that line was drawn."""
    linear = osp.join(ROOT, 'configs', 'benchmarks',
                      'genview_mocov2_r50_linear-steplr-100e_in1k.py')
    write_photos(str(tmp_path / 'n01'), 2, size=32)
    ann = tmp_path / 'train.txt'
    ann.write_text('n01/img_0000.jpg 0\nn01/img_0001.jpg 1000\n')
    cfg = load_config(linear, {'train_dataloader.dataset': dict(
        type='CustomDataset', data_root=str(tmp_path), ann_file=str(ann), _delete_=True,
        pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]),
        'val_cfg': None, 'val_dataloader': None, 'val_evaluator': None,
        'model.backbone.init_cfg': None})
    check = by_what(run_preflight(cfg))['CustomDataset data [train_dataloader.dataset]']
    assert (check.status, check.detail) == ('BROKEN', (
        f"{ann} line 2 ('n01/img_0001.jpg 1000') has label 1000, but the model's head "
        '(num_classes) has 1000 classes (labels 0 to 999): fix that line'))
    ann.write_text('n01/img_0000.jpg 0\nn01/img_0001.jpg 999\n')
    assert by_what(run_preflight(cfg))[
        'CustomDataset data [train_dataloader.dataset]'].status == 'ok'


def test_empty_image_folder_and_annotation_files(setup, tmp_path, coco):
    empty = tmp_path / 'empty'
    (empty / 'cls').mkdir(parents=True)
    cfg = pretraining_cfg(setup, **{'train_dataloader.dataset.data_root': str(empty)})
    check = by_what(run_preflight(cfg))['CustomDataset data [train_dataloader.dataset]']
    assert check.status == 'BROKEN' and f'image folder {empty} holds no images' in check.detail
    # ImageNet layout whose train/ is empty, then whose list is empty
    linear = osp.join(ROOT, 'configs', 'benchmarks',
                      'genview_mocov2_r50_linear-steplr-100e_in1k.py')
    root = tmp_path / 'imagenet'
    for split in ('train', 'val'):
        write_photos(str(root / split / 'n01'), 2, size=32)
        (root / 'meta').mkdir(exist_ok=True)
        (root / 'meta' / f'{split}.txt').write_text('n01/img_0000.jpg 0\nn01/img_0001.jpg 0\n')
    cfg = load_config(linear, {'train_dataloader.dataset.data_root': str(root),
                               'val_dataloader.dataset.data_root': str(root),
                               'model.backbone.init_cfg': None})
    assert preflight_passes(run_preflight(cfg))
    train = 'ImageNet (train) data [train_dataloader.dataset]'
    os.remove(root / 'train' / 'n01' / 'img_0001.jpg')  # half of the list: the loader stops
    check = by_what(run_preflight(cfg))[train]  # at it (passed while any one existed)
    assert check.status == 'BROKEN' and check.detail.startswith(
        f"1 of 2 sampled images listed in {root / 'meta' / 'train.txt'} are missing (e.g. ")
    load = cfg.train_dataloader.dataset.pipeline[0]
    assert load.type == 'LoadImageFromFile'
    load.ignore_empty = True  # the loader skips them: a note, no longer a stop
    checks = run_preflight(cfg)
    assert preflight_passes(checks) and by_what(checks)[train].status == 'note'
    assert 'ignore_empty=True skips them' in by_what(checks)[train].detail
    cfg.train_dataloader.dataset.test_mode = True  # in test mode a skipped image is an error
    assert by_what(run_preflight(cfg))[train].status == 'BROKEN'
    load.ignore_empty, cfg.train_dataloader.dataset.test_mode = False, False
    shutil.rmtree(root / 'train' / 'n01')
    check = by_what(run_preflight(cfg))[train]
    assert check.status == 'BROKEN' and 'none of 2 sampled images listed in' in check.detail
    (root / 'meta' / 'train.txt').write_text('')
    check = by_what(run_preflight(cfg))[train]
    assert check.status == 'BROKEN' and 'meta/train.txt is empty' in check.detail
    # COCO: an empty annotation file, for the dataset and for the evaluator
    open(coco + 'annotations.json', 'w').close()
    cfg = detection_cfg(coco)
    cfg.model.backbone.init_cfg = None
    checks = by_what(run_preflight(cfg))
    assert checks['CocoMetric annotations [val_evaluator]'].status == 'BROKEN'
    assert checks['CocoDataset data [train_dataloader.dataset]'].detail.endswith(
        'annotations.json is empty')


@pytest.mark.parametrize('config, part, kind, tensors', [
    ('benchmarks/genview_mocov2_r50_linear-steplr-100e_in1k.py', 'backbone', 'ResNet', 318),
    ('benchmarks/genview_mocov3_vit-base-p16_linear-coslr-90e_in1k.py', None,
     'ImageClassifier', 152),
    ('detection/genview_mask-rcnn_r50-fpn_ms-1x_coco.py', None, 'MaskRCNN', 430)])
def test_the_compared_models_build_without_their_weights(config, part, kind, tensors):
    """The real configs' modules build with parameters on meta (mmpretrain's ResNet and ViT
    compute drop-path rates with .item() in their constructors, which a meta device refuses)."""
    from genview_mm.apis.preflight.state_dict_checks import module_shapes
    cfg = load_config(osp.join(ROOT, 'configs', config))
    shapes, built = module_shapes(cfg.model[part] if part else cfg.model, cfg.default_scope)
    assert built == kind and shapes is not None and len(shapes) == tensors
    assert all(isinstance(s, tuple) for s in shapes.values())


def test_resume_without_a_path_names_the_checkpoint_it_will_load(tmp_path):
    """``--resume`` without a path: the file ``last_checkpoint`` names is resolved before the
    preflight (on main the preflight checked nothing, and a damaged last checkpoint failed after
    the runner was built); a copied work dir resumes from its own copy, never the original's."""
    from mmengine.config import Config

    from genview_mm.apis.launch import resume_checkpoint, work_dir_of
    work = tmp_path / 'copy'
    work.mkdir()
    assert resume_checkpoint(str(work)) is None  # nothing yet: training starts afresh
    original = tmp_path / 'run' / 'epoch_3.pth'
    original.parent.mkdir()
    original.write_bytes(b'the original run')
    (work / 'last_checkpoint').write_text(str(original))
    assert resume_checkpoint(str(work)) == str(work / 'epoch_3.pth')  # missing: the preflight
    (work / 'epoch_3.pth').write_bytes(b'the copy')
    assert resume_checkpoint(str(work)) == str(work / 'epoch_3.pth')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_3.pth') + '\n')
    assert resume_checkpoint(str(work)) == str(work / 'epoch_3.pth')
    cfg = Config(dict(model=dict()))
    assert work_dir_of(cfg, None, 'configs/x/my_cfg.py') == './work_dirs/my_cfg'
    assert work_dir_of(Config(dict(work_dir='w')), None, 'a.py') == 'w'
    assert work_dir_of(cfg, 'cli', 'a.py') == 'cli'



def test_resume_without_a_path_with_a_checkpoint_out_dir(tmp_path):
    """With ``default_hooks.checkpoint.out_dir`` MMEngine saves to ``<out_dir>/<work dir name>``
    and ``last_checkpoint`` names a file there: that file is resumed (on main it was taken
    for a copied work dir's and replaced by ``<work_dir>/epoch_N.pth``: missing, or a stale
    file of an earlier run); a name outside that folder is still read from it."""
    from mmengine.config import Config

    from genview_mm.apis.launch import checkpoint_dir_of, resume_checkpoint
    work, out = tmp_path / 'run', tmp_path / 'scratch'
    work.mkdir()
    saved = out / 'run' / 'epoch_3.pth'
    (work / 'last_checkpoint').write_text(str(saved))
    (work / 'epoch_3.pth').write_bytes(b'a stale file of an earlier run')
    cfg = Config(dict(default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                                         out_dir=str(out)))))
    folder = checkpoint_dir_of(cfg, str(work))
    assert folder == str(out / 'run')
    assert resume_checkpoint(str(work), folder) == str(saved)
    (work / 'last_checkpoint').write_text(str(tmp_path / 'other' / 'run' / 'epoch_3.pth'))
    assert resume_checkpoint(str(work), folder) == str(saved)  # copied: its own out folder
    remote = Config(dict(default_hooks=dict(checkpoint=dict(out_dir='s3://bucket/ckpts/'))))
    assert checkpoint_dir_of(remote, str(work)) == 's3://bucket/ckpts/run'
    (work / 'last_checkpoint').write_text('s3://bucket/ckpts/run/epoch_5.pth')
    assert resume_checkpoint(str(work), 's3://bucket/ckpts/run') == \
        's3://bucket/ckpts/run/epoch_5.pth'
    assert checkpoint_dir_of(Config(dict()), str(work)) == str(work)  # no out_dir: work dir
    (work / 'last_checkpoint').write_text(str(work / 'epoch_3.pth'))
    assert resume_checkpoint(str(work)) == str(work / 'epoch_3.pth')

def test_c4_backbone_and_shared_head_load_one_file():
    """The C4 config loads res2-res4 into the backbone and res5 into the RoI head: overriding
    only the backbone's file (as every other transfer config is told) mixed two models with a
    NOTE; now it is BROKEN with both keys to pass."""
    from genview_mm.apis.preflight.checkpoint_checks import check_checkpoints
    c4 = osp.join(ROOT, 'configs', 'detection', 'genview_mask-rcnn_r50-c4_ms-1x_coco.py')
    checks = {c.what: c for c in check_checkpoints(load_config(c4))}
    assert 'one backbone checkpoint' not in checks  # the config's default: one file
    cfg = load_config(c4, {'model.backbone.init_cfg.checkpoint': 'mine.pth'})
    check = {c.what: c for c in check_checkpoints(cfg)}['one backbone checkpoint']
    assert check.status == 'BROKEN' and check.detail.endswith(
        'load different files: model.backbone.init_cfg.checkpoint=mine.pth, '
        'model.roi_head.shared_head.init_cfg.checkpoint=checkpoints/'
        'genview_mocov2_r50_backbone.pth')
    assert check.fix == ['pass the same file to both: --cfg-options '
                         'model.backbone.init_cfg.checkpoint=CKPT',
                         '    model.roi_head.shared_head.init_cfg.checkpoint=CKPT']
    # one file spelt two ways is one file (it was refused)
    cfg = load_config(c4, {'model.backbone.init_cfg.checkpoint': './checkpoints/'
                           'genview_mocov2_r50_backbone.pth'})
    assert 'one backbone checkpoint' not in {c.what for c in check_checkpoints(cfg)}
    home = osp.expanduser('~')  # '~/bb.pth' and the same file by its full path: MMEngine's
    cfg = load_config(c4, {'model.backbone.init_cfg.checkpoint': '~/bb.pth',  # loader expands
                           'model.roi_head.shared_head.init_cfg.checkpoint': f'{home}/bb.pth'})
    assert 'one backbone checkpoint' not in {c.what for c in check_checkpoints(cfg)}


def test_resume_with_nothing_to_resume_keeps_the_configs_load_from(tmp_path):
    """``--resume`` without a path on a job's first run (no last_checkpoint yet) set
    load_from=None: a config fine-tuning from ``load_from`` trained from scratch, silently."""
    import argparse

    from mmengine.config import Config

    from genview_mm.apis.launch import apply_train_options
    work = tmp_path / 'work'
    args = argparse.Namespace(config='my_cfg.py', resume='auto', work_dir=str(work),
                              no_validate=False)
    cfg = apply_train_options(Config(dict(model=dict(), load_from='pretrained.pth')), args)
    assert (cfg.resume, cfg.load_from) == (False, 'pretrained.pth')
    cfg = apply_train_options(Config(dict(model=dict())), args)
    assert not cfg.resume and cfg.get('load_from') is None
    work.mkdir()
    (work / 'epoch_2.pth').write_bytes(b'x')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    cfg = apply_train_options(Config(dict(model=dict(), load_from='pretrained.pth')), args)
    assert (cfg.resume, cfg.load_from) == (True, str(work / 'epoch_2.pth'))
    args.resume = 'mine.pth'
    cfg = apply_train_options(Config(dict(model=dict(), load_from='pretrained.pth')), args)
    assert (cfg.resume, cfg.load_from) == (True, 'mine.pth')


@pytest.mark.parametrize('marker', ['empty', 'missing'])
def test_resume_refuses_to_start_afresh_over_a_runs_checkpoints(tmp_path, capsys, marker):
    """``--resume`` where ``last_checkpoint`` is empty (a kill or a full disk while MMEngine
    wrote it) or missing, beside the run's ``epoch_N.pth``: on main training started from
    scratch, exit 0, and overwrote epoch_2.pth .. epoch_4.pth. Now one line naming the newest
    checkpoint by number (epoch_10 after epoch_9), exit 2, every file as it was."""
    import torch

    from helpers import load_tool, run_script
    work = tmp_path / 'work'
    work.mkdir()
    for n in (2, 9, 10):  # whole files (zip archives, as torch.save writes them)
        torch.save({'meta': {'epoch': n}}, str(work / f'epoch_{n}.pth'))
    (work / 'best_accuracy_epoch_9.pth').write_bytes(b'not a resume point')
    if marker == 'empty':
        (work / 'last_checkpoint').write_text('\n')
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    code = load_tool('check_config').main([GENVIEW_TINY, '--resume', '--work-dir', str(work)])
    assert code == 2
    assert capsys.readouterr().err == (
        f'check_config.py: error: --resume: {work}/last_checkpoint is {marker}, but {work} '
        'holds 3 checkpoint(s) of a run that training afresh would overwrite: pass --resume '
        f'{work}/epoch_10.pth to continue from the newest, or another --work-dir to start '
        'over\n')
    with pytest.raises(SystemExit) as exit_:  # train.py: the same line, before any runner
        run_script('train.py', GENVIEW_TINY, '--resume', '--work-dir', work)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.startswith('train.py: error: --resume: ')
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before


def test_resume_refusal_names_the_newest_checkpoint_saved_whole(tmp_path, capsys):
    """The newest ``epoch_N.pth`` is cut short when the kill came during its save: the refusal
    named it as the one to resume from (the resume then failed in torch.load). Now it names the
    newest one whose save finished (a whole zip archive, as torch.save writes) and says why."""
    import io

    import torch

    from helpers import load_tool
    work = tmp_path / 'work'
    work.mkdir()
    for n in (2, 9, 10):
        buf = io.BytesIO()
        torch.save({'meta': {'epoch': n}, 'state_dict': {'w': torch.zeros(64)}}, buf)
        data = buf.getvalue()
        (work / f'epoch_{n}.pth').write_bytes(data if n < 10 else data[:len(data) // 2])
    assert load_tool('check_config').main([GENVIEW_TINY, '--resume', '--work-dir',
                                           str(work)]) == 2
    assert capsys.readouterr().err == (
        f'check_config.py: error: --resume: {work}/last_checkpoint is missing, but {work} '
        'holds 3 checkpoint(s) of a run that training afresh would overwrite: pass --resume '
        f'{work}/epoch_9.pth to continue from the newest saved whole (epoch_10.pth is cut '
        'short: a kill during a save), or another --work-dir to start over\n')
    # last_checkpoint naming a file that is gone (a kill after max_keep_ckpts deleted it and
    # before last_checkpoint was rewritten): the preflight said it is missing and to pass
    # --resume without a path, the option just used
    (work / 'last_checkpoint').write_text(str(work / 'epoch_8.pth'))
    assert load_tool('check_config').main([GENVIEW_TINY, '--resume', '--work-dir',
                                           str(work)]) == 2
    assert capsys.readouterr().err.startswith(
        f'check_config.py: error: --resume: {work}/last_checkpoint names {work}/epoch_8.pth, '
        f'which is not there, but {work} holds 3 checkpoint(s) of a run that training afresh '
        f'would overwrite: pass --resume {work}/epoch_9.pth to continue from the newest saved '
        'whole')
    # none saved whole (a kill during the first save): it named the cut file to resume from
    for n in (2, 9):
        os.remove(work / f'epoch_{n}.pth')
    os.remove(work / 'last_checkpoint')
    assert load_tool('check_config').main([GENVIEW_TINY, '--resume', '--work-dir',
                                           str(work)]) == 2
    assert capsys.readouterr().err == (
        f'check_config.py: error: --resume: {work}/last_checkpoint is missing, but {work} '
        'holds 1 checkpoint(s) of a run, none of them whole (each cut short: a kill during a '
        'save): delete them to start over, or pass another --work-dir\n')


def test_a_configs_resume_true_follows_the_resume_rules(tmp_path):
    """``resume=True`` in the config (or ``--cfg-options resume=True``) without ``load_from``:
    MMEngine's own search resumed a copied work dir from the original run's checkpoint (the
    path last_checkpoint names) and the preflight checked nothing. Now it is ``--resume``."""
    import argparse

    from mmengine.config import Config

    from genview_mm.apis.launch import ResumeRefused, apply_train_options
    original = tmp_path / 'run' / 'epoch_4.pth'
    original.parent.mkdir()
    original.write_bytes(b'the original run')
    copy = tmp_path / 'copy'
    copy.mkdir()
    (copy / 'epoch_4.pth').write_bytes(b'the copy')
    (copy / 'last_checkpoint').write_text(str(original))
    args = argparse.Namespace(config='my_cfg.py', resume=None, work_dir=str(copy),
                              no_validate=False)
    cfg = apply_train_options(Config(dict(model=dict(), resume=True)), args)
    assert (cfg.resume, cfg.load_from) == (True, str(copy / 'epoch_4.pth'))
    cfg = apply_train_options(Config(dict(model=dict(), resume=True, load_from='a.pth')), args)
    assert (cfg.resume, cfg.load_from) == (True, 'a.pth')  # a named file: MMEngine's rule
    (copy / 'last_checkpoint').unlink()
    with pytest.raises(ResumeRefused, match='last_checkpoint is missing'):
        apply_train_options(Config(dict(model=dict(), resume=True)), args)
    fresh = argparse.Namespace(config='my_cfg.py', resume=None, work_dir=str(tmp_path / 'new'),
                               no_validate=False)
    cfg = apply_train_options(Config(dict(model=dict(), resume=True)), fresh)
    assert not cfg.resume and cfg.get('load_from') is None  # nothing yet: starts afresh


def test_a_resumed_runs_config_dump_rerun_without_resume_is_refused(tmp_path, capsys):
    """A run with ``--resume`` dumps resume=True and load_from=<the checkpoint it resumed> into
    ``WORK_DIR/<config>.py``: ``train.py WORK_DIR/<config>.py`` resumed that checkpoint again
    (exit 0), trained the epochs after it once more and overwrote their checkpoints; in a copied
    work dir it resumed the original run's. Now one line naming both fixes, every file as it
    was; ``--resume`` continues from the newest, and the newest named is resumed as before."""
    import argparse

    from mmengine.config import Config

    from genview_mm.apis.launch import ResumeRefused, apply_train_options
    from helpers import load_tool, run_script
    work = tmp_path / 'work'
    work.mkdir()
    for n in (1, 2):
        torch.save({'meta': {'epoch': n}}, str(work / f'epoch_{n}.pth'))
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    dump = work / 'genview_mocov2_r18_tiny_cpu.py'
    cfg = load_config(GENVIEW_TINY)
    cfg.merge_from_dict(dict(resume=True, load_from=str(work / 'epoch_1.pth'),
                             work_dir=str(work)))
    cfg.dump(str(dump))
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    said = (f'{dump} holds resume=True and load_from={work}/epoch_1.pth (the config dump of a '
            f'run with --resume), but {work} has saved {work}/epoch_2.pth since: resuming '
            f'{work}/epoch_1.pth would train again from there and overwrite it; pass --resume '
            f'to continue from the newest, or --resume {work}/epoch_1.pth to go back to it\n')
    assert load_tool('check_config').main([str(dump), '--mode', 'train', '--quiet']) == 2
    assert capsys.readouterr().err == f'check_config.py: error: {said}'
    with pytest.raises(SystemExit) as exit_:  # before the preflight and any runner
        run_script('train.py', dump)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == f'train.py: error: {said}'
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before

    def applied(load_from, resume=None, config=str(dump)):
        args = argparse.Namespace(config=config, resume=resume, work_dir=None,
                                  no_validate=False)
        cfg = apply_train_options(Config(dict(model=dict(), resume=True, load_from=load_from,
                                              work_dir=str(work))), args)
        return cfg.resume, cfg.load_from
    newest = str(work / 'epoch_2.pth')
    assert applied(str(work / 'epoch_1.pth'), 'auto') == (True, newest)
    assert applied(str(work / 'epoch_1.pth'), str(work / 'epoch_1.pth')) == \
        (True, str(work / 'epoch_1.pth'))  # going back, by name
    assert applied(newest) == (True, newest)  # the dump of a run killed before its next save
    with pytest.raises(ResumeRefused, match=r'load_from=/elsewhere/run/epoch_2\.pth \(the '):
        applied('/elsewhere/run/epoch_2.pth')  # a copied work dir's dump: the original's file
    assert applied('a.pth', config=str(tmp_path / 'my_cfg.py')) == (True, 'a.pth')  # not a dump


def test_a_manifest_of_failed_rows_is_named_so(setup):
    """Every sampled image has only a failed row (a generation that ran out of memory): the
    preflight said the manifest belongs to another dataset and suggested genview.source_root;
    the keys match, the views failed. 2 of 6 failed: a NOTE that counts them."""
    import json
    with open(setup['manifest']) as f:
        rows = [json.loads(line) for line in f]
    oom = 'transient: generation failed: OutOfMemoryError: CUDA out of memory'

    def write(failed):
        with open(setup['manifest'], 'w') as f:
            for i, r in enumerate(rows):
                if i < failed:
                    r = dict(r, status='failed', output=None, reason=oom)
                f.write(json.dumps(r) + '\n')

    write(6)
    check = by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest']
    assert (check.status, check.detail) == (
        'BROKEN', f'{setup["manifest"]}: 7 rows; 0 of 6 sampled dataset images have a view; 6 '
        'have only failed rows (see their reason)')
    assert check.fix[0].startswith('run the same tools/generate_views.py command again: it '
                                   'retries the transient failures')
    write(2)
    check = by_what(run_preflight(pretraining_cfg(setup)))['GenView views manifest']
    assert check.status == 'note' and check.detail.endswith(
        '4 of 6 sampled dataset images have a view; 2 have only failed rows (see their reason)')


def test_auto_scale_lr_needs_the_configs_base_batch_size(tmp_path, capsys):
    """``--auto-scale-lr`` on a config without ``auto_scale_lr`` (SimCLR, SimSiam, SwAV, every
    linear probe) set ``enable`` in a throwaway dict: the run went on at the unscaled lr, exit 0.
    Now one line, exit 2, before any runner; with a base batch size it is enabled."""
    import argparse

    from mmengine.config import Config

    from genview_mm.apis.launch import OptionRefused, apply_train_options
    from helpers import load_tool, run_script
    args = argparse.Namespace(config='c.py', resume=None, work_dir=None, no_validate=False,
                              auto_scale_lr=True)
    with pytest.raises(OptionRefused, match='auto_scale_lr.base_batch_size=N'):
        apply_train_options(Config(dict(model=dict())), args)
    cfg = apply_train_options(Config(dict(auto_scale_lr=dict(base_batch_size=256))), args)
    assert cfg.auto_scale_lr == dict(base_batch_size=256, enable=True)
    work = str(tmp_path / 'work')
    without = ['--cfg-options', 'auto_scale_lr=None']  # as configs without the block
    assert load_tool('check_config').main([GENVIEW_TINY, '--auto-scale-lr', '--work-dir',
                                           work] + without) == 2
    assert capsys.readouterr().err.startswith(
        'check_config.py: error: --auto-scale-lr needs the batch size')
    with pytest.raises(SystemExit) as exit_:
        run_script('train.py', GENVIEW_TINY, '--auto-scale-lr', '--work-dir', work, *without)
    assert exit_.value.code == 2 and not osp.exists(work)
    assert capsys.readouterr().err.startswith('train.py: error: --auto-scale-lr needs')


@pytest.mark.parametrize('name, said', [
    ('convnext_base.clip_laion2b_augre', 'has no pretrained tag clip_laion2b_augre'),
    ('convnxt_base', 'is not a timm model')])
def test_a_misspelt_timm_scorer_is_a_broken_line_not_a_traceback(name, said):
    """A misspelt pretrained tag crashed the preflight itself (RuntimeError: Invalid pretrained
    tag) in check_config.py and train.py; an unknown model passed the check and failed later."""
    from genview_mm.apis.preflight.model_checks import check_scorer
    checks = check_scorer(dict(type='PairQualityScorer', pca_path='x.pth', encoder=dict(
        type='TimmPatchEncoder', model_name=name)))
    assert len(checks) == 1 and checks[0].status == 'BROKEN', checks
    assert said in checks[0].detail and name in checks[0].detail
    assert any('model.scorer.encoder.model_name' in line for line in checks[0].fix)


@pytest.mark.parametrize('encoder, said', [
    (dict(type='CLIPPatchEncoder', model_name='convnext_base'), 'needs pretrained (a name), '
     'got None'),
    (dict(type='TimmPatchEncoder', checkpoint_path='w.pth'), 'needs model_name (a name), got '
     'None'),
    (dict(type='CLIPPatchEncoder', pretrained=None), 'needs pretrained (a name), got None'),
    (dict(type='CLIPPatchEncoder', pretrained='openai/clip', input_sise=224,
          _scope_='genview_mm'), "takes no ['input_sise']")])
def test_an_encoder_dict_the_encoder_cannot_take_is_a_broken_line(encoder, said):
    """A timm dict whose type was switched to CLIPPatchEncoder (no 'pretrained'), a dict without
    its model name, or a setting the encoder does not take: tracebacks of check_config.py
    (TypeError, AttributeError), or OK and then the build's TypeError."""
    from genview_mm.apis.preflight.model_checks import check_scorer
    checks = check_scorer(dict(type='PairQualityScorer', pca_path='x.pth', encoder=encoder))
    assert len(checks) == 1 and checks[0].status == 'BROKEN', checks
    assert checks[0].detail == f"model.scorer.encoder ({encoder['type']}) {said}"
    assert checks[0].fix[0].startswith("remove ['input_sise'] from the encoder dict" if
                                       'input_sise' in encoder else
                                       f"fix the encoder dict: {encoder['type']} takes ")


def test_an_encoder_dicts_scope_is_the_builders(setup, tmp_path):
    """MODELS.build takes _scope_ out of a dict before the class sees it: a CLIP dict with one
    was 'takes no ['_scope_']', a timm dict's went to timm.create_model (a TypeError line)."""
    import timm

    from genview_mm.apis.preflight.model_checks import check_scorer
    checks = check_scorer(dict(pca_path=setup['pca'], encoder=dict(
        type='genview_mm.CLIPPatchEncoder', pretrained=setup['clip'], _scope_='genview_mm')))
    assert [c.status for c in checks] == ['ok', 'ok'], checks
    weights = str(tmp_path / 'r18.pth')
    torch.save(timm.create_model('resnet18', pretrained=False, num_classes=0).state_dict(),
               weights)
    pca = save_pca(str(tmp_path / 'r18_pca.pth'), 'resnet18', 512, (2, 2), 64)
    checks = check_scorer(dict(pca_path=pca, check_encoder=False, encoder=dict(
        type='TimmPatchEncoder', model_name='resnet18', checkpoint_path=weights, input_size=64,
        _scope_='genview_mm')))
    assert [c.status for c in checks] == ['ok', 'ok'], checks


def test_the_pca_fix_names_the_input_side_the_timm_encoder_takes(tmp_path):
    """Without input_size a timm encoder takes its pretrained config's side (160 px for
    resnet18.a3_in1k); the fix said --input-size 224, and the file it made was refused again."""
    import timm
    import torch

    from genview_mm.apis.preflight.model_checks import check_scorer
    weights = str(tmp_path / 'r18.pth')
    torch.save(timm.create_model('resnet18', pretrained=False, num_classes=0).state_dict(),
               weights)
    checks = check_scorer(dict(pca_path=str(tmp_path / 'none.pth'), encoder=dict(
        type='TimmPatchEncoder', model_name='resnet18.a3_in1k', checkpoint_path=weights)))
    assert checks[-1].status == 'MISSING', checks
    # a fit: no official vector was fitted for resnet18 (the import would be refused)
    from genview_mm.apis.preflight.data_checks import DEFAULT_TRAIN_IMAGES
    # with the scorer's weights file: without it the fit took timm's download (or failed
    # offline), and the file it made was refused again
    assert checks[-1].fix == [f'python tools/fit_foreground_pca.py {DEFAULT_TRAIN_IMAGES} '
                              '--per-folder --timm-model resnet18.a3_in1k --timm-checkpoint '
                              f"{weights} --input-size 160 --out {tmp_path / 'none.pth'}"]
    # the official vector's encoder: the import first, at 224 px only (at its pretrained
    # config's 256 px the import is refused: the fit then)
    from genview_mm.apis.preflight.model_checks import pca_fix
    spec = dict(type='TimmPatchEncoder', model_name='convnext_base.clip_laion2b_augreg')
    assert pca_fix(spec, 'p.pth', size=224)[0].startswith(
        'python tools/import_official_pca.py PCA_RESULTS/convnext_base_w_laion2b-s13k-b82k-'
        'augreg/eigenvecters/pca_vectors.npy --timm-model convnext_base.clip_laion2b_augreg '
        '--input-size 224 --out p.pth')
    assert pca_fix(spec, 'p.pth', size=256)[0].startswith(
        'python tools/fit_foreground_pca.py')
    own = dict(spec, checkpoint_path='my weights/cnx.bin')  # the import reads those weights
    assert ("--timm-model convnext_base.clip_laion2b_augreg --timm-checkpoint 'my weights/cnx.bin'"
            ' --input-size 224 --out p.pth') in pca_fix(own, 'p.pth', size=224)[0]


def test_test_mode_of_a_pretraining_config_is_broken(setup):
    """check_config.py CONFIG CKPT on a pretraining config said 'all prerequisites found'
    (exit 0), then test.py refused it: the preflight names what is missing."""
    checks = run_preflight(pretraining_cfg(setup), mode='test')
    broken = [c for c in checks if c.what == 'test settings']
    assert len(broken) == 1 and broken[0].status == 'BROKEN'
    assert 'has no test_dataloader, test_cfg, test_evaluator: it does not say how to test' in \
        broken[0].detail
    assert not preflight_passes(checks)


@pytest.mark.parametrize('text', ['x = 1\n', ''])
def test_a_config_that_says_nothing_to_train_is_broken(tmp_path, capsys, text):
    """check_config.py on a file without model or data (a wrong file; a _base_ that gave none)
    said 'all 0 prerequisites found' (exit 0, and --quiet nothing), then train.py stopped with
    a KeyError traceback."""
    from helpers import load_tool
    path = tmp_path / 'x1.py'
    path.write_text(text)
    assert load_tool('check_config').main([str(path), '--quiet']) == 2
    out = capsys.readouterr().out
    assert (f'BROKEN   train settings: {path} has no model, train_dataloader, train_cfg, '
            'optim_wrapper: it does not say what to train') in out, out
    from helpers import run_script
    with pytest.raises(SystemExit) as exc:  # without the preflight (other ranks, login nodes)
        run_script('train.py', path, '--skip-preflight', '--work-dir', tmp_path / 'w')
    assert exc.value.code == 2 and capsys.readouterr().err.startswith(
        f'train.py: error: {path} has no model, ')


def test_an_mmcv_optimizer_key_is_named(setup):
    """An MMCV 1.x config's 'optimizer' (MMEngine reads optim_wrapper.optimizer) was told it
    'does not say what to train'."""
    cfg = pretraining_cfg(setup)
    cfg.optimizer = cfg.optim_wrapper.optimizer
    cfg.optim_wrapper = None
    check = by_what(run_preflight(cfg))['train settings']
    assert check.status == 'BROKEN' and check.detail.endswith(
        'has optimizer but no optim_wrapper: MMEngine reads the optimizer from optim_wrapper = '
        "dict(optimizer=dict(...)) (MMCV 1.x's 'optimizer' key is not read): move it there")


def test_the_state_dict_check_builds_a_genview_model_without_a_false_warning(tmp_path,
                                                                              monkeypatch):
    """To compare a checkpoint, the preflight builds the model without its frozen scorer: the
    model then warned 'GenViewMoCo has no scorer: it trains the upstream loss', a warning
    meant for a config that lost its scorer, in the output of a config that has one."""
    import genview_mm.models.selfsup.genview_mixin as mixin
    said = []
    monkeypatch.setattr(mixin, 'print_log', lambda msg, *a, **k: said.append(msg))
    ckpt = str(tmp_path / 'x.pth')
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(8, 3, 7, 7)}}, ckpt)
    checks = run_preflight(load_config(GENVIEW_TINY, {'load_from': ckpt}))
    assert 'load_from checkpoint' in by_what(checks)
    assert not [m for m in said if 'has no scorer' in m], said
    assert "e.g. 'queue', 'queue_ptr'" in by_what(checks)[
        'load_from checkpoint'].detail  # the model was built and compared


def test_coco_images_named_by_the_json_must_be_in_the_image_folder(coco, tmp_path):
    """A COCO json whose file_names are not in data_prefix's folder (train2017/ given for the
    val json, or names with a folder the prefix repeats) passed: the folder held images. The
    first names the json gives are looked up now."""
    import json
    cfg = detection_cfg(coco)
    cfg.model.backbone.init_cfg = None
    key = 'CocoDataset data [train_dataloader.dataset]'
    assert by_what(run_preflight(cfg))[key].status == 'ok'
    with open(coco + 'annotations.json') as f:
        data = json.load(f)
    for image in data['images']:
        image['file_name'] = 'val2017/' + image['file_name']
    with open(coco + 'annotations.json', 'w') as f:
        json.dump(data, f)
    check = by_what(run_preflight(cfg))[key]
    first = data['images'][0]['file_name']
    assert (check.status, check.detail) == ('BROKEN', (
        f"none of the first 2 images named in {coco}annotations.json is in {coco}images/ "
        f"(e.g. {coco}images/{first}): point data_prefix.img at the folder its file_names "
        'are relative to'))
    # datasets that rewrite file_name as they read it (LVIS v0.5, Objects365 v2) are not judged
    from genview_mm.apis.preflight.data_checks import check_dataset
    ds = dict(cfg.train_dataloader.dataset, type='LVISV05Dataset')
    assert check_dataset('k', ds)[0].status == 'ok'


@pytest.mark.parametrize('path', ['modelzoo://resnet50', 'openmmlab://resnet50_v1c',
                                  'petrel://bucket/r50.pth', 'cluster1:s3://bucket/r50.pth',
                                  'pavi://model/r50', 'https://x.org/r50.pth'])
def test_every_checkpoint_address_mmengine_downloads_is_a_note(path):
    """MMEngine's CheckpointLoader reads these; all but https were 'MISSING ... not found',
    with a convert_checkpoint command as the fix."""
    from genview_mm.apis.preflight.checkpoint_checks import check_checkpoint
    check = check_checkpoint('pretrained weights', path, 'model.backbone.init_cfg.checkpoint')
    assert (check.status, check.detail) == ('note', f'{path} is downloaded when the run starts')


def test_skip_preflight_still_names_a_checkpoint_to_resume_that_is_cut_short(tmp_path, capsys):
    """``--skip-preflight`` (the README's advice on a Slurm login node; the launchers pass it to
    their ranks) with a resume file cut short by a kill, or gone: a PytorchStreamReader or
    FileNotFoundError traceback from every rank. Now one line, exit 2, before any runner."""
    from helpers import run_script
    torch.save({'state_dict': {'w': torch.zeros(1000)}}, str(tmp_path / 'whole.pth'))
    data = (tmp_path / 'whole.pth').read_bytes()
    (tmp_path / 'epoch_2.pth').write_bytes(data[:len(data) // 2])
    for name, said in (('epoch_2.pth', 'is not a PyTorch checkpoint: it is a truncated or '
                        'damaged zip archive'), ('gone.pth', 'does not exist')):
        with pytest.raises(SystemExit) as exc:
            run_script('train.py', GENVIEW_TINY, '--resume', tmp_path / name, '--skip-preflight',
                       '--work-dir', tmp_path / 'work')
        err = capsys.readouterr().err
        assert exc.value.code == 2 and err.startswith('train.py: error: --resume: ') and \
            said in err and err.count('\n') == 1, err
    assert not (tmp_path / 'work').exists()


def test_a_checkpoint_refused_by_weights_only_says_why(tmp_path):
    """A checkpoint pickling an object (DINO's and many repositories' argparse.Namespace of
    arguments) or saved with pickle protocol 3+ was BROKEN with torch's first line only: 'Weights
    only load failed. This file can still be loaded, to do so you have two options, <ANSI bold>do
    those steps only if you trust ...' (the options cut off, the reason never said). The check
    says what read_checkpoint and convert_checkpoint say."""
    import argparse

    from genview_mm.apis.preflight.checkpoint_checks import check_checkpoint
    from genview_mm.evaluation.checkpoint_io import CheckpointError, read_checkpoint
    weights = {'state_dict': {'backbone.w': torch.ones(2)}}
    torch.save(dict(weights, args=argparse.Namespace(arch='resnet50')), str(tmp_path / 'ns.pth'))
    torch.save(weights, str(tmp_path / 'p4.pth'), pickle_protocol=4)
    for name, reason in (('ns.pth', 'was refused by weights_only loading: it pickles '
                          'argparse.Namespace.'),
                         ('p4.pth', 'saved with a pickle protocol that weights_only loading '
                          'cannot read')):
        path = str(tmp_path / name)
        check = check_checkpoint('pretrained weights', path, 'model.backbone.init_cfg.checkpoint')
        with pytest.raises(CheckpointError) as exc:
            read_checkpoint(path)
        assert check.status == 'BROKEN' and reason in check.detail, check.detail
        assert check.detail == str(exc.value) and '\x1b' not in check.detail


def test_images_read_through_a_path_mapping_backend_are_not_looked_up_locally(tmp_path, coco):
    """A loading step (or an MMDetection dataset or metric) with petrel-style ``backend_args``
    reads plain, local-looking paths from an object store (``path_mapping``): the preflight
    looked them up on the local disk and refused a run that trains (BROKEN: none of the sampled
    images exists; MISSING: the COCO folder and annotation file)."""
    linear = osp.join(ROOT, 'configs', 'benchmarks',
                      'genview_mocov2_r50_linear-steplr-100e_in1k.py')
    root = tmp_path / 'imagenet'  # the lists here, the images in the store only
    (root / 'meta').mkdir(parents=True)
    (root / 'meta' / 'train.txt').write_text('n01/img_0000.jpg 0\nn01/img_0001.jpg 0\n')
    cfg = load_config(linear, {'train_dataloader.dataset.data_root': str(root),
                               'model.backbone.init_cfg': None})
    petrel = dict(backend='petrel', path_mapping={f'{root}/': 's3://bucket/imagenet/'})
    cfg.train_dataloader.dataset.pipeline[0].backend_args = petrel
    check = by_what(run_preflight(cfg))['ImageNet (train) data [train_dataloader.dataset]']
    assert check.status == 'note' and 'read through the petrel storage backend' in \
        check.detail, check
    cfg = detection_cfg('data/nowhere/')
    cfg.model.backbone.init_cfg = None
    petrel = dict(backend='petrel', path_mapping={'data/': 's3://bucket/'})
    for name in ('train', 'val', 'test'):
        cfg[f'{name}_dataloader'].dataset.backend_args = petrel
    cfg.val_evaluator.backend_args = cfg.test_evaluator.backend_args = petrel
    checks = by_what(run_preflight(cfg))
    assert checks['CocoDataset data [train_dataloader.dataset]'].status == 'note'
    assert checks['CocoMetric annotations [val_evaluator]'].status == 'note'


def test_a_folder_given_as_the_checkpoint_to_test_is_named_a_folder(tmp_path):
    """tools/test.py CONFIG WORK_DIR: the preflight (run before the loader) said 'WORK_DIR not
    found', which misled (the folder is there) and named no file; it now says it is a folder
    and names the checkpoint in it, as check_torch_file does (53bcc93)."""
    from genview_mm.apis.preflight.checkpoint_checks import check_checkpoint
    work_dir = tmp_path / 'genview_mocov2_r50_in1k'
    work_dir.mkdir()
    torch.save({'state_dict': {}}, str(work_dir / 'epoch_3.pth'))
    check = check_checkpoint('checkpoint to test', str(work_dir), 'CHECKPOINT')
    assert check.status == 'BROKEN' and check.detail == (
        f'{work_dir} is a folder, not a file: give a checkpoint file, e.g. '
        f'{work_dir / "epoch_3.pth"}')
