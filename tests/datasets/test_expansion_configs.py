"""configs/expansion/: upstream's MoCo v2 / MoCo v3 on ImageNet-1K plus as many extra real
images as GenView has views, with half the epochs so that a run takes as many iterations as the
GenView run of the same row on the same GPUs (README "Data-expansion baselines")."""
import functools
import math
import os.path as osp

import pytest
from mmengine.config import Config

from genview_mm.apis import load_config
from helpers import ROOT

IMAGENET_TRAIN = 1_281_167  # images in ImageNet-1K train (meta/train.txt), = GenView's views
# expansion config, upstream config, GenView config of the same row, GPUs (the README's table),
# iterations of the GenView run and of the expansion run
ROWS = {
    'mocov2': ('expansion/mocov2_r50_in1k-plus-extra.py', 'baselines/mocov2_r50_in1k.py',
               'genview_mocov2_r50_in1k.py', 8, 1_000_800, 1_000_900),
    'mocov3': ('expansion/mocov3_r50_in1k-plus-extra.py', 'baselines/mocov3_r50_in1k.py',
               'genview_mocov3_r50_in1k.py', 8, 31_300, 31_300),
}


@functools.lru_cache(maxsize=None)
def config(rel: str) -> Config:
    return load_config(osp.join(ROOT, 'configs', rel))


def images_per_epoch(cfg: Config) -> int:
    """The train set's size, from the sizes stated above (the data is not read)."""
    dataset = cfg.train_dataloader.dataset
    if dataset.type == 'ConcatDataset':
        return IMAGENET_TRAIN + cfg.expansion.num_extra
    return IMAGENET_TRAIN


def iterations(cfg: Config, gpus: int) -> int:
    """Iterations of a run on ``gpus`` GPUs, as MMEngine's ``DefaultSampler`` and PyTorch's
    ``DataLoader`` make them: each GPU gets ceil(len(dataset) / gpus) samples, then whole
    batches (``drop_last``) or one more for the rest, every epoch."""
    loader = cfg.train_dataloader
    assert loader.sampler.type == 'DefaultSampler' and cfg.train_cfg.type == 'EpochBasedTrainLoop'
    per_gpu = math.ceil(images_per_epoch(cfg) / gpus)
    rounding = math.floor if loader.get('drop_last', False) else math.ceil
    return rounding(per_gpu / loader.batch_size) * cfg.train_cfg.max_epochs


@pytest.mark.parametrize('row', ROWS)
def test_expansion_is_upstream_on_imagenet_plus_extra(row):
    expansion, upstream, _, _, _, _ = ROWS[row]
    cfg, base = config(expansion), config(upstream)
    assert cfg.model == base.model and 'scorer' not in cfg.model  # upstream's method
    assert cfg.data_preprocessor == base.data_preprocessor  # upstream's normalisation
    assert cfg.optim_wrapper == base.optim_wrapper and not cfg.get('custom_hooks')
    assert 'genview' not in cfg and 'GenViewPairDataset' not in cfg.pretty_text
    dataset = cfg.train_dataloader.dataset
    assert dataset.type == 'ConcatDataset' and len(dataset.datasets) == 2
    imagenet, extra = dataset.datasets
    assert imagenet == base.train_dataloader.dataset  # ImageNet-1K train, unchanged
    assert extra.type == 'CustomDataset' and extra.with_label is False
    assert extra.pipeline == imagenet.pipeline  # the same two-view pipeline on both
    assert (extra.data_prefix.img_path, extra.ann_file) == (
        'data/extra_images/', 'data/expansion/extra_images.txt')
    assert cfg.expansion.num_extra == IMAGENET_TRAIN  # as many extra images as views


@pytest.mark.parametrize('row', ROWS)
def test_expansion_takes_the_iterations_of_the_genview_run(row):
    expansion, upstream, genview, gpus, genview_iters, expansion_iters = ROWS[row]
    cfg, gen, base = config(expansion), config(genview), config(upstream)
    assert gen.train_cfg.max_epochs == base.train_cfg.max_epochs == 2 * cfg.train_cfg.max_epochs
    assert cfg.train_dataloader.batch_size == gen.train_dataloader.batch_size
    assert (iterations(gen, gpus), iterations(cfg, gpus)) == (genview_iters, expansion_iters)
    # equal up to the rounding of the last batch: at most one batch more per (expansion) epoch
    # (MoCo v2 drops the last partial batch: 2N images make 10,009 batches, twice N's 5,004 + 1)
    assert 0 <= expansion_iters - genview_iters <= cfg.train_cfg.max_epochs
    assert (expansion_iters - genview_iters) / genview_iters <= 0.0001
    # the same images seen: 2N per expansion epoch x half the epochs = N x the GenView epochs
    assert images_per_epoch(cfg) * cfg.train_cfg.max_epochs == \
        images_per_epoch(gen) * gen.train_cfg.max_epochs


@pytest.mark.parametrize('row', ROWS)
def test_schedule_is_upstreams_at_half_the_epochs(row):
    """Every epoch-valued point of the learning-rate schedule (warm-up end, cosine length) is
    halved, the rest is upstream's: warm-up and decay span the iterations they span in the
    GenView run (up to drop_last's rounding)."""
    expansion, _, genview, _, _, _ = ROWS[row]
    ours, theirs = config(expansion).param_scheduler, config(genview).param_scheduler
    assert len(ours) == len(theirs)
    for mine, gen in zip(ours, theirs):
        halved = {k: v // 2 if k in ('begin', 'end', 'T_max') else v for k, v in gen.items()
                  if k != '_scope_'}  # (the scope upstream's entries carry changes nothing)
        assert {k: v for k, v in mine.items() if k != '_scope_'} == halved


def test_tiny_expansion_config_is_the_demo_plus_an_extra_list():
    cfg = config('demo/mocov2_r18_tiny_cpu_expansion.py')
    demo = config('demo/mocov2_r18_tiny_cpu.py')
    assert cfg.model == demo.model
    main, extra = cfg.train_dataloader.dataset.datasets
    assert main == demo.train_dataloader.dataset
    assert extra.with_label is False and extra.pipeline == main.pipeline
    assert cfg.train_cfg.max_epochs * 2 == demo.train_cfg.max_epochs


@pytest.mark.parametrize('probe, genview_probe', [
    ('baselines/mocov2_r50_linear-steplr-100e_in1k.py',
     'benchmarks/genview_mocov2_r50_linear-steplr-100e_in1k.py'),
    ('baselines/mocov3_r50_linear-coslr-90e_in1k.py',
     'benchmarks/genview_mocov3_r50_linear-coslr-90e_in1k.py')])
def test_baseline_probes_normalise_as_the_baselines_were_trained(probe, genview_probe):
    """Upstream and expansion backbones saw ImageNet's mean/std, GenView's CLIP's: each is
    probed as it was trained, with otherwise the same benchmark."""
    cfg, gen = config(probe), config(genview_probe)
    assert cfg.data_preprocessor.mean == [123.675, 116.28, 103.53]
    assert gen.data_preprocessor.mean != cfg.data_preprocessor.mean
    assert cfg.model.backbone.init_cfg == dict(
        type='Pretrained', checkpoint=f'checkpoints/{probe[10:16]}_r50_backbone.pth',
        prefix='backbone.')
    assert (cfg.optim_wrapper, cfg.param_scheduler, cfg.train_cfg) == (
        gen.optim_wrapper, gen.param_scheduler, gen.train_cfg)
