"""'In your own MMPretrain project' (README): a config in a folder outside the repository that
inherits a GenView config changes one documented setting and it takes effect; switching the
dataset to CustomDataset with the documented lines works."""
import os.path as osp

import pytest
import torch

from genview_mm.apis import load_config
from helpers import run_tool

# the README's dataset switch, verbatim apart from the paths and the tiny model
CUSTOM_DATASET = '''
_base_ = 'genview_mm::genview_mocov2_r50_in1k.py'
train_dataloader = dict(dataset=dict(
    _delete_=True, type='CustomDataset', data_root={images!r}, with_label=False,
    pipeline=_base_.train_pipeline){tiny_loader})
genview = dict(manifest={manifest!r})
'''

TINY = '''
model = dict(queue_len=64, feat_dim=32, backbone=dict(depth=18, stem_channels=8,
             base_channels=8), neck=dict(in_channels=64, hid_channels=64, out_channels=32),
             scorer=dict(_delete_=True, **_base_.clip_vit_b32_scorer))
optim_wrapper = dict(optimizer=dict(lr=0.001))
train_cfg = dict(max_epochs=1)
'''


def test_child_settings_take_effect(tmp_path):
    project = tmp_path / 'my_project'
    project.mkdir()
    child = project / 'child.py'
    child.write_text("_base_ = 'genview_mm::genview_mocov2_r50_in1k.py'\n"
                     "genview = dict(manifest='/data/my_views/manifest.jsonl', prob=0.5)\n"
                     "model = dict(scorer=dict(pca_path='/data/pca/mine.pth'), "
                     "normalize='global')\n")
    cfg = load_config(str(child))
    pair = cfg.train_dataloader.dataset.pipeline[1]
    assert (pair.manifest, pair.prob) == ('/data/my_views/manifest.jsonl', 0.5)
    assert cfg.model.scorer.pca_path == '/data/pca/mine.pth'
    assert cfg.model.scorer.encoder.model_name == 'convnext_base.clip_laion2b_augreg'
    assert cfg.model.normalize == 'global'
    # the cheaper scorer, switched in one line (README)
    child.write_text("_base_ = 'genview_mm::genview_mocov2_r50_in1k.py'\n"
                     "model = dict(scorer=dict(_delete_=True, **_base_.clip_vit_b32_scorer))\n")
    scorer = load_config(str(child)).model.scorer
    scorer.pop('_scope_', None)  # MMEngine tags entries inherited from a genview_mm:: base
    assert scorer == dict(type='PairQualityScorer', encoder='openai/clip-vit-base-patch32',
                          pca_path='data/genview/pca/clip-vit-b32.pth')
    # an explicit pipeline value wins over the setting
    cfg = load_config(str(child), {'train_dataloader.dataset.pipeline.1.manifest': '/x.jsonl',
                                   'genview.manifest': '/y.jsonl'})
    assert cfg.train_dataloader.dataset.pipeline[1].manifest == '/x.jsonl'


@pytest.mark.slow
def test_custom_dataset_switch_trains_from_outside_the_repo(tmp_path, train_photos,
                                                           tiny_clip_path, tiny_scorer_pca):
    images, manifest = train_photos.src_root, train_photos.manifest
    project = tmp_path / 'my_project'
    project.mkdir()
    cfg_path = project / 'my_genview.py'
    tiny_loader = ', batch_size=8, num_workers=0, persistent_workers=False'
    cfg_path.write_text(CUSTOM_DATASET.format(images=images, manifest=manifest,
                                              tiny_loader=tiny_loader) + TINY)
    cfg = load_config(str(cfg_path))
    assert cfg.train_dataloader.dataset.type == 'CustomDataset'
    assert 'split' not in cfg.train_dataloader.dataset  # ImageNet's leftover key is gone
    assert cfg.train_dataloader.dataset.pipeline[1].manifest == manifest
    work = str(tmp_path / 'work')
    out = run_tool('train.py', cfg_path, '--work-dir', work, '--cfg-options',
                   f'model.scorer.encoder={tiny_clip_path}',
                   f'model.scorer.pca_path={tiny_scorer_pca}', cwd=str(project)).output
    assert 'genview_mm preflight' not in out  # a complete setup passes silently
    assert '16/16 checked images (100.0%)' in out
    ckpt = torch.load(osp.join(work, 'epoch_1.pth'), weights_only=True)
    assert ckpt['meta']['iter'] == 2
    assert ckpt['state_dict']['backbone.conv1.weight'].shape[0] == 8


def test_a_checkout_never_installed_names_the_install_it_needs(tmp_path, monkeypatch):
    """The launchers put their checkout first on PYTHONPATH. In a clone where setup.py never ran
    (genview_mm installed from elsewhere), a ``genview_mm::`` base then failed with MMEngine's
    ``No such file or directory: .../genview_mm/.mim/model-index.yml``, which check_config
    reported as the config's fault. It now names what is missing and the command that makes it;
    with setup.py's two files there, the same config loads."""
    import sys

    from mmengine.config import Config

    from helpers import ROOT
    clone = tmp_path / 'my clone'  # quoted in the commands
    (clone / 'genview_mm').mkdir(parents=True)
    (clone / 'setup.py').write_text('')
    monkeypatch.setattr(sys.modules['genview_mm'], '__file__',
                        str(clone / 'genview_mm' / '__init__.py'))
    child = tmp_path / 'child.py'
    child.write_text("_base_ = 'genview_mm::genview_mocov2_r50_in1k.py'\n")
    with pytest.raises(FileNotFoundError) as err:
        Config.fromfile(str(child))
    assert str(err.value) == (
        f'genview_mm:: configs: {clone / "genview_mm"} has no .mim/configs or '
        '.mim/model-index.yml (a checkout never installed?): `pip install --no-deps '
        f"--no-build-isolation -e '{clone}'` (or `bash '{clone / 'tools' / 'bootstrap_env.sh'}'`) "
        'once, then rerun')
    (clone / 'genview_mm' / '.mim').mkdir()
    (clone / 'genview_mm' / '.mim' / 'configs').symlink_to(osp.join(ROOT, 'configs'))
    (clone / 'genview_mm' / '.mim' / 'model-index.yml').write_text('Import: []\n')
    assert Config.fromfile(str(child)).model.type == 'GenViewMoCo'
