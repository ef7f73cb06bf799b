"""The preflight asks MMEngine's registries for every ``type`` a config names, as the runner will
when it builds it: a misspelt type passed the preflight, and tools/train.py then stopped with a
traceback from the registry."""
import glob
import os.path as osp
import sys

import pytest
from mmengine.config import Config
from mmpretrain.registry import MODELS

from genview_mm.apis import load_config
from genview_mm.apis.preflight import preflight_passes, run_preflight
from genview_mm.apis.preflight.type_checks import check_types, iter_types
from helpers import ROOT, load_tool

GENVIEW_TINY = osp.join(ROOT, 'configs', 'demo', 'genview_mocov2_r18_tiny_cpu.py')
MASK_RCNN = osp.join(ROOT, 'configs', 'demo', 'mask-rcnn_r18_fpn_tiny_cpu.py')
CONFIGS = sorted(c for c in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in c)


def type_checks(cfg) -> dict:
    return {c.what: c for c in run_preflight(cfg) if c.what.startswith('config type')}


def test_every_shipped_config_names_buildable_types():
    assert len(CONFIGS) >= 30
    for config in CONFIGS:
        cfg = load_config(config)
        assert len(list(iter_types(cfg.to_dict()))) >= 40, config  # the walk reaches them
        assert check_types(cfg) == [], config


def test_misspelt_types_are_broken_with_the_key_and_the_close_names():
    cfg = load_config(GENVIEW_TINY, {
        'model.type': 'MoCoo', 'model.backbone.norm_cfg.type': 'BNN',
        'train_dataloader.dataset.pipeline.0.type': 'mmpretrain.LoadImageFromFil'})
    checks = type_checks(cfg)
    assert set(checks) == {'config type [model.type]', 'config type [model.backbone.norm_cfg.type]',
                           'config type [train_dataloader.dataset.pipeline.0.type]'}
    model = checks['config type [model.type]']
    assert model.status == 'BROKEN'
    # built by the backbone, through MMCV's build_norm_layer (a registry): a note, as for
    # anything a module may read by a name of its own
    assert checks['config type [model.backbone.norm_cfg.type]'].status == 'note'
    assert checks['config type [train_dataloader.dataset.pipeline.0.type]'].status == 'BROKEN'
    assert model.detail.startswith("'MoCoo' is in no registry of scope 'mmpretrain': the runner "
                                   'cannot build it')
    assert model.fix[0] == ('--cfg-options model.type=NAME with a registered name (close: MoCo), '
                            'or fix it in the config')
    assert 'custom_imports' in model.fix[1]
    assert '(close: BN)' in checks['config type [model.backbone.norm_cfg.type]'].fix[0]
    assert '(close: LoadImageFromFile)' in \
        checks['config type [train_dataloader.dataset.pipeline.0.type]'].fix[0]
    assert not preflight_passes(run_preflight(cfg))


def test_types_mmdetection_takes_from_mmcv_ops_by_name():
    """``nms`` and ``roi_layer`` name mmcv.ops functions and classes, in no registry: the
    shipped detection configs pass (above), a misspelt one is named as such."""
    cfg = load_config(MASK_RCNN, {'model.test_cfg.rcnn.nms.type': 'nmss',
                                  'model.roi_head.bbox_roi_extractor.roi_layer.type': 'RoIAlgn'})
    checks = type_checks(cfg)
    assert set(checks) == {'config type [model.test_cfg.rcnn.nms.type]',
                           'config type [model.roi_head.bbox_roi_extractor.roi_layer.type]'}
    nms = checks['config type [model.test_cfg.rcnn.nms.type]']
    assert nms.status == 'note'
    assert nms.detail.startswith("'nmss' is no operation of mmcv.ops")
    assert '(close: nms' in nms.fix[0]
    assert '(close: RoIAlign' in \
        checks['config type [model.roi_head.bbox_roi_extractor.roi_layer.type]'].fix[0]
    # a type of the wrong scope: mmdet's registries hold no MoCo (the runner looks there)
    cfg = load_config(MASK_RCNN, {'model.type': 'MoCo'})
    assert "'MoCo' is in no registry of scope 'mmdet'" in \
        type_checks(cfg)['config type [model.type]'].detail
    cfg = load_config(MASK_RCNN, {'model.backbone.type': 'mmpretrain.ResNet'})
    assert check_types(cfg) == []  # scoped: MMPretrain's


def test_registered_by_the_users_own_module_or_scope_or_import_path(tmp_path, monkeypatch):
    """No false alarm for what the runner does build: a class a config's custom_imports
    registers, a config inheriting ours (its dicts carry _scope_='genview_mm'), an import path."""
    package = tmp_path / 'my_heads_for_preflight'
    package.mkdir()
    (package / '__init__.py').write_text(
        'from mmpretrain.models.heads import ContrastiveHead\n'
        'from mmpretrain.registry import MODELS\n\n\n'
        '@MODELS.register_module()\n'
        'class MyPreflightHead(ContrastiveHead):\n'
        '    pass\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    child = tmp_path / 'child.py'
    child.write_text(
        "_base_ = 'genview_mm::genview_mocov2_r50_in1k.py'\n"
        "custom_imports = dict(imports=['my_heads_for_preflight'], allow_failed_imports=False)\n"
        "model = dict(head=dict(type='MyPreflightHead'), neck=dict(act_cfg=dict("
        "type='torch.nn.ReLU')))\n")
    try:
        cfg = load_config(str(child))
        assert cfg.model.head.type == 'MyPreflightHead'
        assert {scope for _, _, scope in iter_types(cfg.to_dict())} >= {'genview_mm'}
        assert check_types(cfg) == []
        child.write_text(child.read_text().replace("type='MyPreflightHead'",
                                                   "type='MyPreflightHed'"))
        checks = check_types(load_config(str(child)))
    finally:  # out of this process's registry again
        MODELS.module_dict.pop('MyPreflightHead', None)
        sys.modules.pop('my_heads_for_preflight', None)
    assert [c.what for c in checks] == ['config type [model.head.type]']
    assert checks[0].detail.startswith("'MyPreflightHed' is in no registry of scope")
    assert '(close: MyPreflightHead)' in checks[0].fix[0]


def test_names_a_module_reads_itself_are_notes_and_mmcv_ops_anywhere():
    """MMDetection's FPG neck reads its transitions' ``type`` itself, DDQ passes an mmcv.ops
    name under dqs_cfg, Albu albumentations' names, and an MMCV 1.x ``runner`` is read by no
    one: none stops a run."""
    cfg = load_config(MASK_RCNN, {
        'model.neck.across_lateral_trans': dict(type='conv', kernel_size=1),
        'model.dqs_cfg': dict(type='nms', iou_threshold=0.8),
        'runner': dict(type='IterBasedRunner', max_iters=10)})
    cfg.train_dataloader.dataset.pipeline.append(dict(type='Albu', transforms=[
        dict(type='ShiftScaleRotate', shift_limit=0.0625)]))
    checks = type_checks(cfg)
    assert list(checks) == ['config type [model.neck.across_lateral_trans.type]']
    assert checks['config type [model.neck.across_lateral_trans.type]'].detail == (
        "'conv' is in no registry of scope 'mmdet': if the module above builds it from a "
        'registry, the runner stops there (a typo?); some read a name of their own here')
    assert checks['config type [model.neck.across_lateral_trans.type]'].status == 'note'
    assert preflight_passes(list(checks.values()))
    cfg.train_dataloader.dataset.pipeline[-1]['type'] = 'Albuu'  # a transform: built by a registry
    last = len(cfg.train_dataloader.dataset.pipeline) - 1
    assert type_checks(cfg)[f'config type [train_dataloader.dataset.pipeline.{last}.type]'
                            ].status == 'BROKEN'


def test_registries_of_a_package_without_a_parent_are_asked_too():
    """MMPretrain's batch augments (a fine-tuning recipe's Mixup, CutMix) are in a registry with
    no MMEngine parent: they were reported as unknown."""
    cfg = Config(dict(default_scope='mmpretrain', model=dict(
        type='ImageClassifier', train_cfg=dict(augments=[dict(type='Mixup', alpha=0.8),
                                                         dict(type='CutMix', alpha=1.0)]))))
    assert check_types(cfg) == []
    cfg.model.train_cfg.augments[1].type = 'CutMx'
    checks = check_types(cfg)
    assert [c.what for c in checks] == ['config type [model.train_cfg.augments.1.type]']
    assert '(close: CutMix)' in checks[0].fix[0]


def test_the_scope_is_mmengines_without_default_scope_and_a_bad_one_is_named():
    """Runner.from_cfg builds in scope mmengine when the config sets none: MMPretrain's
    ImageClassifier is not there. A misspelt default_scope is one line, not one per type."""
    cfg = Config(dict(train_dataloader=dict(dataset=dict(type='CustomDataset')),
                      model=dict(type='ImageClassifier', head=dict(type='LinearClsHead'))))
    checks = {c.what: c for c in check_types(cfg)}
    assert set(checks) == {'config type [model.type]', 'config type [model.head.type]',
                           'config type [train_dataloader.dataset.type]'}
    assert checks['config type [model.type]'].detail.startswith(
        "'ImageClassifier' is in no registry of scope 'mmengine' (it is in scope 'mmpretrain': "
        "write 'mmpretrain.ImageClassifier' or set default_scope = 'mmpretrain'): the runner "
        'cannot build it')
    mixed = load_config(GENVIEW_TINY, {'model.type': 'MaskRCNN'})  # another package's model:
    assert "(it is in scope 'mmdet': write 'mmdet.MaskRCNN'): " in \
        check_types(mixed)[0].detail  # default_scope would break the config's other names
    mixed = load_config(GENVIEW_TINY, {'model._scope_': 'mmdet'})  # _scope_ wins anyway
    assert "(it is in scope 'mmpretrain': write 'mmpretrain.GenViewMoCo'): " in \
        type_checks(mixed)['config type [model.type]'].detail
    cfg.default_scope = 'mmpretrain'
    assert check_types(cfg) == []
    cfg.model.type = 'ImageClasifier'
    assert '(close: ImageClassifier)' in check_types(cfg)[0].fix[0]
    cfg = load_config(GENVIEW_TINY, {'default_scope': 'mmpretrian'})
    checks = check_types(cfg)
    assert [(c.what, c.status) for c in checks] == [('config default_scope', 'BROKEN')]
    assert checks[0].detail == ("'mmpretrian' is the scope of no registry, so no unscoped type "
                                'name can be found')
    assert checks[0].fix[0].startswith('--cfg-options default_scope=NAME (close: mmpretrain): '
                                       "the package whose registries the config's types are in (")
    assert 'mmdet' in checks[0].fix[0]
    for bad in (['mmpretrain'], '.x'):  # no traceback
        assert check_types(load_config(GENVIEW_TINY, {'default_scope': bad}))[0].what == \
            'config default_scope'
    cfg = load_config(GENVIEW_TINY)
    cfg.model['_scope_'] = ['mmpretrain']  # not a name: the default scope
    assert check_types(cfg) == []


def test_default_scope_none_a_foreign_scope_and_mmcv_without_ops(monkeypatch):
    """default_scope=None written in a config: the runner sets no scope and each module builds
    its parts from its own package (it builds); a scope of no installed package with scoped names
    only: the runner warns and builds; mmcv without compiled ops: a typo is still a line."""
    model = dict(type='mmpretrain.ImageClassifier', backbone=dict(type='ResNet', depth=18),
                 head=dict(type='LinearClsHead', num_classes=10, in_channels=512))
    assert check_types(Config(dict(default_scope=None, model=model))) == []
    cfg = Config(dict(default_scope=None, model=dict(model, head=dict(type='LinearClsHed'))))
    assert [c.detail.split(':')[0] for c in check_types(cfg)] == [
        "'LinearClsHed' is in no registry (the config sets default_scope=None)"]
    scoped = dict(default_scope='mmsegx', model=dict(type='mmpretrain.ImageClassifier'))
    assert [(c.what, c.status) for c in check_types(Config(scoped))] == [
        ('config default_scope', 'note')]
    cfg = Config(dict(default_scope='mmpretrain', model=dict(type='mmpretrain.ResNetX')))
    assert check_types(cfg)[0].detail.startswith(
        "'mmpretrain.ResNetX' resolves to nothing (a scoped name or an import path)")
    cfg = load_config(MASK_RCNN, {'model.test_cfg.rcnn.nms.type': 'nmz'})
    nms = type_checks(cfg)['config type [model.test_cfg.rcnn.nms.type]']
    assert nms.fix == ['--cfg-options model.test_cfg.rcnn.nms.type=NAME with an operation of '
                       'mmcv.ops (close: nms), or fix it in the config']
    monkeypatch.setitem(sys.modules, 'mmcv.ops', None)  # an import of it fails
    cfg = Config(dict(default_scope='mmpretrain', model=dict(type='ImageClassifierX')))
    assert [c.what for c in check_types(cfg)] == ['config type [model.type]']


def test_only_what_the_run_builds_is_checked():
    """A test builds no optimizer (Lion is registered only where its package is installed) and
    a training run no test loop; a distributed run alone wraps the model: none of these may
    stop a run that would not build them."""
    cfg = load_config(MASK_RCNN, {'test_evaluator.type': 'CocoMetrc',
                                  'optim_wrapper.optimizer.type': 'Lionn',
                                  'model_wrapper_cfg': dict(type='MMDistributedDataParalel')})
    train = {c.what: c.status for c in check_types(cfg, ['train', 'val'])}
    assert train == {'config type [optim_wrapper.optimizer.type]': 'BROKEN',
                     'config type [model_wrapper_cfg.type]': 'note'}
    test = {c.what: c.status for c in check_types(cfg, ['test'])}
    assert test == {'config type [test_evaluator.type]': 'BROKEN',
                    'config type [model_wrapper_cfg.type]': 'note'}
    assert 'config type [optim_wrapper.optimizer.type]' not in {
        c.what for c in run_preflight(cfg, 'test', 'x.pth')}


def test_the_optimizer_is_built_in_the_default_scope_not_its_wrappers():
    """The optimizer wrapper constructor builds the optimizer after the wrapper, in the
    config's default scope: an MMDetection schedule's wrapper (_scope_ mmdet) holds MMPretrain's
    LARS fine under default_scope mmpretrain, and not the other way round."""
    cfg = load_config(GENVIEW_TINY, {'optim_wrapper': dict(
        _scope_='mmdet', type='OptimWrapper', optimizer=dict(type='LARS', lr=0.1))})
    assert check_types(cfg) == []
    cfg = load_config(MASK_RCNN, {'optim_wrapper': dict(
        _scope_='mmpretrain', type='OptimWrapper', optimizer=dict(type='LARS', lr=0.1))})
    assert [c.detail.split(':')[0] for c in check_types(cfg)] == [
        "'LARS' is in no registry of scope 'mmdet' (it is in scope 'mmpretrain'"]


def test_a_module_name_or_an_import_is_no_type():
    """Registry.get returns a module for a bare module name ('timm'), and would import it."""
    cfg = load_config(GENVIEW_TINY, {'model.type': 'timm', 'model.neck.type': 'this'})
    assert [c.what for c in check_types(cfg)] == ['config type [model.type]',
                                                  'config type [model.neck.type]']
    assert 'this' not in sys.modules


@pytest.mark.parametrize('mode', ['train', 'test'])
def test_check_config_refuses_an_unknown_type(mode, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    argv = [GENVIEW_TINY, '--quiet', '--cfg-options', 'model.type=Nope']
    if mode == 'test':
        argv = [MASK_RCNN, 'x.pth', '--quiet', '--cfg-options', 'model.type=Nope']
    assert load_tool('check_config').main(argv) == 2
    out = capsys.readouterr().out
    assert "  BROKEN   config type [model.type]: 'Nope' is in no registry of scope" in out
    assert '-> --cfg-options model.type=NAME with a registered name' in out



def test_collate_fn_is_looked_up_as_the_runner_does_in_mmengines_functions():
    """Runner.build_dataloader asks MMEngine's root FUNCTIONS for ``collate_fn``'s type,
    whatever the default scope: a dotless name registered only in the default scope's FUNCTIONS
    is None there (the runner then fails), its scoped name is found."""
    from mmengine.registry import FUNCTIONS, Registry

    def collate(batch):
        return batch

    scoped = Registry('function', parent=FUNCTIONS, scope='mmpretrain')  # MMPretrain has none
    scoped.register_module(name='genview_test_collate', module=collate)
    try:
        assert FUNCTIONS.get('genview_test_collate') is None  # what the runner gets
        assert FUNCTIONS.get('mmpretrain.genview_test_collate') is collate
        bad = load_config(GENVIEW_TINY, {'train_dataloader.collate_fn.type':
                                         'genview_test_collate'})
        assert [(c.what, c.status) for c in check_types(bad)] == [
            ('config type [train_dataloader.collate_fn.type]', 'BROKEN')]
        assert check_types(bad)[0].detail.startswith(
            "'genview_test_collate' is not in MMEngine's root registry, where the runner looks "
            "it up (one of a package: 'scope.name') (it is in scope 'mmpretrain': write "
            "'mmpretrain.genview_test_collate'): the runner cannot build it")
        bad = load_config(GENVIEW_TINY, {'train_dataloader.worker_init_fn': dict(
            type='genview_test_collate')})  # looked up the same way
        assert [(c.what, c.status) for c in check_types(bad)] == [
            ('config type [train_dataloader.worker_init_fn.type]', 'BROKEN')]
        for name in ('mmpretrain.genview_test_collate', 'default_collate', 'pseudo_collate'):
            ok = load_config(GENVIEW_TINY, {'train_dataloader.collate_fn.type': name})
            assert check_types(ok) == [], name
    finally:
        FUNCTIONS._children.pop('mmpretrain')


def test_runner_type_and_the_optimizer_constructor_are_checked_where_they_are_built():
    """``runner_type`` (RUNNERS.build, before the runner sets the default scope: MMEngine's
    root RUNNERS) and ``optim_wrapper.constructor`` (build_optim_wrapper, in the default scope)
    are type names given as values; the constructor is built by training only."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    from mmpretrain.registry import RUNNERS as PRETRAIN_RUNNERS

    class MyRunner(Runner):
        pass

    PRETRAIN_RUNNERS.register_module(name='GenviewTestRunner', module=MyRunner)
    try:
        assert RUNNERS.get('GenviewTestRunner') is None  # what RUNNERS.build looks up
        cfg = load_config(GENVIEW_TINY, {'runner_type': 'GenviewTestRunner'})
        assert [(c.what, c.status) for c in check_types(cfg)] == [
            ('config type [runner_type]', 'BROKEN')]
        assert "write 'mmpretrain.GenviewTestRunner')" in check_types(cfg)[0].detail
        cfg = load_config(GENVIEW_TINY, {'runner_type': 'mmpretrain.GenviewTestRunner'})
        assert check_types(cfg) == []
    finally:
        PRETRAIN_RUNNERS._module_dict.pop('GenviewTestRunner')
    good = load_config(GENVIEW_TINY, {
        'runner_type': 'Runner',
        'optim_wrapper.constructor': 'LearningRateDecayOptimWrapperConstructor'})
    assert check_types(good) == []
    bad = load_config(GENVIEW_TINY, {'runner_type': 'Runer',
                                     'optim_wrapper.constructor': 'DefaultOptimWrapperConstructer'})
    checks = {c.what: c for c in check_types(bad)}
    assert {k: c.status for k, c in checks.items()} == {
        'config type [runner_type]': 'BROKEN', 'config type [optim_wrapper.constructor]': 'BROKEN'}
    assert checks['config type [runner_type]'].fix[0] == (
        '--cfg-options runner_type=NAME with a registered name (close: Runner), or fix it in the '
        'config')
    assert '(close: DefaultOptimWrapperConstructor)' in \
        checks['config type [optim_wrapper.constructor]'].fix[0]
    assert [c.what for c in check_types(bad, loops=('test', ))] == ['config type [runner_type]']


def test_losses_and_batch_augments_are_built_from_registries():
    """Heads build their losses (MODELS.build) and data preprocessors their batch augments
    (MMPretrain's BATCH_AUGMENTS, MMDetection's MODELS): a misspelt one stops the run, so it
    is BROKEN, not a note."""
    cfg = load_config(GENVIEW_TINY, {'model.head.loss.type': 'CrossEntropyLos'})
    cfg.data_preprocessor['batch_augments'] = dict(augments=[dict(type='Mixupp', alpha=0.8)])
    checks = type_checks(cfg)  # the top-level data_preprocessor: the runner gives it the model
    assert {k: c.status for k, c in checks.items()} == {
        'config type [model.head.loss.type]': 'BROKEN',
        'config type [data_preprocessor.batch_augments.augments.0.type]': 'BROKEN'}
    cfg.data_preprocessor['type'] = 'SelfSupDataPreprocesor'
    assert type_checks(cfg)['config type [data_preprocessor.type]'].status == 'BROKEN'
    cfg.data_preprocessor['type'] = 'SelfSupDataPreprocessor'  # built in the model's scope
    cfg.data_preprocessor['batch_augments'] = dict(augments=dict(type='Mixupp'))  # one dict
    cfg.default_scope, cfg.model['_scope_'] = 'mmdet', 'mmpretrain'
    checks = type_checks(cfg)
    assert 'config type [data_preprocessor.type]' not in checks
    assert checks['config type [data_preprocessor.batch_augments.augments.type]'].status == \
        'BROKEN'
    cfg.model['data_preprocessor'] = dict(type='SelfSupDataPreprocessor')  # the model's own:
    assert 'config type [data_preprocessor.batch_augments.augments.type]' not in \
        type_checks(cfg)  # the top one unused
    assert '(close: CrossEntropyLoss)' in checks['config type [model.head.loss.type]'].fix[0]
    det = load_config(MASK_RCNN, {'model.roi_head.bbox_head.loss_cls.type': 'CrossEntropyLos'})
    assert [(c.what, c.status) for c in check_types(det)] == [
        ('config type [model.roi_head.bbox_head.loss_cls.type]', 'BROKEN')]
    det = load_config(MASK_RCNN, {'model.roi_head.mask_head.loss_mask': [
        dict(type='CrossEntropyLoss', use_mask=True), dict(type='DiceLos')]})  # a list of them
    assert [(c.what, c.status) for c in check_types(det)] == [
        ('config type [model.roi_head.mask_head.loss_mask.1.type]', 'BROKEN')]


def test_a_flexible_runners_strategy_is_checked_in_mmengines_strategies():
    """FlexibleRunner builds ``strategy`` (STRATEGIES.build) before it sets the default scope;
    the plain Runner never reads it."""
    cfg = load_config(GENVIEW_TINY, {'strategy': dict(type='DeepSpeedStrategyy')})
    assert check_types(cfg) == []  # Runner: not built
    cfg.runner_type = 'FlexibleRunner'
    checks = check_types(cfg)
    assert [(c.what, c.status) for c in checks] == [('config type [strategy.type]', 'BROKEN')]
    assert '(close: DeepSpeedStrategy)' in checks[0].fix[0]
    cfg.strategy.type = 'FSDPStrategy'
    assert check_types(cfg) == []


def test_a_type_given_as_a_class_is_shown_by_its_name(tmp_path):
    """A new-style config gives types as classes: the preflight's lines said
    "<class 'mmpretrain.datasets.custom.CustomDataset'> data [...]"."""
    from mmpretrain.datasets import CustomDataset
    from mmpretrain.models import ResNet

    from genview_mm.apis.preflight.data_checks import check_dataset
    from genview_mm.apis.preflight.state_dict_checks import module_shapes
    check, = check_dataset('k', dict(type=CustomDataset, data_root=str(tmp_path / 'gone')))
    assert check.what == 'CustomDataset data [k]'
    assert check_dataset('k', dict(type='mmpretrain.CustomDataset',
                                   data_root=str(tmp_path)))[0].what == \
        'mmpretrain.CustomDataset data [k]'  # a string as spelt
    assert module_shapes(dict(type=ResNet, depth=18), 'mmpretrain')[1] == 'ResNet'
