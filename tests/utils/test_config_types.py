"""A config's ``type`` spelt any way MMEngine builds it: a name, a scoped name
(``'mmpretrain.Name'``) or the class itself (new-style configs). The config rules that look
for a type used to compare the plain name only, so a scoped or class spelling was missed:
``genview`` settings refused as 'no GenViewPairDataset', a head wrapped twice, SyncBN and
AmpOptimWrapper left in place on CPU, an extra set or a Pretrained init not found."""
import pytest
from mmengine.config import Config
from mmpretrain.datasets import CustomDataset

from genview_mm.apis.genview_settings import apply_genview_settings
from genview_mm.apis.launch import prepare_cfg, replace_sync_bn
from genview_mm.apis.preflight.checklist import NOTE
from genview_mm.apis.preflight.checkpoint_checks import iter_pretrained
from genview_mm.apis.preflight.data_checks import extra_images_key
from genview_mm.apis.preflight.model_checks import check_scorer
from genview_mm.datasets.transforms.genview_pair import GenViewPairDataset
from genview_mm.engine.hooks import GenViewPairHook
from genview_mm.models.encoders import TimmPatchEncoder
from genview_mm.models.heads import QualityDrivenContrastiveHead
from genview_mm.models.selfsup.genview_mixin import wrap_head
from genview_mm.utils.config_keys import type_name


def spellings(cls):
    return [cls.__name__, f'mmpretrain.{cls.__name__}', cls]


def test_type_name_reads_every_spelling():
    assert [type_name(dict(type=t)) for t in spellings(CustomDataset)] == ['CustomDataset'] * 3
    assert type_name(dict(x=1)) == '' and type_name(None) == '' and type_name('a') == ''


@pytest.mark.parametrize('pair', spellings(GenViewPairDataset))
@pytest.mark.parametrize('hook', spellings(GenViewPairHook))
def test_genview_settings_reach_a_pair_transform_however_spelt(pair, hook):
    cfg = Config(dict(genview=dict(manifest='views/manifest.jsonl'), custom_hooks=[
        dict(type=hook)], train_dataloader=dict(dataset=dict(pipeline=[dict(type=pair)]))))
    assert apply_genview_settings(cfg) >= 1
    assert cfg.train_dataloader.dataset.pipeline[0]['manifest'] == 'views/manifest.jsonl'


@pytest.mark.parametrize('kind', spellings(QualityDrivenContrastiveHead))
def test_a_wrapped_head_is_not_wrapped_again(kind):
    head = dict(type=kind, head=dict(type='ContrastiveHead'))
    assert wrap_head(head) is head


@pytest.mark.parametrize('kind', ['SyncBN', 'mmengine.SyncBN', 'mmdet.SyncBN'])
def test_sync_bn_is_replaced_however_scoped(kind):
    tree = dict(model=dict(backbone=dict(norm_cfg=dict(type=kind))))
    assert replace_sync_bn(tree) == 1 and tree['model']['backbone']['norm_cfg']['type'] == 'BN'


@pytest.mark.parametrize('kind', ['AmpOptimWrapper', 'mmengine.AmpOptimWrapper'])
def test_amp_is_fp32_without_an_accelerator_however_scoped(kind, tmp_path, monkeypatch):
    monkeypatch.setattr('torch.cuda.is_available', lambda: False)
    cfg = Config(dict(optim_wrapper=dict(type=kind, loss_scale='dynamic',
                                         optimizer=dict(type='SGD', lr=0.1))))
    prepare_cfg(cfg, 'none', str(tmp_path))
    assert cfg.optim_wrapper.type == 'OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper


@pytest.mark.parametrize('kind', ['Pretrained', 'mmengine.Pretrained'])
def test_a_pretrained_init_is_found_however_scoped(kind):
    model = dict(backbone=dict(init_cfg=dict(type=kind, checkpoint='ckpt.pth')))
    assert [k for k, *_ in iter_pretrained(model)] == ['model.backbone.init_cfg.checkpoint']


@pytest.mark.parametrize('kind', spellings(CustomDataset))
def test_an_extra_set_is_found_however_spelt(kind):
    extra = dict(type=kind, with_label=False, ann_file='extra.txt')
    cfg = Config(dict(expansion=True, train_dataloader=dict(dataset=dict(
        type='ConcatDataset', datasets=[dict(type='ImageNet', data_root='in1k'), extra]))))
    assert extra_images_key(cfg) == 'train_dataloader.dataset.datasets.1'


@pytest.mark.parametrize('kind', spellings(TimmPatchEncoder))
def test_the_preflight_checks_a_scorer_encoder_however_spelt(kind):
    """A scoped or class type was 'not checked (not a GenView encoder)'."""
    checks = check_scorer(dict(encoder=dict(type=kind, model_name='resnet18', pretrained=False)))
    assert (checks[0].status, checks[0].detail) == (NOTE, 'resnet18 with random weights '
                                                          '(pretrained=False)')
