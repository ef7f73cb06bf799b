"""KNNMonitorHook and genview_mm.evaluation.knn: the weighted vote, pooling, the cross-rank
gather, and an evaluation logged to the message hub."""
import os
import re

import pytest
import torch
import torch.distributed as dist

from genview_mm.engine import KNNMonitorHook
from genview_mm.evaluation.knn import knn_predict, knn_top1, pool_features
from helpers import free_port, write_class_folders
from helpers.dist import init_gloo, run_processes


def clusters(n_per_class, num_classes=4, dim=16, noise=0.3, seed=0):
    centres = torch.nn.functional.normalize(
        torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(123)), dim=1)
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    feats = centres[labels] + noise * torch.randn(len(labels), dim, generator=g) / dim ** 0.5
    return torch.nn.functional.normalize(feats, dim=1), labels


def test_knn_separable_and_chance():
    bank, bank_labels = clusters(30)
    query, query_labels = clusters(10, seed=1)
    assert knn_top1(bank, bank_labels, query, query_labels, 4) == 100.0
    shuffled = bank_labels[torch.randperm(len(bank_labels), generator=torch.Generator()
                                          .manual_seed(0))]
    assert knn_top1(bank, shuffled, query, query_labels, 4) < 60.0


def test_knn_vote_weights():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    labels = torch.tensor([0, 1, 1])
    scores = knn_predict(bank, labels, torch.tensor([[1.0, 0.0]]), 2, k=2, temperature=0.5)
    # neighbours: bank[0] (cos 1, class 0) and bank[2] (cos 0.6, class 1): exp(cos / T) over
    # exp(1 / T), the nearest one's
    torch.testing.assert_close(scores, torch.tensor([[1.0, torch.e ** -0.8]]))
    # the vote is over cosines whatever the features' lengths (raw features overflowed exp)
    scaled = knn_predict(bank * torch.tensor([[50.0], [3.0], [80.0]]), labels,
                         torch.tensor([[40.0, 0.0]]), 2, k=2, temperature=0.5)
    torch.testing.assert_close(scaled, scores)
    # k above the bank's size (a small val run, k=200): every bank image votes, the farthest
    # too (cos 0: exp(-1 / T))
    every = knn_predict(bank, labels, torch.tensor([[1.0, 0.0]]), 2, k=200, temperature=0.5)
    torch.testing.assert_close(every, torch.tensor([[1.0, torch.e ** -0.8 + torch.e ** -2]]))


def test_half_precision_features_vote_in_float32():
    """exp(cos / 0.07) overflows float16 above cos ~0.78: AMP features gave inf votes, and
    two classes at inf tied to the lower index. Votes are counted in float32."""
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    labels = torch.tensor([0, 1, 0, 1])
    query = torch.tensor([[0.2, 1.0]])
    ref = knn_predict(bank, labels, query, 2, k=4)
    half = knn_predict(bank.half(), labels, query.half(), 2, k=4)
    assert half.dtype == torch.float32 and torch.isfinite(half).all()
    torch.testing.assert_close(half, ref, rtol=2e-2, atol=0)
    assert knn_top1(bank.half(), labels, query.half(), torch.tensor([1]), 4) == 100.0


@pytest.mark.parametrize('temperature', [0.011, 0.01, 1e-4])
def test_a_small_temperature_does_not_overflow_the_vote(temperature):
    """exp(cos / T) overflowed float32 for T below ~0.0113: every class with a neighbour got
    inf, and the tie went to class 0 (0% here instead of 100%)."""
    bank = torch.tensor([[1.0, 0.0], [0.99, 0.141], [0.98, 0.199]])
    labels = torch.tensor([1, 0, 0])
    query = torch.tensor([[1.0, 0.0]])
    scores = knn_predict(bank, labels, query, 2, k=3, temperature=temperature)
    assert torch.isfinite(scores).all() and scores.argmax(1).tolist() == [1], scores
    assert knn_top1(bank, labels, query, torch.tensor([1]), 2, k=3,
                    temperature=temperature) == 100.0


def test_pool_features_shapes():
    """The last output, average pooled (maps) or averaged (tokens), then L2-normalised: a norm
    of 1 alone held for any pooling (the first token, a max pool, the first output)."""
    unit = torch.nn.functional.normalize
    maps = (torch.randn(2, 8, 4, 4), torch.randn(2, 16, 2, 2))
    out = pool_features(maps)
    assert out.shape == (2, 16)
    torch.testing.assert_close(out, unit(maps[-1].mean(dim=(2, 3)), dim=1))
    tokens = torch.randn(3, 5, 7)
    torch.testing.assert_close(pool_features(tokens), unit(tokens.mean(dim=1), dim=1))
    # a ViT's last output (patch_tokens, cls_token): its last tensor, here (B, C)
    vit = ((torch.randn(2, 8, 3, 3), torch.randn(2, 8)), )
    torch.testing.assert_close(pool_features(vit), unit(vit[0][1], dim=1))
    with pytest.raises(ValueError, match='cannot pool'):
        pool_features(torch.randn(5))


def test_interval_validated():
    with pytest.raises(ValueError, match='interval'):
        KNNMonitorHook(train_dataloader={}, val_dataloader={}, interval=0)


@pytest.mark.parametrize('setting', [dict(k=0), dict(k=-3), dict(k=2.5), dict(temperature=0),
                                     dict(temperature=-0.07), dict(num_classes=0),
                                     dict(interval=0)])
def test_vote_settings_refused_when_the_hook_is_built(setting):
    """k=0 logged the share of class 0 as the accuracy (an empty vote argmaxes to 0) and a
    temperature <= 0 inverted or broke the weights, both without a word: refused when the
    runner builds the hook (train.py prints a StartCheckFailed as one line, exit 2)."""
    from genview_mm.engine import StartCheckFailed
    name = next(iter(setting))
    with pytest.raises(StartCheckFailed, match=f'KNNMonitorHook: {name} must be'):
        KNNMonitorHook(train_dataloader={}, val_dataloader={}, **setting)


def test_a_monitor_that_would_never_run_is_refused():
    """Under IterBasedTrainLoop, by_epoch=True fired once, at the very end (its single
    'epoch'), so the monitor never ran with an interval > 1, without a word. val_dataloader
    None was a TypeError; an infinite temperature gave every neighbour the same vote."""
    from types import SimpleNamespace

    from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

    from genview_mm.engine import StartCheckFailed
    hook = KNNMonitorHook(train_dataloader={}, val_dataloader={}, interval=2)
    built = []
    hook.build_loaders = built.append
    with pytest.raises(StartCheckFailed, match=r'KNNMonitorHook: by_epoch=True, but the run '
                       r'counts iterations \(IterBasedTrainLoop\): set by_epoch=False'):
        hook.before_train(SimpleNamespace(
            train_loop=IterBasedTrainLoop.__new__(IterBasedTrainLoop)))
    assert built == []
    hook.before_train(SimpleNamespace(train_loop=EpochBasedTrainLoop.__new__(EpochBasedTrainLoop)))
    iters = KNNMonitorHook(train_dataloader={}, val_dataloader={}, by_epoch=False, interval=2)
    iters.build_loaders = built.append
    iters.before_train(SimpleNamespace(train_loop=IterBasedTrainLoop.__new__(IterBasedTrainLoop)))
    assert len(built) == 2
    for setting, shown in ((dict(val_dataloader=None), 'val_dataloader must be a dataloader '
                            'config (a dict), got None'),
                           (dict(temperature=float('inf')), 'temperature must be a finite '
                            'number > 0, got inf')):
        with pytest.raises(StartCheckFailed, match=re.escape(f'KNNMonitorHook: {shown}')):
            KNNMonitorHook(**dict(dict(train_dataloader={}, val_dataloader={}), **setting))


def test_labels_outside_num_classes_refused():
    """A label >= num_classes crashed inside scatter_add_ with an index error."""
    bank, labels = clusters(3)
    with pytest.raises(ValueError, match=r'label 3 is outside 0\.\.2 \(num_classes=3\)'):
        knn_predict(bank, labels, bank[:2], 3)


def test_an_empty_memory_bank_is_refused():
    """No neighbours: every vote was 0, argmax said class 0, and the 'accuracy' was the
    share of class 0 (100.0 here)."""
    with pytest.raises(ValueError, match='the memory bank is empty'):
        knn_top1(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long), torch.randn(5, 8),
                 torch.zeros(5, dtype=torch.long), 10)


def test_an_image_without_a_label_is_left_out_of_the_bank():
    """Multi-label data: an image with no label gave no label but its features, so every label
    after it belonged to the image before it."""
    from types import SimpleNamespace

    from mmpretrain.structures import DataSample
    model = SimpleNamespace(data_preprocessor=lambda data, training: data,
                            backbone=lambda x: (x[:, :, None, None],))
    inputs = torch.eye(4)
    batch = dict(inputs=inputs, data_samples=[DataSample().set_gt_label(g)
                                              for g in ([3], [], [1, 2], [0])])
    hook = KNNMonitorHook(train_dataloader={}, val_dataloader={})
    feats, labels = hook.extract(model, [batch])
    assert labels.tolist() == [3, 1, 0]
    assert feats.argmax(1).tolist() == [0, 2, 3]  # the features of those images


def _gather_worker(rank, world, port, out_dir):
    init_gloo(rank, world, port)
    try:
        hook = KNNMonitorHook(train_dataloader={}, val_dataloader={})
        n = 3 if rank == 0 else 2  # unequal shares, as DefaultSampler(round_up=False) gives
        feats = torch.full((n, 4), float(rank))
        labels = torch.full((n,), rank, dtype=torch.long)
        out_feats, out_labels = hook.gather(feats, labels)
        torch.save((out_feats.tolist(), out_labels.tolist()),
                   os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_gather_across_ranks(tmp_path):
    run_processes(_gather_worker, (2, free_port(), str(tmp_path)))  # fails if a rank fails
    results = [torch.load(tmp_path / f'rank{r}.pth') for r in range(2)]
    for feats, labels in results:
        assert labels == [0, 0, 0, 1, 1]
        assert [row[0] for row in feats] == [0.0, 0.0, 0.0, 1.0, 1.0]


def _vote_worker(rank, world, port, out_dir):
    init_gloo(rank, world, port)
    try:
        import genview_mm.evaluation.knn as module
        voted, predict = [], module.knn_predict
        module.knn_predict = lambda bank, labels, query, *a: voted.append(len(query)) or predict(
            bank, labels, query, *a)
        bank = torch.eye(4)
        bank_labels = torch.arange(4)
        query = torch.eye(4)[[0, 1, 2]] if rank == 0 else torch.eye(4)[[3, 0]]
        query_labels = torch.tensor([0, 1, 3]) if rank == 0 else torch.tensor([3, 2])
        hook = KNNMonitorHook(train_dataloader={}, val_dataloader={}, k=1)
        top1 = hook.top1(bank, bank_labels, query, query_labels, torch.device('cpu'))
        torch.save((top1, voted), os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_each_rank_votes_for_its_own_queries(tmp_path):
    """Every rank voted for every rank's queries (gathered), on the CPU: minutes per evaluation
    at ImageNet's 10% bank, all GPUs idle. Now a rank votes for its share on the model's device
    and the hits are summed: 3 of the 5 queries are right on both ranks."""
    run_processes(_vote_worker, (2, free_port(), str(tmp_path)))
    results = [torch.load(tmp_path / f'rank{r}.pth') for r in range(2)]
    assert [voted for _, voted in results] == [[3], [2]]
    for (top1, count), _ in results:
        assert top1 == pytest.approx(60.0) and count == 5
    hook = KNNMonitorHook(train_dataloader={}, val_dataloader={})
    with pytest.raises(ValueError, match='no val features'):
        hook.top1(torch.eye(2), torch.arange(2), torch.zeros(0, 2), torch.zeros(0),
                  torch.device('cpu'))


def _stand_in_runner(model, name):
    from types import SimpleNamespace

    from mmengine.logging import MessageHub, MMLogger
    from mmengine.runner import Runner
    from mmengine.visualization import Visualizer
    return SimpleNamespace(
        model=model, seed=0, iter=7, epoch=0, message_hub=MessageHub.get_instance(name),
        build_dataloader=Runner.build_dataloader, visualizer=Visualizer.get_instance(f'{name}_vis'),
        logger=MMLogger.get_instance(f'{name}_log'))


@pytest.mark.parametrize('broken', ['missing', 'empty', 'unlabelled', 'undecodable'])
def test_hook_refuses_bad_loaders_before_training(tmp_path, broken):
    """Data the vote cannot use fails in before_train, naming the loader: found only at the
    first evaluation, after an epoch, the error came before that epoch's checkpoint was saved.
    A first image that does not decode was a traceback (not named by loader)."""
    import glob
    import shutil

    from mmengine.registry import DefaultScope

    from genview_mm.engine import StartCheckFailed
    write_class_folders(str(tmp_path / 'train'), per_class=2, seed=0)
    shutil.copytree(tmp_path / 'train', tmp_path / 'bad')
    with open(sorted(glob.glob(str(tmp_path / 'bad' / '*' / '*')))[0], 'wb') as f:
        f.write(b'not an image')
    (tmp_path / 'missing').mkdir()
    (tmp_path / 'empty.txt').write_text('')
    val = dict(missing=dict(data_root=str(tmp_path / 'missing')),
               empty=dict(data_root=str(tmp_path / 'train'), ann_file=str(tmp_path / 'empty.txt')),
               unlabelled=dict(data_root=str(tmp_path / 'train'), with_label=False),
               undecodable=dict(data_root=str(tmp_path / 'bad')))[broken]
    loader = lambda **ds: dict(batch_size=2, dataset=dict(  # noqa: E731
        type='CustomDataset', pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')],
        **ds))
    hook = KNNMonitorHook(loader(data_root=str(tmp_path / 'train')), loader(**val))
    runner = _stand_in_runner(torch.nn.Linear(1, 1), f'knn_refuse_{broken}')
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            pytest.raises(Exception, match='val_dataloader') as exc:
        hook.before_train(runner)
    assert {'missing': 'Found 0 files', 'empty': 'its val_dataloader: ',
            'unlabelled': 'without labels',
            'undecodable': 'its val_dataloader: its first image could not be read through its '
                           'pipeline ('}[broken] in str(exc.value)
    assert broken != 'undecodable' or exc.type is StartCheckFailed  # one line, exit 2
    assert len(hook.loaders['train'].dataset) == 6  # the good one was built and checked


@pytest.mark.parametrize('split', ['train', 'val'])
def test_num_classes_below_the_labels_refused_before_training(tmp_path, split):
    """num_classes at or below the largest label crashed the first evaluation, after an epoch
    (scatter_add_ out of range): the loaders' labels are checked in before_train."""
    from mmengine.registry import DefaultScope

    from genview_mm.engine import StartCheckFailed
    names = write_class_folders(str(tmp_path / 'data'), per_class=2, seed=0)
    two = tmp_path / 'two.txt'  # the first two classes only
    two.write_text(''.join(f'{n}/0.png {i}\n' for i, n in enumerate(names[:2])))
    loader = lambda **ds: dict(batch_size=2, dataset=dict(  # noqa: E731
        type='CustomDataset', data_root=str(tmp_path / 'data'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')], **ds))
    full, small = loader(), loader(ann_file=str(two))
    cfgs = (full, small) if split == 'train' else (small, full)
    hook = KNNMonitorHook(*cfgs, num_classes=2)
    runner = _stand_in_runner(torch.nn.Linear(1, 1), f'knn_classes_{split}')
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            pytest.raises(StartCheckFailed, match=f'its {split}_dataloader has label 2 .* '
                                                  'num_classes=2'):
        hook.before_train(runner)
    ok = KNNMonitorHook(small, small, num_classes=2)  # labels 0 and 1 fit
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ok.before_train(runner)
    assert len(ok.loaders['val'].dataset) == 2


def test_num_classes_check_passes_an_image_without_a_label():
    """Multi-label data: an image with no label (its gt_label []) was a ValueError of np.max
    (a zero-size array) before training when num_classes was set; extract leaves it out."""
    from genview_mm.engine import StartCheckFailed
    infos = [dict(gt_label=[1, 2]), dict(gt_label=[]), dict(gt_label=[0])]
    dataset = type('Labels', (), dict(get_data_info=lambda self, i: infos[i],
                                      __len__=lambda self: len(infos)))()
    hook = KNNMonitorHook(train_dataloader={}, val_dataloader={}, num_classes=3)
    hook._check_labels('what', dataset)  # labels 0 to 2 fit
    with pytest.raises(StartCheckFailed, match='what has label 2 but num_classes=2'):
        KNNMonitorHook(train_dataloader={}, val_dataloader={},
                       num_classes=2)._check_labels('what', dataset)


@pytest.mark.parametrize('val_classes', ['one_less_first', 'one_more', 'one_less_last'])
def test_datasets_numbering_classes_differently_are_refused(tmp_path, val_classes):
    """Folder datasets number their class folders in order: a val set without the first class
    shifted every later label, and the vote scored 0% (logged as a result, no warning). A val
    set without the last class numbers the others alike: it is used; so are class lists that
    share no name (ImageNet's descriptions against wnid folders, labels alike)."""
    import shutil

    from mmengine.registry import DefaultScope

    from genview_mm.engine import StartCheckFailed
    names = write_class_folders(str(tmp_path / 'train'), per_class=2, seed=0)
    write_class_folders(str(tmp_path / 'val'), per_class=1, seed=1)
    if val_classes == 'one_more':
        shutil.copytree(tmp_path / 'val' / names[-1], tmp_path / 'val' / 'zz_extra')
    else:
        shutil.rmtree(tmp_path / 'val' / names[0 if val_classes == 'one_less_first' else -1])
    loader = lambda split: dict(batch_size=2, dataset=dict(  # noqa: E731
        type='CustomDataset', data_root=str(tmp_path / split),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
    hook = KNNMonitorHook(loader('train'), loader('val'))
    runner = _stand_in_runner(torch.nn.Linear(1, 1), f'knn_names_{val_classes}')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        if val_classes == 'one_less_last':
            hook.before_train(runner)
            assert len(hook.loaders['val'].dataset) == len(names) - 1
            named = dict(loader('train')['dataset'], classes=[f'the {n}' for n in names])
            other = KNNMonitorHook(dict(loader('train'), dataset=named), loader('val'))
            other.before_train(runner)  # no name in common: not compared
            assert other.loaders['train'].dataset.metainfo['classes'][0] == f'the {names[0]}'
            return
        with pytest.raises(StartCheckFailed) as exc:
            hook.before_train(runner)
    first = {'one_less_first': f"label 0 is {names[0]!r} in train, {names[1]!r} in val; "
             f"{len(names)} and {len(names) - 1} classes",
             'one_more': f"label {len(names)} is none in train, 'zz_extra' in val; "
             f"{len(names)} and {len(names) + 1} classes"}[val_classes]
    assert str(exc.value) == (
        'KNNMonitorHook: its train_dataloader and val_dataloader number their classes '
        f'differently ({first}): give both datasets the same classes (every class folder in '
        'both, or the same classes=[...] list), or annotation lists with the same labels')


def test_hook_evaluate_logs_to_message_hub(tmp_path):
    """evaluate() on a real (tiny) MoCo with separable colour classes, with a stand-in runner."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    write_class_folders(str(tmp_path / 'train'), per_class=6, seed=0)
    write_class_folders(str(tmp_path / 'val'), per_class=3, seed=1)
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='MoCo', queue_len=8, feat_dim=8, backbone=dict(type='ResNet', depth=18),
        neck=dict(type='MoCoV2Neck', in_channels=512, hid_channels=16, out_channels=8),
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2),
        data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], to_rgb=True)))
    model.train()
    loader = lambda split: dict(batch_size=5, dataset=dict(  # noqa: E731
        type='CustomDataset', data_root=str(tmp_path / split),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
    hook = KNNMonitorHook(loader('train'), loader('val'), k=5)
    runner = _stand_in_runner(model, 'knn_hook_test')
    hub = runner.message_hub
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # as inside an mmpretrain Runner
        top1 = hook.evaluate(runner, 'after iter 7', 7)
    # each pass over a loader drew a base seed from the global generator: adding the monitor
    # changed every later random draw of training (augmentations, the queue's init, ...)
    assert torch.equal(torch.rand(3), expected)
    assert top1 > 80.0
    assert hub.get_scalar('knn/top1').current() == top1 == hub.get_info('knn/top1')
    assert model.training  # restored after extraction
    assert len(hook.loaders['train'].dataset) == 18 and len(hook.loaders['val'].dataset) == 9


def test_hook_runs_after_the_epoch_checkpoint_is_saved(tmp_path):
    """The hook (priority LOW) evaluated before CheckpointHook (VERY_LOW) saved the epoch: a
    corrupt validation image or an out-of-memory kNN pass lost that epoch's checkpoint."""
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner
    loader = dict(batch_size=2, dataset=dict(type='CustomDataset', data_root=str(tmp_path)))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        runner = Runner(model=torch.nn.Module(), work_dir=str(tmp_path / 'work'),
                        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
                        custom_hooks=[KNNMonitorHook(loader, loader)],
                        experiment_name='knn_after_checkpoint')
    names = [type(h).__name__ for h in runner.hooks]
    assert names.index('CheckpointHook') < names.index('KNNMonitorHook')
