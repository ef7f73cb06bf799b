"""genview_mm.evaluation.convert: round trip, torchvision and detectron2 naming, refusals, and
tools/convert_checkpoint.py's choice of format."""
import os
import pickle
import pickletools
import re

import numpy as np
import pytest
import torch
import torchvision
from mmengine.logging import MessageHub
from mmpretrain.registry import MODELS

from genview_mm.evaluation.convert import (
    NoBackboneError,
    convert_checkpoint,
    detectron2_name,
    extract_backbone,
    load_state_dict,
)
from helpers import run_script, save_backbone_checkpoint


def tiny_moco(depth: int = 18):
    return MODELS.build(dict(
        type='MoCo', queue_len=16, feat_dim=8, momentum=0.01,
        backbone=dict(type='ResNet', depth=depth, norm_cfg=dict(type='BN')),
        neck=dict(type='MoCoV2Neck', in_channels=512 if depth < 50 else 2048, hid_channels=16,
                  out_channels=8, with_avg_pool=True),
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2)))


@pytest.fixture(scope='module')
def moco_ckpt(tmp_path_factory):
    """A runner-style checkpoint (state_dict + meta with a message hub) of a perturbed MoCo."""
    torch.manual_seed(0)
    model = tiny_moco()
    with torch.no_grad():  # make BN statistics and weights distinctive
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.add_(torch.randn_like(t) * 0.1)
    hub = MessageHub.get_instance('convert_test')
    hub.update_scalar('train/loss', 1.5)
    path = str(tmp_path_factory.mktemp('ckpt') / 'epoch_1.pth')
    torch.save({'meta': {'epoch': 1, 'iter': 3}, 'state_dict': model.state_dict(),
                'message_hub': hub.state_dict(), 'optimizer': {}}, path)
    return path, model


def test_mmpretrain_format_round_trip(moco_ckpt, tmp_path):
    path, model = moco_ckpt
    dst = str(tmp_path / 'backbone.pth')
    convert_checkpoint(path, dst, 'mmpretrain')
    saved = torch.load(dst, map_location='cpu', weights_only=True)
    state = saved['state_dict']
    expected = model.backbone.state_dict()
    assert set(state) == {'backbone.' + k for k in expected}
    for k, v in expected.items():
        assert torch.equal(state['backbone.' + k], v), k
    # loads into a fresh backbone through the same init_cfg the configs use
    fresh = MODELS.build(dict(type='ResNet', depth=18, init_cfg=dict(
        type='Pretrained', checkpoint=dst, prefix='backbone.')))
    fresh.init_weights()
    for k, v in expected.items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_torchvision_format_loads_into_resnet(moco_ckpt, tmp_path):
    path, model = moco_ckpt
    dst = str(tmp_path / 'tv.pth')
    convert_checkpoint(path, dst, 'torchvision')
    sd = torch.load(dst, map_location='cpu', weights_only=True)
    net = torchvision.models.resnet18()
    result = net.load_state_dict(sd, strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == ['fc.bias', 'fc.weight']
    assert torch.equal(net.layer3[1].bn2.running_var, model.backbone.layer3[1].bn2.running_var)
    # and into a torchvision ResNet-50 from a ResNet-50 checkpoint (the paper's backbone)
    model50 = tiny_moco(50)
    torch.save({'state_dict': model50.state_dict()}, str(tmp_path / 'r50.pth'))
    sd50 = convert_checkpoint(str(tmp_path / 'r50.pth'), str(tmp_path / 'tv50.pth'), 'torchvision')
    res50 = torchvision.models.resnet50().load_state_dict(sd50, strict=False)
    assert res50.unexpected_keys == [] and sorted(res50.missing_keys) == ['fc.bias', 'fc.weight']


def test_detectron2_format(moco_ckpt, tmp_path):
    path, model = moco_ckpt
    dst = str(tmp_path / 'd2.pkl')
    convert_checkpoint(path, dst, 'detectron2')
    with open(dst, 'rb') as f:  # numpy < 1.26.1 (detectron2 setups) has no numpy._core
        names = {arg for op, arg, _ in pickletools.genops(f) if op.name == 'GLOBAL'}
    assert 'numpy.core.multiarray _reconstruct' in names, names
    assert not any(n.startswith('numpy._core') for n in names), names
    with open(dst, 'rb') as f:
        out = pickle.load(f)
    assert out['__author__'] == 'genview_mm' and out['matching_heuristics'] is True
    names = set(out['model'])
    for name in ('stem.conv1.weight', 'stem.conv1.norm.running_mean', 'res2.0.conv1.weight',
                 'res2.1.conv2.norm.bias', 'res3.0.shortcut.weight',
                 'res3.0.shortcut.norm.running_var', 'res5.1.conv2.weight'):
        assert name in names, name
    assert not any('num_batches_tracked' in n or 'layer' in n or 'bn' in n for n in names)
    arr = out['model']['res4.0.conv2.norm.weight']
    assert isinstance(arr, np.ndarray)
    np.testing.assert_array_equal(arr, model.backbone.layer3[0].bn2.weight.detach().numpy())
    assert detectron2_name('layer1.0.downsample.1.weight') == 'res2.0.shortcut.norm.weight'
    assert detectron2_name('bn1.bias') == 'stem.conv1.norm.bias'


def test_a_bfloat16_checkpoint_converts_to_detectron2(moco_ckpt, tmp_path):
    """numpy has no bfloat16: the detectron2 pickle of a bf16 checkpoint was a TypeError
    traceback. Its weights go in as float32 (detectron2 loads them so)."""
    path, model = moco_ckpt
    state = torch.load(path, weights_only=False)['state_dict']
    half = {k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in state.items()}
    torch.save({'state_dict': half}, str(tmp_path / 'bf16.pth'))
    convert_checkpoint(str(tmp_path / 'bf16.pth'), str(tmp_path / 'd2.pkl'), 'detectron2')
    with open(tmp_path / 'd2.pkl', 'rb') as f:
        arr = pickle.load(f)['model']['res4.0.conv2.weight']
    assert arr.dtype == np.float32
    np.testing.assert_array_equal(arr, half['backbone.layer3.0.conv2.weight'].float().numpy())


def test_refuses_checkpoint_without_backbone(tmp_path):
    path = str(tmp_path / 'head_only.pth')
    torch.save({'state_dict': {'head.fc.weight': torch.zeros(2, 2),
                               'neck.mlp.weight': torch.zeros(2)}}, path)
    with pytest.raises(NoBackboneError, match=r'no "backbone\.\*" weights.*head.*neck'):
        convert_checkpoint(path, str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()
    with pytest.raises(FileNotFoundError):
        load_state_dict(str(tmp_path / 'missing.pth'))


def test_refuses_a_detector_and_reads_a_model_key(moco_ckpt, tmp_path):
    """A Mask R-CNN checkpoint converted silently (a C4 one without res5); a ``{'model': ...}``
    file was said to hold no backbone weights."""
    from genview_mm.evaluation.checkpoint_io import CheckpointError
    path, _ = moco_ckpt
    state = torch.load(path, weights_only=False)['state_dict']
    c4 = {k: v for k, v in state.items() if k.startswith('backbone.') and 'layer4' not in k}
    c4['roi_head.shared_head.layer4.0.conv1.weight'] = torch.zeros(2, 2, 1, 1)
    c4['rpn_head.rpn_conv.weight'] = torch.zeros(2, 2, 3, 3)
    torch.save({'state_dict': c4}, str(tmp_path / 'det.pth'))
    with pytest.raises(CheckpointError, match=r'det\.pth is a detector checkpoint '
                       r'\(roi_head, rpn_head\): convert the self-supervised pretraining'):
        convert_checkpoint(str(tmp_path / 'det.pth'), str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()
    torch.save({'model': state}, str(tmp_path / 'model_key.pth'))
    out = convert_checkpoint(str(tmp_path / 'model_key.pth'), str(tmp_path / 'out.pth'))
    assert sorted(out['state_dict']) == sorted(k for k in state if k.startswith('backbone.'))


def test_vit_backbone_mmpretrain_only(tmp_path):
    vit = MODELS.build(dict(type='MoCoV3ViT', img_size=32, patch_size=16, arch=dict(
        embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)))
    path = save_backbone_checkpoint(vit, str(tmp_path / 'vit.pth'))
    out = convert_checkpoint(path, str(tmp_path / 'vit_mm.pth'), 'mmpretrain')
    assert len(out['state_dict']) == len(vit.state_dict())
    with pytest.raises(ValueError, match='ResNet backbones'):
        convert_checkpoint(path, str(tmp_path / 'vit_tv.pth'), 'torchvision')


def test_extract_backbone_skips_momentum_encoder():
    state = {'backbone.conv1.weight': torch.ones(1), 'target_net.0.conv1.weight': torch.zeros(1),
             'momentum_encoder.module.0.conv1.weight': torch.zeros(1)}
    assert list(extract_backbone(state)) == ['conv1.weight']


def test_prefix_without_its_dot_names_the_module(moco_ckpt, tmp_path):
    """``--prefix backbone`` kept a leading dot in every converted name
    (``backbone..conv1.weight``: nothing fits the model) and took in ``backbone_k.*``."""
    path, model = moco_ckpt
    state = torch.load(path, weights_only=False)['state_dict']
    state['backbone_k.conv1.weight'] = torch.zeros(1)  # a sibling module, not the backbone
    torch.save({'state_dict': state}, str(tmp_path / 'with_sibling.pth'))
    for fmt in ('mmpretrain', 'torchvision'):
        out = convert_checkpoint(str(tmp_path / 'with_sibling.pth'), str(tmp_path / f'{fmt}.pth'),
                                 fmt, prefix='backbone')
        names = set(out['state_dict'] if fmt == 'mmpretrain' else out)
        head = 'backbone.' if fmt == 'mmpretrain' else ''
        assert names == {head + k for k in model.backbone.state_dict()}, fmt
    assert list(extract_backbone({'encoder_q.0.conv1.weight': torch.ones(1),
                                  'encoder_q.1.fc.weight': torch.ones(1)}, 'encoder_q.0')) == \
        ['conv1.weight']
    # a DDP checkpoint's prefix as its keys spell it: the reader drops 'module.' from the keys,
    # and the prefix was then said to name nothing
    ddp = {'module.' + k: v for k, v in state.items()}
    torch.save({'state_dict': ddp}, str(tmp_path / 'ddp.pth'))
    out = convert_checkpoint(str(tmp_path / 'ddp.pth'), str(tmp_path / 'ddp_out.pth'),
                             'mmpretrain', prefix='module.backbone.')
    assert set(out['state_dict']) == {'backbone.' + k for k in model.backbone.state_dict()}


def test_an_empty_prefix_of_a_whole_model_is_refused(moco_ckpt, tmp_path):
    """``--prefix ''`` on a pretraining checkpoint kept every tensor (neck, momentum encoder,
    backbone) under a second ``backbone.`` (``backbone.backbone.conv1.weight``): the file loaded
    nothing into a model, whose backbone then trained from random weights with a warning. A
    bare backbone (no module names) still converts with it."""
    path, model = moco_ckpt
    with pytest.raises(NoBackboneError, match=r"^--prefix '' takes every tensor of .*, which "
                       r"holds a whole model \('backbone'.*\): pass --prefix backbone"):
        convert_checkpoint(path, str(tmp_path / 'out.pth'), 'mmpretrain', prefix='')
    assert not (tmp_path / 'out.pth').exists()
    bare = str(tmp_path / 'bare.pth')
    torch.save(model.backbone.state_dict(), bare)
    out = convert_checkpoint(bare, str(tmp_path / 'out.pth'), 'mmpretrain', prefix='')
    assert set(out['state_dict']) == {'backbone.' + k for k in model.backbone.state_dict()}
    with_head = dict(model.backbone.state_dict(), **{'head.weight': torch.zeros(2, 2)})
    torch.save(with_head, bare)  # a bare timm backbone has a top-level head: still converts
    out = convert_checkpoint(bare, str(tmp_path / 'out.pth'), 'mmpretrain', prefix='')
    assert 'backbone.head.weight' in out['state_dict']


def test_cli_picks_detectron2_for_pkl(moco_ckpt, tmp_path, capsys):
    run_script('convert_checkpoint.py', moco_ckpt[0], tmp_path / 'r18.pkl')
    assert '(detectron2 format)' in capsys.readouterr().out
    with open(tmp_path / 'r18.pkl', 'rb') as f:
        assert 'res5.1.conv2.norm.weight' in pickle.load(f)['model']


def test_a_rerun_replaces_its_own_output_under_the_other_formats_extension(moco_ckpt,
                                                                          tmp_path, capsys):
    """A detectron2 file written to a .pth name (or an mmpretrain one to .pkl) was read by the
    wrong reader on the rerun and refused as 'not backbone weights (written by genview_mm)'."""
    for _ in range(2):
        run_script('convert_checkpoint.py', moco_ckpt[0], tmp_path / 'mm.pkl', '--format',
                   'mmpretrain')
    assert '(mmpretrain format)' in capsys.readouterr().out
    (tmp_path / 'user.pth').write_bytes(pickle.dumps({'model': {}}))  # not ours: kept
    with pytest.raises(SystemExit) as refused:
        run_script('convert_checkpoint.py', moco_ckpt[0], tmp_path / 'user.pth')
    assert refused.value.code == 2
    assert 'user.pth exists and is not backbone weights' in capsys.readouterr().err
    assert pickle.loads((tmp_path / 'user.pth').read_bytes()) == {'model': {}}


def test_pretraining_normalisation_reads_config_text_without_running_it(tmp_path):
    from genview_mm.evaluation.checkpoint_io import (
        matches_transfer_normalisation,
        normalisation_options,
        pretraining_normalisation,
    )
    marker = tmp_path / 'ran'
    text = (f"import os\nos.system('touch {marker}')\n"
            "data_preprocessor = dict(mean=[1.0, 2.0, 3.0], std=[4, 5, 6], to_rgb=True)\n"
            "model = dict(type='MoCoV3', data_preprocessor=dict(\n"
            "    mean=[122.7709383, 116.7460125, 104.09373615], std=[68.5, 66.63, 70.32],\n"
            "    bgr_to_rgb=True))\n")
    norm = pretraining_normalisation(text)  # the model's own preprocessor wins, as in MMEngine
    assert norm == dict(mean=[122.7709383, 116.7460125, 104.09373615], std=[68.5, 66.63, 70.32],
                        to_rgb=True)
    assert not marker.exists()
    assert matches_transfer_normalisation(norm)  # the official configs' CLIP values
    assert not matches_transfer_normalisation(dict(norm, std=[58.395, 57.12, 57.375]))
    assert normalisation_options(norm) == (
        'data_preprocessor.mean="[122.7709383,116.7460125,104.0937361]" '
        'data_preprocessor.std="[68.5,66.63,70.32]" data_preprocessor.to_rgb=True')
    top = pretraining_normalisation(
        "data_preprocessor = {'mean': (123.675, 116.28, 103.53), 'std': (58.395, 57.12, 57.375)}")
    assert top['to_rgb'] is False and not matches_transfer_normalisation(top)  # BGR, ImageNet
    assert not matches_transfer_normalisation(dict(top, to_rgb=True))  # ImageNet's mean/std
    for bad in ('', None, 'model = dict(type="X")', 'data_preprocessor = dict(mean=m, std=s)',
                'def broken(:', 'data_preprocessor = dict(mean=None, std=None)',  # a traceback
                'data_preprocessor = dict(mean=127.5, std=127.5)',  # in the converter, and
                "data_preprocessor = dict(mean=['a'], std=[1])"):  # in the preflight
        assert pretraining_normalisation(bad) is None


@pytest.mark.parametrize('fmt', ['mmpretrain', 'detectron2', 'torchvision'])
def test_cli_replaces_only_its_own_output(moco_ckpt, tmp_path, capsys, fmt):
    """An existing dst that this tool did not write (here another epoch's training checkpoint)
    is refused in one line, exit 2, byte for byte as it was: on main it was replaced by the
    backbone weights, and the heads, optimizer and progress were lost. A backbone file the tool
    wrote is replaced by a rerun; a torchvision one (no mark) and the rest with --overwrite."""
    ext = '.pkl' if fmt == 'detectron2' else '.pth'
    other = tmp_path / f'epoch_3{ext}'
    torch.save({'meta': {'epoch': 3}, 'state_dict': {'head.w': torch.ones(2)}}, str(other))
    before = other.read_bytes()
    cmd = [moco_ckpt[0], other, '--format', fmt]
    with pytest.raises(SystemExit) as exit_:
        run_script('convert_checkpoint.py', *cmd)
    assert exit_.value.code == 2 and other.read_bytes() == before
    err = capsys.readouterr().err.strip()
    assert err == (f'convert_checkpoint.py: error: {other} exists and is not backbone weights '
                   f'(written by genview_mm): writing would replace it and its {len(before)} '
                   'bytes would be lost; pass --overwrite to replace it, or choose another path')
    run_script('convert_checkpoint.py', *cmd, '--overwrite')
    assert other.read_bytes() != before
    if fmt == 'torchvision':
        with pytest.raises(SystemExit) as refused:
            run_script('convert_checkpoint.py', *cmd)
        assert refused.value.code == 2 and 'pass --overwrite' in capsys.readouterr().err
    else:  # a rerun (after more training, say) replaces the tool's own file
        os.utime(other, (0, 0))
        run_script('convert_checkpoint.py', *cmd)
        assert os.stat(other).st_mtime > 0


def test_torchvision_and_detectron2_outputs_say_how_to_normalise(moco_ckpt, tmp_path, capsys):
    """Those libraries default to ImageNet's mean/std (detectron2: caffe BGR); GenView
    pretrains on CLIP's, RGB. Only the mmpretrain format kept the pretraining normalisation
    and only it could print a note, so a torchvision or detectron2 user got no word of it."""
    path, model = moco_ckpt
    ckpt = torch.load(path, weights_only=False)
    clip = dict(mean=[122.7709383, 116.7460125, 104.09373615],
                std=[68.5005327, 66.6321579, 70.32316305], to_rgb=True)
    ckpt['meta']['cfg'] = (f"model = dict(type='MoCo', data_preprocessor=dict(mean={clip['mean']}"
                           f", std={clip['std']}, to_rgb=True))\n")
    with_cfg = str(tmp_path / 'with_cfg.pth')
    torch.save(ckpt, with_cfg)
    for fmt, dst, expected in (
            ('torchvision', 'tv.pth', 'use transforms.Normalize(mean=[0.481455, 0.457827, '
             '0.408211], std=[0.26863, 0.261303, 0.275777]) on RGB images in [0, 1]'),
            ('detectron2', 'd2.pkl', 'use MODEL.PIXEL_MEAN [122.771, 116.746, 104.094] '
             'MODEL.PIXEL_STD [68.5005, 66.6322, 70.3232] INPUT.FORMAT RGB '
             'MODEL.RESNETS.STRIDE_IN_1X1 False (a pytorch-style ResNet: detectron2\'s default '
             'True moves the stride to the 1x1 conv)')):
        run_script('convert_checkpoint.py', with_cfg, tmp_path / dst, '--format', fmt)
        note = capsys.readouterr().out.splitlines()[-1]
        assert note == ('note: this backbone was pretrained on inputs normalised with '
                        'mean=[122.771, 116.746, 104.094] std=[68.5005, 66.6322, 70.3232] (RGB, '
                        f'0-255), not the ImageNet defaults of {fmt}: {expected}')
    with open(tmp_path / 'd2.pkl', 'rb') as f:
        assert pickle.load(f)['pretrain_normalisation'] == clip
    # pretrained with ImageNet's own mean/std: it said "not the ImageNet defaults" of them
    ckpt['meta']['cfg'] = ("model = dict(type='MoCo', data_preprocessor=dict(mean=[123.675, "
                           "116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True))\n")
    torch.save(ckpt, tmp_path / 'imagenet_norm.pth')
    run_script('convert_checkpoint.py', tmp_path / 'imagenet_norm.pth', tmp_path / 'tv3.pth',
               '--format', 'torchvision')
    assert capsys.readouterr().out.splitlines()[-1] == (
        'note: this backbone was pretrained on inputs normalised with mean=[123.675, 116.28, '
        '103.53] std=[58.395, 57.12, 57.375] (RGB, 0-255), the ImageNet defaults of torchvision: '
        'use transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]) on RGB '
        'images in [0, 1]')
    run_script('convert_checkpoint.py', path, tmp_path / 'tv2.pth', '--format', 'torchvision')
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        'note: the checkpoint records no config; GenView pretrains on inputs normalised with '
        'mean=[122.771, 116.746, 104.094]')
    run_script('convert_checkpoint.py', with_cfg, tmp_path / 'mm.pth')  # the configs match
    assert 'note' not in capsys.readouterr().out
    run_script('convert_checkpoint.py', path, tmp_path / 'mm0.pth')  # no config: said (it
    assert capsys.readouterr().out.splitlines()[-1] == (  # was the one format without a word)
        'note: the checkpoint records no config, so the input normalisation it was pretrained '
        'with is unknown; configs/benchmarks and configs/detection use the CLIP mean/std of '
        "GenView's pretraining: if yours differed, set data_preprocessor.mean/.std (detection: "
        'model.data_preprocessor.mean/.std) in --cfg-options')
    # a converted file converted again keeps what it records (it has no config: the record
    # was dropped, the note said 'records no config', and the preflight then checked nothing)
    run_script('convert_checkpoint.py', tmp_path / 'mm.pth', tmp_path / 'mm2.pth')
    again = torch.load(tmp_path / 'mm2.pth', weights_only=False)
    assert again['meta']['pretrain_normalisation'] == clip
    run_script('convert_checkpoint.py', tmp_path / 'mm.pth', tmp_path / 'd2b.pkl', '--format',
               'detectron2')
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        'note: this backbone was pretrained on inputs normalised with mean=[122.771, ')


def test_a_detectron2_file_must_be_named_pkl(moco_ckpt, tmp_path, capsys):
    """``--format detectron2`` to ``d2.pth`` wrote a pickle that detectron2 hands to torch.load
    (only a ``.pkl`` name is read as its pickle format): 'Invalid magic number' at training."""
    with pytest.raises(SystemExit) as exc:
        run_script('convert_checkpoint.py', moco_ckpt[0], tmp_path / 'd2.pth', '--format',
                   'detectron2')
    assert exc.value.code == 2 and not (tmp_path / 'd2.pth').exists()
    assert capsys.readouterr().err == (
        f'convert_checkpoint.py: error: {tmp_path / "d2.pth"}: detectron2 reads a file as its '
        'pickle format only when the name ends in .pkl (any other name goes to torch.load, '
        'which fails on it): name the output .pkl\n')


def test_the_function_refuses_to_write_over_its_source(moco_ckpt, tmp_path):
    """Only the tool checked it: convert_checkpoint(p, p), exported from genview_mm.evaluation,
    replaced a training checkpoint by its backbone weights (heads, optimizer and progress
    gone)."""
    import shutil
    src = str(tmp_path / 'train.pth')
    shutil.copyfile(moco_ckpt[0], src)
    before = open(src, 'rb').read()
    os.symlink(src, str(tmp_path / 'link.pth'))
    for dst in (src, str(tmp_path / 'link.pth')):
        with pytest.raises(ValueError, match=r'is the input checkpoint .* \(the same file\): '
                           'converting would replace it by its backbone weights'):
            convert_checkpoint(src, dst)
    assert open(src, 'rb').read() == before


def test_a_nested_checkpoint_names_its_keys(moco_ckpt, tmp_path):
    """{'student': ..., 'teacher': ...} (DINO) got 'top-level names found: none' and a --prefix
    hint that cannot reach inside a nested dict."""
    from genview_mm.evaluation.checkpoint_io import CheckpointError
    state = torch.load(moco_ckpt[0], weights_only=False)['state_dict']
    src = str(tmp_path / 'dino.pth')
    torch.save({'student': state, 'teacher': state, 'epoch': 3}, src)
    with pytest.raises(CheckpointError, match=re.escape(
            f"{src} holds no tensors at its top level or under state_dict/model; its top-level "
            f"keys are ['student', 'teacher']: save the model you mean as a flat state dict "
            f"first, e.g. torch.save(torch.load('{src}')['student'], 'flat.pth')")):
        convert_checkpoint(src, str(tmp_path / 'out.pth'))
    assert not (tmp_path / 'out.pth').exists()


def test_a_prefix_naming_a_momentum_encoder_is_refused_with_its_backbone_prefix(moco_ckpt,
                                                                              tmp_path):
    """``--prefix encoder_k`` (MoCo v2's momentum encoder; ``momentum_encoder``/``target_net``
    for MoCo v3/BYOL) wrote 125 tensors named ``backbone.module.0.*``/``module.1.*`` (backbone
    and neck inside MMEngine's EMA wrapper) with exit 0: init_cfg loaded none of them, and the
    probe trained on a random backbone with only a warning. The backbone's prefix is named."""
    path, model = moco_ckpt
    with pytest.raises(NoBackboneError, match=r'--prefix encoder_k names a momentum encoder .*'
                       r'Pass --prefix encoder_k\.module\.0 for its backbone'):
        convert_checkpoint(path, str(tmp_path / 'k.pth'), 'mmpretrain', prefix='encoder_k')
    # one level down (the wrapper's module, a Sequential of backbone and neck): it wrote
    # backbone.0.*/backbone.1.* with exit 0
    with pytest.raises(NoBackboneError, match=r'--prefix encoder_k\.module names a momentum '
                       r'encoder .*\(an EMA wrapper: encoder_k\.module\.0\.\* its backbone, '
                       r'1\.\* its neck\).*Pass --prefix encoder_k\.module\.0 for its backbone'):
        convert_checkpoint(path, str(tmp_path / 'k.pth'), 'mmpretrain', prefix='encoder_k.module')
    assert not (tmp_path / 'k.pth').exists()
    out = convert_checkpoint(path, str(tmp_path / 'k.pth'), 'mmpretrain',
                             prefix='encoder_k.module.0')
    assert set(out['state_dict']) == {'backbone.' + k for k in model.backbone.state_dict()}
