"""The tiny expansion config trains on CPU: a dataset folder plus an extra list drawn by
tools/sample_extra_images.py (ImageNet stand-in's copies excluded), one epoch through MMEngine's
Runner, every image of both sources sampled once."""
import os.path as osp
import shutil

import pytest
from mmengine.hooks import Hook

from genview_mm.apis import load_config
from genview_mm.apis.preflight import format_checklist, preflight_passes, run_preflight
from helpers import ROOT, run_script, write_class_folders

TINY = osp.join(ROOT, 'configs', 'demo', 'mocov2_r18_tiny_cpu_expansion.py')


class RecordImages(Hook):
    """The image paths of every training batch, in order."""

    def __init__(self) -> None:
        self.batches = []

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.batches.append([s.img_path for s in data_batch['data_samples']])


@pytest.fixture
def extra_setup(tmp_path, train_photos):
    """16 dataset photos; 24 candidate images plus a same-name and a same-bytes copy of two
    dataset photos; the list of 16 extra images the tool draws from them."""
    main = osp.join(train_photos.src_root, 'all')
    dump = str(tmp_path / 'dump')
    write_class_folders(osp.join(dump, 'web'), per_class=8, size=40)
    shutil.copy(osp.join(main, 'img_0003.jpg'), osp.join(dump, 'web', 'img_0003.jpg'))
    shutil.copy(osp.join(main, 'img_0005.jpg'), osp.join(dump, 'web', 'renamed.jpg'))
    lst = str(tmp_path / 'meta' / 'extra.txt')
    run_script('sample_extra_images.py', dump, '--imagenet', main, '--num', 16, '--out', lst,
               '--seed', 0)
    return dict(main=train_photos.src_root, main_images=main, dump=dump, list=lst)


def test_tool_excludes_the_copies(extra_setup):
    listed = open(extra_setup['list']).read().splitlines()
    assert len(listed) == 16 == len(set(listed))
    assert all(p.startswith('web/') and p.endswith('.png') for p in listed)  # no copy drawn


@pytest.mark.slow  # an MMEngine Runner: ~10 s
def test_tiny_expansion_trains_on_both_sources(extra_setup, tmp_path):
    from genview_mm.apis.launch import build_runner, prepare_cfg
    cfg = load_config(TINY, {
        'train_dataloader.dataset.datasets.0.data_root': extra_setup['main'],
        'train_dataloader.dataset.datasets.1.data_prefix.img_path': extra_setup['dump'],
        'train_dataloader.dataset.datasets.1.ann_file': extra_setup['list']})
    checks = run_preflight(cfg)
    assert preflight_passes(checks), format_checklist(checks, TINY, verbose=True)
    assert any(c.what.startswith('extra images') for c in checks)
    prepare_cfg(cfg, work_dir=str(tmp_path / 'work'))
    runner = build_runner(cfg)
    recorder = RecordImages()
    runner.register_hook(recorder, 'LOWEST')
    runner.train()

    dataset = runner.train_dataloader.dataset
    assert [len(d) for d in dataset.datasets] == [16, 16] and len(dataset) == 32
    assert runner.iter == 4 and [len(b) for b in recorder.batches] == [8] * 4
    seen = [osp.abspath(p) for batch in recorder.batches for p in batch]
    extra = [osp.abspath(osp.join(extra_setup['dump'], p))
             for p in open(extra_setup['list']).read().splitlines()]
    main = [osp.abspath(osp.join(extra_setup['main_images'], f'img_{i:04d}.jpg'))
            for i in range(16)]
    assert sorted(seen) == sorted(main + extra)  # one epoch: each image of both sources once
