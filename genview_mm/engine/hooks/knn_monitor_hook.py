"""A training hook that reports weighted-kNN top-1 of the backbone during pretraining.

Add it to a pretraining config to watch representation quality without a 90-epoch linear probe
(``_base_.custom_hooks +``: a GenView config's list holds its ``GenViewPairHook``)::

    custom_hooks = _base_.custom_hooks + [dict(
        type='KNNMonitorHook', interval=10,
        train_dataloader=dict(batch_size=256, num_workers=8, dataset=dict(
            type='ImageNet', data_root='data/imagenet', ann_file='meta/train_10percent.txt',
            data_prefix='train', pipeline=knn_pipeline)),
        val_dataloader=dict(batch_size=256, num_workers=8, dataset=dict(
            type='ImageNet', data_root='data/imagenet', ann_file='meta/val.txt',
            data_prefix='val', pipeline=knn_pipeline)))]

with e.g. ``knn_pipeline = [dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=256,
edge='short'), dict(type='CenterCrop', crop_size=224), dict(type='PackInputs')]``.
The hook sets each loader's sampler (no shuffle, no padding) and ``default_collate`` itself, runs
the model's own data preprocessor (so normalisation matches pretraining), pools and
L2-normalises the last backbone output, gathers the labelled bank from all ranks (each rank
votes for its own share of the queries on the model's device, and the hits are summed) and logs
``knn/top1`` (logger line, message hub scalar, visualizer scalar -> ``vis_data/scalars.json``).
It runs after the epoch's checkpoint is saved: an evaluation that fails loses no epoch.
"""
import copy
from typing import Optional, Tuple

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from genview_mm.evaluation.knn import knn_hits, pool_features
from genview_mm.utils.dist import summed_counts

from ..errors import StartCheckFailed, is_count, refuse_settings


@HOOKS.register_module()
class KNNMonitorHook(Hook):
    """Report weighted kNN top-1 (InstDisc's vote; k=20 as DINO reports it)
    every ``interval`` epochs or iterations.

    Args:
        train_dataloader (dict): labelled memory-bank loader config (dataset, batch_size, ...).
        val_dataloader (dict): labelled query loader config.
        interval (int): evaluate every ``interval`` epochs (or iterations). Defaults to 1.
        by_epoch (bool): count ``interval`` in epochs, else in iterations. Defaults to True.
        k (int): neighbours, >= 1. Defaults to 20 (InstDisc used 200).
        temperature (float): vote temperature, > 0. Defaults to 0.07.
        num_classes (int, optional): defaults to 1 + the largest label of the bank (the vote
            predicts no other); a set value is checked against both loaders' labels at start.
        before_train (bool): also evaluate once before training. Defaults to False.
        prefix (str): metric name prefix. Defaults to 'knn'.
    """

    priority = 'VERY_LOW'  # after CheckpointHook (a default hook, registered first): a failing
    # evaluation at the end of an epoch no longer loses that epoch's checkpoint

    def __init__(self, train_dataloader: dict, val_dataloader: dict, interval: int = 1,
                 by_epoch: bool = True, k: int = 20, temperature: float = 0.07,
                 num_classes: Optional[int] = None, before_train: bool = False,
                 prefix: str = 'knn') -> None:
        # k=0 logged the share of class 0 as the accuracy, a temperature <= 0 inverted weights
        refuse_settings('KNNMonitorHook', (
            ('interval', interval, is_count(interval), 'an integer >= 1'),
            ('k', k, is_count(k), 'an integer >= 1'),
            ('temperature', temperature, isinstance(temperature, (int, float)) and
             0 < temperature < float('inf'), 'a finite number > 0'),  # inf: equal votes
            ('train_dataloader', train_dataloader, isinstance(train_dataloader, dict),
             'a dataloader config (a dict)'),
            ('val_dataloader', val_dataloader, isinstance(val_dataloader, dict),
             'a dataloader config (a dict)'),
            ('num_classes', num_classes, num_classes is None or is_count(num_classes),
             'an integer >= 1')))
        self.loader_cfgs = {'train': self._loader_cfg(train_dataloader),
                            'val': self._loader_cfg(val_dataloader)}
        self.loaders: dict = {}
        self.interval, self.by_epoch = interval, by_epoch
        self.k, self.temperature, self.num_classes = k, temperature, num_classes
        self.at_start, self.prefix = before_train, prefix

    @staticmethod
    def _loader_cfg(cfg: dict) -> dict:
        cfg = copy.deepcopy(dict(cfg))
        cfg['sampler'] = dict(type='DefaultSampler', shuffle=False, round_up=False)
        cfg['collate_fn'] = dict(type='default_collate')
        cfg.setdefault('num_workers', 0)
        return cfg

    def before_train(self, runner) -> None:
        from mmengine.runner import IterBasedTrainLoop
        loop = getattr(runner, 'train_loop', None)
        if self.by_epoch and isinstance(loop, IterBasedTrainLoop):  # a single 'epoch'
            raise StartCheckFailed(   # at the very end: the monitor never ran, without a word
                'KNNMonitorHook: by_epoch=True, but the run counts iterations '
                f'({type(loop).__name__}): set by_epoch=False and an interval in '
                "iterations, e.g. dict(type='KNNMonitorHook', by_epoch=False, interval=5000, "
                '...)')
        self.build_loaders(runner)  # bad data fails now, not after an epoch (that checkpoint lost)
        if self.at_start:
            self.evaluate(runner, 'before training', runner.iter)

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self.every_n_epochs(runner, self.interval):
            self.evaluate(runner, f'after epoch {runner.epoch + 1}', runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.by_epoch and self.every_n_train_iters(runner, self.interval):
            self.evaluate(runner, f'after iter {runner.iter + 1}', runner.iter + 1)

    def build_loaders(self, runner) -> None:
        """Build the two loaders once and check that each has images with labels (a
        StartCheckFailed naming the loader otherwise): the hook's first evaluation comes after the
        first epoch, and an error there loses that epoch's checkpoint."""
        for split, cfg in self.loader_cfgs.items():
            if split in self.loaders:
                continue
            what = f'KNNMonitorHook: its {split}_dataloader'
            try:
                loader = runner.build_dataloader(cfg, seed=runner.seed)
            except (OSError, RuntimeError, ValueError) as exc:  # missing data, bad settings
                raise StartCheckFailed(f'{what}: {exc}') from exc
            self.loaders[split] = loader
            if len(loader.dataset) == 0:
                raise StartCheckFailed(f'{what} has no images: check its dataset (data_root, '
                                       'ann_file, data_prefix)')
            try:
                sample = loader.dataset[0].get('data_samples')
            except Exception as exc:  # noqa: BLE001  an image that does not decode, a step
                raise StartCheckFailed(f'{what}: its first image could not be read through its '
                                       f'pipeline ({type(exc).__name__}: {exc})') from exc
            if sample is None or 'gt_label' not in sample:
                raise StartCheckFailed(f'{what} gives images without labels: the kNN vote needs '
                                       'them (a labelled dataset, with_label=True, and PackInputs '
                                       'in its pipeline)')
            self._check_labels(what, loader.dataset)
        self._check_classes()

    def _check_classes(self) -> None:
        """The two datasets number the same classes alike: a folder dataset numbers its class
        folders in their order, so a val set without one class shifted the labels after it and
        the vote scored 0%, logged as a result. Lists that share no name (ImageNet's
        descriptions against wnid folders) say nothing of the numbering and are not compared."""
        names = {split: tuple((getattr(loader.dataset, 'metainfo', None) or {}).get('classes')
                              or ()) for split, loader in self.loaders.items()}
        bank, query = names.get('train'), names.get('val')
        if bank and query and set(bank) & set(query) and query != bank[:len(query)]:
            first = next((i for i, (a, b) in enumerate(zip(bank, query)) if a != b),
                         min(len(bank), len(query)))
            raise StartCheckFailed(
                f'KNNMonitorHook: its train_dataloader and val_dataloader number their classes '
                f'differently (label {first} is {_at(bank, first)} in train, {_at(query, first)} '
                f'in val; {len(bank)} and {len(query)} classes): give both datasets the same '
                'classes (every class folder in both, or the same classes=[...] list), or '
                'annotation lists with the same labels')

    def _check_labels(self, what: str, dataset) -> None:
        """A set ``num_classes`` at or below a label crashed the first evaluation, an epoch in
        (an image without a label, multi-label data's ``[]``, has none to check)."""
        if self.num_classes is None:  # 1 + the largest bank label: every label fits
            return
        largest = max((int(np.max(dataset.get_data_info(i).get('gt_label', -1), initial=-1))
                       for i in range(len(dataset))), default=-1)
        if largest >= self.num_classes:
            raise StartCheckFailed(f'{what} has label {largest} but num_classes={self.num_classes}'
                                   f': set num_classes to at least {largest + 1} (or leave it '
                                   'unset: 1 + the largest label of the bank)')

    @torch.no_grad()
    def extract(self, model, loader) -> Tuple[torch.Tensor, torch.Tensor]:
        """Pooled, L2-normalised backbone features and labels of this rank's share of a loader:
        an image's first label; an image without one (multi-label data) is left out (its
        features once shifted every label after it)."""
        feats, labels = [], []
        for data in loader:
            data = model.data_preprocessor(data, False)
            inputs = data['inputs']
            if isinstance(inputs, (list, tuple)):  # multi-view layout: take the single view
                inputs = inputs[0]
            feats.append(pool_features(model.backbone(inputs)).cpu())
            labels.append(torch.cat([s.gt_label.view(-1)[:1] if s.gt_label.numel() else
                                     s.gt_label.new_full((1,), -1) for s in data['data_samples']]))
        if not feats:
            return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
        feats, labels = torch.cat(feats), torch.cat(labels).long().cpu()
        return feats[labels >= 0], labels[labels >= 0]

    def gather(self, feats: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor,
                                                                          torch.Tensor]:
        """Concatenate every rank's features (the samplers do not pad, so nothing repeats)."""
        if get_world_size() == 1:
            return feats, labels
        parts = [p for p in all_gather_object((feats, labels)) if p[0].numel()]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def top1(self, bank: torch.Tensor, bank_labels: torch.Tensor, query: torch.Tensor,
             query_labels: torch.Tensor, device: torch.device) -> Tuple[float, int]:
        """Top-1 (percent) over every rank's queries, and their count: this rank votes for its
        own ``query`` against the whole ``bank`` on ``device`` and the hits are summed (each
        rank voting for all the queries on the CPU took minutes per evaluation)."""
        num_classes = self.num_classes or int(bank_labels.max()) + 1  # no other is predicted
        hits = knn_hits(bank.to(device), bank_labels, query.to(device), query_labels,
                        num_classes, self.k, self.temperature)
        hits, count = summed_counts(hits, len(query))
        if count == 0:
            raise ValueError('no val features to classify')
        return 100.0 * (hits / count), int(count)

    def evaluate(self, runner, when: str = '', step: Optional[int] = None) -> float:
        """Extract features, run the kNN vote and log ``<prefix>/top1``.

        Args:
            runner: the MMEngine runner.
            when (str): where in training this is, for the log line.
            step (int, optional): x value of the visualizer scalar. Defaults to ``runner.iter``.
        """
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.build_loaders(runner)
        was_training = model.training
        model.eval()
        try:  # each pass over a loader draws a base seed from torch's global generator: forked,
            # training's random stream stays as it is without the monitor
            with torch.random.fork_rng(devices=[]):
                bank, bank_labels = self.gather(*self.extract(model, self.loaders['train']))
                query, query_labels = self.extract(model, self.loaders['val'])  # rank's share
        finally:
            model.train(was_training)
        device = next(model.parameters(), torch.zeros(0)).device
        top1, num_queries = self.top1(bank, bank_labels, query, query_labels, device)
        key = f'{self.prefix}/top1'
        runner.message_hub.update_scalar(key, top1)
        runner.message_hub.update_info(key, top1)
        runner.visualizer.add_scalars({key: top1}, step=runner.iter if step is None else step)
        runner.logger.info(f'{key}: {top1:.2f} (weighted kNN, k={self.k}, T={self.temperature}, '
                           f'{len(bank)} train / {num_queries} val images) {when}'.rstrip())
        return top1


def _at(names: tuple, index: int) -> str:
    """The class named at ``index``, quoted, or 'none'."""
    return repr(names[index]) if index < len(names) else 'none'

