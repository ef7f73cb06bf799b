"""Training on imported (released-style) views: partial coverage through the demo GenView config,
unknown noise levels in ManifestIndex, GenViewPairHook's coverage warning and level logging."""
import json
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from PIL import Image

from genview_mm.apis import load_config
from genview_mm.apis.import_views import import_views
from genview_mm.datasets import ManifestIndex
from genview_mm.engine import GenViewPairHook
from helpers import write_photos

CFG = 'configs/demo/genview_mocov2_r18_tiny_cpu.py'
N = 16


@pytest.fixture
def released(tmp_path):
    """16 photos in two classes; a train_variations/ folder with views of the even ones (512-px
    JPEGs in the release; 48-px here), and a level list naming 3 of them."""
    src, views = tmp_path / 'imagenet' / 'train', tmp_path / 'imagenet' / 'train_variations'
    sources = write_photos(str(src / 'n01'), N // 2, size=40, ext='.JPEG')
    sources += write_photos(str(src / 'n02'), N // 2, size=40, ext='.JPEG')
    covered = sources[::2]
    for i, path in enumerate(covered):
        out = views / osp.relpath(path, src)
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((48, 48, 3), 20 * i, np.uint8)).save(out, format='JPEG')
    levels = {covered[0]: 100, covered[1]: 300, covered[5]: 400}
    lists = []
    for level in (100, 300, 400):
        lists.append(str(tmp_path / f'fg_ratios_{level}.txt'))
        with open(lists[-1], 'w') as f:
            f.writelines(f'{p} {lv}\n' for p, lv in levels.items() if lv == level)
    manifest = str(tmp_path / 'genview' / 'views_released' / 'manifest.jsonl')
    report = import_views(str(views), str(src), manifest, lists, progress=False)
    assert report['matched'] == N // 2 and report['missing'] == N // 2
    assert report['with_level'] == 3
    return SimpleNamespace(src=str(src), covered=covered, levels=levels, manifest=manifest)


def test_manifest_index_takes_rows_without_noise_level(released):
    index = ManifestIndex(released.manifest)
    assert index.num_rows == N // 2
    for path in released.covered:
        views = index.lookup(path)
        assert len(views) == 1 and osp.isfile(views[0][0])
        assert views[0][1] == released.levels.get(path, -1)
    with open(released.manifest) as f:
        assert sum(json.loads(line)['noise_level'] is None for line in f) == N // 2 - 3


def build_from_config(released):
    from mmpretrain.registry import DATASETS
    cfg = load_config(CFG, {'train_dataloader.dataset.data_root': released.src,
                            'genview.manifest': released.manifest})
    assert cfg.train_dataloader.dataset.pipeline[1].prob == 1.0
    init_default_scope('mmpretrain')
    return DATASETS.build(cfg.train_dataloader.dataset)


def test_partial_coverage_training_data_hook_warning_and_levels(released):
    dataset = build_from_config(released)
    assert len(dataset) == N
    np.random.seed(0)
    samples = [dataset[i]['data_samples'] for i in range(N)]
    covered = set(released.covered)
    for s in samples:
        if s.img_path in covered:  # prob=1: every covered image gets its generated view
            assert s.genview_slot in (0, 1)
            assert s.genview_noise_level == released.levels.get(s.img_path, -1)
        else:  # no view: both views come from the original
            assert s.genview_slot == -1 and s.genview_noise_level == -1
    assert sum(s.genview_slot >= 0 for s in samples) == N // 2

    infos, warnings = [], []
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(dataset=dataset),
                             logger=SimpleNamespace(info=infos.append, warning=warnings.append),
                             message_hub=MessageHub.get_instance('test_released_views_a'))
    hook = GenViewPairHook()
    hook.before_train(runner)
    assert infos == [] and len(warnings) == 1
    assert f'8/16 checked images (50.0%) of 16 have generated views in {released.manifest}' \
        in warnings[0]
    assert 'tools/import_views.py' in warnings[0] and 'tools/generate_views.py' in warnings[0]

    hook.after_train_iter(runner, 0, dict(data_samples=samples))
    hub = runner.message_hub
    assert hub.get_scalar('train/genview_gen_frac').current() == 0.5
    known = [s.genview_noise_level for s in samples if s.genview_noise_level >= 0]
    assert sorted(known) == [100, 300, 400]
    assert hub.get_scalar('train/genview_noise_level').current() == pytest.approx(800 / 3)

    # a batch without a known level: not logged (MMEngine logged the batch before's again)
    unknown_only = [s for s in samples if s.genview_slot >= 0 and s.genview_noise_level < 0]
    hook.after_train_iter(runner, 1, dict(data_samples=unknown_only))
    assert runner.message_hub.get_scalar('train/genview_gen_frac').current() == 1.0
    assert 'train/genview_noise_level' not in runner.message_hub.log_scalars
    # nor kept as a resumed key: loading a checkpoint's hub warned 'not defined in message_hub'
    assert 'train/genview_noise_level' not in hub.state_dict()['resumed_keys']
    hook.after_train_iter(runner, 2, dict(data_samples=samples))  # known again: logged
    assert hub.get_scalar('train/genview_noise_level').current() == pytest.approx(800 / 3)


def test_full_coverage_is_info(released, tmp_path):
    from mmpretrain.datasets import CustomDataset
    ann = tmp_path / 'covered.txt'  # a dataset of the covered images only
    ann.write_text(''.join(f'{p}\n' for p in released.covered))
    pipeline = [dict(type='GenViewPairDataset', manifest=released.manifest, transforms=[[]])]
    init_default_scope('mmpretrain')
    dataset = CustomDataset(ann_file=str(ann), with_label=False, pipeline=pipeline)
    assert len(dataset) == N // 2
    infos, warnings = [], []
    runner = SimpleNamespace(train_dataloader=SimpleNamespace(dataset=dataset),
                             logger=SimpleNamespace(info=infos.append, warning=warnings.append),
                             message_hub=MessageHub.get_instance('test_full_coverage_is_info'))
    GenViewPairHook().before_train(runner)
    assert warnings == [] and '8/8 checked images (100.0%)' in infos[0]
