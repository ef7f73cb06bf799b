"""GenViewPairHook: checks the manifest against the dataset at start and logs pair statistics."""
import os.path as osp
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from genview_mm.datasets.transforms.genview_pair import GEN_KEYS, GenViewPairDataset
from genview_mm.structures.manifest import is_remote, manifest_file
from genview_mm.utils.dist import summed_counts
from genview_mm.utils.file_safety import same_picture

from ..errors import RunCheckFailed, StartCheckFailed, is_count, refuse_settings


def _parts(dataset) -> list:
    """The datasets a (wrapped) dataset draws its samples from: a ConcatDataset's parts, the
    dataset a wrapper (RepeatDataset, ClassBalancedDataset, ...) holds; none for a plain one."""
    inner = getattr(dataset, 'dataset', None)
    return [*(getattr(dataset, 'datasets', None) or []), *([inner] if inner is not None else [])]


def _own_pair_transforms(dataset) -> list:
    return [t for t in getattr(getattr(dataset, 'pipeline', None), 'transforms', [])
            if isinstance(t, GenViewPairDataset)]


def find_pair_transforms(dataset) -> Iterator[tuple]:
    """Yield (dataset, GenViewPairDataset) for every pipeline in a (wrapped) dataset."""
    for sub in _parts(dataset):
        yield from find_pair_transforms(sub)
    for t in _own_pair_transforms(dataset):
        yield dataset, t


def has_plain_part(dataset) -> bool:
    """Whether some samples of a (wrapped) dataset come through no ``GenViewPairDataset``: a
    part of a ConcatDataset without one. A wrapper that repeats or resamples its dataset has
    the parts of the dataset it wraps (their lengths differ: comparing them took a repeated
    GenView dataset for one with plain parts)."""
    if _own_pair_transforms(dataset):
        return False
    parts = _parts(dataset)
    return not parts or any(has_plain_part(part) for part in parts)


def _read_index(transform: GenViewPairDataset):
    """The transform's manifest index; a manifest that is gone or has a damaged row is a
    :class:`StartCheckFailed` naming the file (and line)."""
    try:
        return transform.index
    except (OSError, ValueError) as exc:
        raise StartCheckFailed(f'GenView: {exc}') from None


def _image_path(dataset, index: int) -> str:
    """The image file of sample ``index``; a dataset without one (in memory, like MMPretrain's
    CIFAR-10) is a :class:`StartCheckFailed`: its views cannot be looked up."""
    path = dataset.get_data_info(index).get('img_path')
    if path is None:
        raise StartCheckFailed(
            f'GenView: GenViewPairDataset needs image files: sample {index} has no img_path '
            f'({type(dataset).__name__} holds its images in memory), so no sample could get a '
            'generated view and the run would be plain SSL: use a dataset of image files, or '
            'set genview.prob=0')
    return path


def outside_note(stats) -> str:
    """What the coverage line says about views outside the manifest's folder ('' if none)."""
    outside = stats['absolute'] + stats['climbs']
    return (f' {outside} of its {stats["ok"]} views lie outside the manifest\'s folder.'
            if outside else '')


def sampled_views(paths: Sequence[str], matched: Sequence[tuple],
                  sample: int = 200) -> List[Tuple[str, str]]:
    """``(image, its first view)`` for an even sample of ``sample`` of ``paths`` that have views
    (``matched``: their :meth:`ManifestIndex.matches`)."""
    found = [(p, views[0][0]) for p, (_, views) in zip(paths, matched) if views]
    return found[::max(1, -(-len(found) // sample))][:sample]


def unusable_views(picked: Sequence[Tuple[str, str]],
                   load: Callable[[dict], Optional[dict]]) -> List[str]:
    """The views of ``picked`` (:func:`sampled_views`) that ``load`` (the transform's loader:
    training's backend and decoder) cannot read and decode: missing, empty or undecodable (an
    error page saved as a view)."""
    def usable(path: str) -> bool:
        try:
            return load(dict(img_path=path)) is not None
        except Exception:  # noqa: BLE001  (what training's loader raises: it falls back)
            return False
    return [view for _, view in picked if not usable(view)]


def views_of_themselves(picked: Sequence[Tuple[str, str]]) -> List[str]:
    """The images of ``picked`` (:func:`sampled_views`) whose view is the image itself, or a
    copy of it (a manifest imported with the views and source folders swapped, or from a
    views folder copied from the sources: every pair two views of the original, plain SSL)."""
    return [p for p, view in picked if _same(p) == _same(view) or same_picture(view, p)]


def _manifest_id(transform: GenViewPairDataset) -> str:
    """One name of the manifest file ``transform`` reads, however it is given: its folder
    (``out/``) or the file, through a link or not (a remote one as it is)."""
    backend = transform.loader.backend_args
    path = manifest_file(transform.manifest, backend)
    return path if is_remote(path, backend) else osp.realpath(path)


def _same(path: str) -> str:
    """One spelling of a local path (``a/./b``, ``a//b``); a remote one as it is."""
    return path if '://' in path else osp.normpath(path)


def shared_keys(members: Sequence[tuple]) -> Tuple[int, Optional[Tuple[str, str, str]]]:
    """How many images (distinct paths; every image, not a sample: two that collide are rarely
    both in one) of the ``(dataset, index)`` pairs that read one manifest (one dataset, or the
    parts of a ConcatDataset; ``index``: their :class:`ManifestIndex`) match the same rows as
    another, and an example ``(key, path, other path)``: each would be paired with the other's
    views (a manifest made for part of the data, or for another layout, matched by a shorter
    trailing path). ImageNet's 1.28M images: about 10 s."""
    first: dict = {}  # identity -> (member, index) of its first image (read again on a clash)
    shared, example = set(), None
    for m, (dataset, index) in enumerate(members):
        for i in range(len(dataset)):
            path = _same(_image_path(dataset, i))  # an in-memory part: one clear line
            ident = index.identity(path)
            if ident is None:
                continue
            j, k = first.setdefault(ident, (m, i))
            other = path if (j, k) == (m, i) else _same(_image_path(members[j][0], k))
            if other != path:
                shared.update((other, path))
                example = example or (ident[0], other, path)
    return len(shared), example


def manifest_warnings(index, logger) -> None:
    """Warn about a manifest's failed rows, about outputs outside its folder unless all of
    them climb out together (views imported in place by tools/import_views.py), and about a
    ``min_clip_sim`` that cannot filter rows recording no similarity."""
    stats, name = index.stats, index.manifest
    if index.min_clip_sim is not None and stats['no_clip_sim']:
        logger.warning(
            f'GenView manifest {name}: min_clip_sim={index.min_clip_sim} filters none of its '
            f'{stats["no_clip_sim"]} of {stats["ok"]} views that record no clip_sim (imported '
            'views have none): they are all kept. Generate the views with '
            'tools/generate_views.py to filter them, or set min_clip_sim to None.')
    if stats['failed']:
        logger.warning(
            f'GenView manifest {name}: {stats["failed"]} rows failed and give no view, '
            f'{stats["undecodable"]} of them "undecodable" (source images that could not be '
            'decoded: check or remove those files, training reads them too); rerun '
            'tools/generate_views.py to retry the others (--retry-failed for undecodable).')
    if stats['absolute'] or 0 < stats['climbs'] < stats['ok']:
        logger.warning(
            f'GenView manifest {name}: {stats["absolute"]} of its {stats["ok"]} ok rows have an '
            f'absolute `output` and {stats["climbs"]} one that climbs out of the manifest\'s '
            "folder ('..'), so those views are read from elsewhere: a manifest written for "
            'another machine, merged or edited by hand? Outputs are paths relative to the '
            "manifest's folder (tools/generate_views.py and tools/import_views.py write them).")
    if stats['duplicates']:
        logger.warning(
            f'GenView manifest {name}: {stats["duplicates"]} ok rows list a view already listed '
            '(manifests concatenated?); each view is used once. tools/merge_manifests.py writes '
            'one row per view.')
    if stats['conflicts']:
        logger.warning(
            f'GenView manifest {name}: {stats["conflicts"]} ok rows give another view of an '
            'image variation already listed (manifests of different runs concatenated?): those '
            'images draw from each of their views. tools/merge_manifests.py keeps the newest '
            'row of each image variation.')
    if stats['shared_views']:
        logger.warning(
            f'GenView manifest {name}: {stats["shared_views"]} ok rows give a view that another '
            'image lists too (one output named for several images: a manifest written or '
            'edited by hand?): those images are paired with the same generated picture. Each '
            'image needs views of its own (tools/generate_views.py and tools/import_views.py '
            'write them).')


_STATE = 'genview_pair_hook'  # the hook's counts in a checkpoint's meta


def _scored_globally(runner) -> bool:
    """Whether the model normalises its weights over the global batch
    (``normalize='global'``): each process's ``genview_nonfinite`` then counts the scores of
    all processes, and their sum would count each score once per process."""
    model = getattr(runner, 'model', None)
    model = model.module if is_model_wrapper(model) else model
    return getattr(model, 'normalize', None) == 'global'


@HOOKS.register_module()
class GenViewPairHook(Hook):
    """Validates GenView data at the start of training and logs how pairs were built.

    ``before_train``: for every ``GenViewPairDataset`` in the training pipeline, counts how many
    of the dataset's images have a generated view (all of them, or an evenly spaced sample of
    ``max_check`` for bigger datasets) and logs the coverage, as a warning when it is below
    100% (those images' pairs come from the original twice, whatever ``prob``); a manifest
    that matches none of the images raises :class:`~genview_mm.engine.errors.StartCheckFailed`
    (a ``ValueError``) that names both sides, instead of silently training without generated
    views, and so do images (all of them) that match the same rows as another (each would be paired
    with the other's views), sampled images whose rows were made from another picture (their
    key matched, their recorded source is a different local file: most of those compared, a
    manifest of another dataset with the same file names; a few are a warning, re-saved
    images) and a sample of 200 view files of which most are missing,
    empty or undecodable (read as training reads them; fewer are counted in the coverage line,
    a warning). It also warns, once per manifest,
    about rows that give no view (failed, ``undecodable`` sources among them) and rows whose
    ``output`` is absolute or climbs out of the manifest's folder (``..``; counted in the
    coverage line, and a warning unless all views climb out together, as views imported in
    place do). With ``prob=0`` nothing is read: the pairs are ``MultiView``'s.

    ``after_train_iter``: logs ``train/genview_gen_frac`` (fraction of pairs with a generated
    view), ``train/genview_noise_level`` (mean noise level of the generated views whose level
    is known; not logged when none is, as for views imported without their level lists) and
    ``train/genview_fallbacks`` (generated files that could not be read, summed over training
    and continued by ``--resume``; like the losses MMEngine logs, all three are this process's:
    rank 0's share of the batches in a distributed run); when more than
    ``max_fallback_fraction`` of the last ``fallback_window`` generated views drawn could not
    be read (their images trained on the original; counted over all processes together, like
    the streak below, with one all-reduce of three numbers an iteration, so that every process
    stops at the same iteration), it raises
    :class:`~genview_mm.engine.errors.RunCheckFailed` (the window and the streak below are saved
    in checkpoints: a resumed run stops where the run uninterrupted would, unless every view
    file the start check samples reads, on every process: the window's unreadable views are
    then forgotten, as after views restored for the ``--resume`` that the error message
    advises).
    These need the fields GenViewPairDataset adds in the data samples:
    ``PackInputs(algorithm_keys=GEN_KEYS)`` (or ``meta_keys``), as every GenView config has;
    when a pipeline drops them while generated views are in use, it warns once, at the first
    iteration. It also reads the model's ``genview_nonfinite``: a batch with a score that is
    not finite trains with uniform weights (the upstream loss; the model decides it on the
    device, without a sync), so the first such batch is a warning and ``max_unweighted`` in a
    row raise :class:`~genview_mm.engine.errors.RunCheckFailed` (a scorer that fails every
    iteration would otherwise turn the run into the baseline).

    Args:
        max_check (int): most images checked at start. Defaults to 50000.
        min_coverage (float): raise if the checked coverage is below this. Defaults to 0 (raise
            only when nothing matches).
        max_unweighted (int): iterations in a row with non-finite scores (on any process) that
            stop training; 0: never. Defaults to 100.
        max_fallback_fraction (float): the fraction of unreadable generated views, over a
            window, that stops training; 1: never. Defaults to 0.5.
        fallback_window (int): generated views drawn per window. Defaults to 1000.
        check_sources (bool): refuse sampled images whose rows were made from another local
            file; False where this data is a re-encoded or resized copy of the images the
            views were made from, with those still in place. Defaults to True.
    """

    priority = 'NORMAL'

    def __init__(self, max_check: int = 50000, min_coverage: float = 0.0,
                 max_unweighted: int = 100, max_fallback_fraction: float = 0.5,
                 fallback_window: int = 1000, check_sources: bool = True) -> None:
        # 0 checked images read as 'no view matches'; a value < 0 stopped healthy runs; a float
        # (1e5) was a TypeError of np.linspace at the start of training, on a bigger dataset
        refuse_settings('GenViewPairHook', (
            ('max_check', max_check, is_count(max_check), 'an integer >= 1'),
            ('min_coverage', min_coverage, isinstance(min_coverage, (int, float))
             and 0 <= min_coverage <= 1, 'in [0, 1]'),
            ('max_unweighted', max_unweighted, max_unweighted >= 0, '>= 0 (0: never stop)'),
            ('max_fallback_fraction', max_fallback_fraction, 0 <= max_fallback_fraction <= 1,
             'in [0, 1] (1: never stop)'),
            ('fallback_window', fallback_window, fallback_window >= 1, 'an integer >= 1'),
            ('check_sources', check_sources, isinstance(check_sources, bool), 'True or False')))
        self.max_check = max_check
        self.min_coverage = min_coverage
        self.max_unweighted = max_unweighted
        self.max_fallback_fraction, self.fallback_window = max_fallback_fraction, fallback_window
        self.check_sources = check_sources
        self.fallbacks = self._unweighted = 0
        self._window = [0, 0]  # generated views drawn, of them unreadable
        self._expects_fields = self._warned_fields = self._warned_scores = False
        self._plain_parts = False  # the dataset has samples no GenView transform makes
        self._loaded: Optional[dict] = None  # the counts a loaded checkpoint holds

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """The fallback window and the unweighted streak go into the checkpoint, so that a
        resumed run stops where the same run uninterrupted would."""
        checkpoint.setdefault('meta', {})[_STATE] = dict(window=list(self._window),
                                                         unweighted=self._unweighted)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = (checkpoint.get('meta') or {}).get(_STATE)

    def before_train(self, runner) -> None:
        resumed = runner.message_hub.log_scalars.get('train/genview_fallbacks')
        self.fallbacks = int(resumed.current()) if resumed is not None else 0
        self._expects_fields = self._warned_fields = self._warned_scores = False
        state = self._loaded if resumed is not None else None  # a resume, not a load_from
        self._unweighted, self._window = 0, [0, 0]
        if isinstance(state, dict):
            self._unweighted, self._window = int(state['unweighted']), list(state['window'])
        dataset = runner.train_dataloader.dataset
        found, warned, readers, checked = False, set(), {}, {}
        sampled = unreadable = 0  # view files read by the start check, and how many failed
        pairs = list(find_pair_transforms(dataset))
        # a ConcatDataset part without GenView: its samples (and whole batches) carry no fields
        self._plain_parts = has_plain_part(dataset)
        for ds, transform in pairs:  # the datasets reading each manifest, checked together
            if transform.prob > 0:
                index = _read_index(transform)
                readers.setdefault(_manifest_id(transform), []).append((ds, index))
        for ds, transform in pairs:
            found = True
            self._expects_fields |= transform.prob > 0
            if transform.prob <= 0:
                runner.logger.info('GenView: prob 0, no generated view is used (the pairs are '
                                   "MultiView's); the manifest is not read.")
                continue
            n = len(ds)
            if not n:  # else: 'matches 0 of 0 dataset images ... generate views'
                raise StartCheckFailed(
                    f'The training dataset {type(ds).__name__} (pipeline with '
                    'GenViewPairDataset) has no images: check its data_root, ann_file and '
                    'data_prefix.')
            idx = np.unique(np.linspace(0, n - 1, min(n, self.max_check)).astype(int))
            paths = [_image_path(ds, int(i)) for i in idx]
            matched = transform.index.matches(paths)  # one match per checked image
            hits, total = sum(bool(views) for _, views in matched), len(paths)
            picked = sampled_views(paths, matched)
            gone, looked = unusable_views(picked, transform.loader), len(picked)
            sampled, unreadable = sampled + looked, unreadable + len(gone)
            if 2 * len(gone) > looked:  # the run would be mostly plain SSL
                raise StartCheckFailed(
                    f'{len(gone)} of {looked} sampled views of {transform.index.manifest!r} are '
                    f'missing, empty or undecodable files (e.g. {gone[0]!r}), so most images '
                    'would train on the original (plain SSL): move or copy the views folder next '
                    'to the manifest (its outputs are relative to it), or import or generate the '
                    'views again.')
            own, seen = views_of_themselves(picked), looked
            if own:  # most: the run would be plain SSL; a few: rows that pair wrongly
                text = (f'{len(own)} of {seen} sampled images (e.g. {own[0]!r}) have themselves '
                        f'as their generated view in {transform.index.manifest!r}, so their pairs '
                        'are two views of the original (plain SSL): the views folder and '
                        '--source-root of tools/import_views.py were swapped, the views folder is '
                        'a copy of the sources, or the rows name the sources as outputs; import '
                        'or generate the views again.')
                if 2 * len(own) > seen:
                    raise StartCheckFailed(text)
                runner.logger.warning(f'GenView: {text}')
            matcher = transform.index.matcher  # images matched by key, their sources here
            compared = [(p, local) for p, _ in picked if self.check_sources
                        for local in [matcher.local_sources(
                            p, transform.index.drawn_sources(p))] if local]
            others = [(p, src) for p, local in compared
                      for src in [matcher.other_picture(p, local)] if src]
            if others:  # paired with views of other pictures: most, another dataset's manifest
                text = (f'{len(others)} of {len(compared)} sampled images that match rows of '
                        f'{transform.index.manifest!r} by file name differ from those rows\' '
                        f'source (e.g. {others[0][0]!r} and {others[0][1]!r}), so they would be '
                        "paired with another picture's generated view. ")
                if 2 * len(others) > len(compared):
                    raise StartCheckFailed(
                        text + 'The manifest was made for another dataset or folder with the '
                        'same file names: generate views for this dataset (tools/generate_'
                        "views.py), or set genview.source_root to the folder the manifest's "
                        'keys are relative to. If those files are the same pictures (this data '
                        'is a re-encoded or resized copy), set check_sources=False of '
                        'GenViewPairHook.')
                runner.logger.warning(f'GenView: {text}Were they re-saved since their views '
                                      'were made? Generate their views again.')
            manifest = _manifest_id(transform)
            if manifest not in checked:  # once per manifest, over every dataset reading it
                members = readers[manifest]
                checked[manifest] = (*shared_keys(members), sum(len(d) for d, _ in members))
            shared, example, images = checked[manifest]
            if shared:  # each of them would train with the other's generated views
                raise StartCheckFailed(
                    f'{shared} of {images} dataset images share manifest rows with '
                    f'another image: {example[1]!r} and {example[2]!r} both match key '
                    f'{example[0]!r} of {transform.index.manifest!r}, so each would be paired '
                    "with the other's generated view. The manifest was made for part of this "
                    'dataset or for another layout: set genview.source_root to the folder its '
                    'keys are relative to, or generate views for this dataset '
                    '(tools/generate_views.py).')
            mixed = [p for p in paths if transform.index.mixed and transform.index.ambiguous(p)]
            if mixed:  # rows of several datasets under one key, and these images are none
                runner.logger.warning(
                    f'GenView: {len(mixed)} of {total} checked images (e.g. {mixed[0]!r}) match '
                    f'rows of {transform.index.manifest} that come from several source images '
                    '(the manifests of datasets with the same layout, concatenated) by their key '
                    'alone, not by their own path: each draws from the views of all of them. '
                    "Keep only this dataset's rows in the manifest.")
            frac = hits / max(total, 1)
            filtered = transform.index.num_filtered_only(paths) if hits < total else 0
            lower = (f' {transform.index.filtered_note()} ({filtered} of the checked images '
                     'have no other): lower it (genview.min_clip_sim).') if filtered else ''
            line = (f'GenView: {hits}/{total} checked images ({100 * frac:.1f}%) of {n} have '
                    f'generated views in {transform.index.manifest} ({transform.index.num_rows} '
                    f'views; prob {transform.prob}).' + outside_note(transform.index.stats)
                    + (f' {len(gone)} of {looked} sampled view files are missing, empty or '
                       f'undecodable (e.g. {gone[0]!r}): those images train on the original.'
                       if gone else ''))
            if hits == total and not gone:
                runner.logger.info(line)
            elif hits == total:
                runner.logger.warning(line)
            else:
                runner.logger.warning(
                    f'{line} The other {100 * (1 - frac):.1f}% of the images have no generated '
                    'view: their pairs are two views of the original image (plain SSL), so the '
                    'run is only partly GenView.' + lower + (
                        ' To cover the whole dataset, import the missing views '
                        '(tools/import_views.py) or generate them (tools/generate_views.py).'
                        if filtered < total - hits else ''))
            if transform.index.manifest not in warned:
                warned.add(transform.index.manifest)
                manifest_warnings(transform.index, runner.logger)
            if hits == 0 or frac < self.min_coverage:
                example = ds.get_data_info(0)['img_path']
                some_key = next(iter(transform.index.by_key))
                if filtered:
                    raise StartCheckFailed(
                        f'The GenView manifest {transform.index.manifest!r} matches {hits} of '
                        f'{total} dataset images (needed: >0 and >= {self.min_coverage:.0%}).'
                        + lower)
                raise StartCheckFailed(
                    f'The GenView manifest {transform.index.manifest!r} matches {hits} of {total} '
                    f'dataset images (needed: >0 and >= {self.min_coverage:.0%}). A dataset image '
                    f'is {example!r}; a manifest key is {some_key!r}. Generate views for this '
                    'dataset (tools/generate_views.py), or set `source_root` of '
                    'GenViewPairDataset to the folder the keys are relative to.')
        if not found:
            runner.logger.warning('GenViewPairHook: no GenViewPairDataset in the train pipeline.')
        # every process forgets the saved window, or none does (one's reads may fail alone)
        everywhere = summed_counts(sampled, unreadable)
        if self._window[1] and everywhere[0] and not everywhere[1]:  # views restored before
            runner.logger.info(
                f'GenView: the {self._window[1]} unreadable generated views of the window saved '
                f'in the checkpoint are not counted: all {sampled} sampled view files read now.')
            self._window = [0, 0]

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        drawn, fell = self._log_views(runner, (data_batch or {}).get('data_samples') or [])
        nonfinite = (outputs or {}).get('genview_nonfinite')
        total = summed_counts(drawn, fell, 0 if nonfinite is None else float(nonfinite))
        if _scored_globally(runner):  # every process counted the whole batch: once, not N times
            total[2] /= get_world_size()
        self._check_scores(runner, total[2])
        self._check_fallbacks(int(total[0]), int(total[1]))

    def _log_views(self, runner, samples: Sequence) -> Tuple[int, int]:
        """Log this process's pair statistics of one batch; its generated views drawn and, of
        them, the unreadable ones (fallbacks)."""
        carried = any('genview_slot' in s for s in samples)  # a ConcatDataset may mix in
        if samples and not carried and self._expects_fields and not self._plain_parts \
                and not self._warned_fields:  # a part without GenView: its samples have none
            self._warned_fields = True
            runner.logger.warning(
                'GenViewPairHook: the data samples carry no genview_slot, so '
                'train/genview_gen_frac, genview_noise_level and genview_fallbacks are not '
                'logged (nor are generated views that could not be read counted): pack them '
                f'with PackInputs(algorithm_keys={GEN_KEYS}) after GenViewPairDataset, as the '
                'GenView configs do (genview_keys of configs/_base_/genview_defaults.py).')
        if not (carried or samples and self._plain_parts):  # a plain part's batch: 0 generated
            return 0, 0
        slots = np.array([s.get('genview_slot', -1) for s in samples])  # none: the original
        used = slots >= 0
        fell = sum(bool(s.get('genview_fallback', False)) for s in samples)
        self.fallbacks += fell
        hub = runner.message_hub
        hub.update_scalar('train/genview_gen_frac', float(used.mean()))
        levels = np.array([s.get('genview_noise_level', -1) for s in samples])[used]
        known = levels[levels >= 0]  # imported views may have no level (-1)
        if known.size:
            hub.update_scalar('train/genview_noise_level', float(known.mean()))
        else:  # else MMEngine logs the level of an earlier batch (or run: --resume) again
            hub.log_scalars.pop('train/genview_noise_level', None)  # and no resumed key left
            getattr(hub, '_resumed_keys', {}).pop('train/genview_noise_level', None)  # (a
            # warning when a checkpoint's hub is loaded); MessageHub has no public remove
        hub.update_scalar('train/genview_fallbacks', float(self.fallbacks))
        return int(used.sum()) + fell, fell

    def _check_fallbacks(self, drawn: int, fell: int) -> None:
        """Stop when most generated views of a window could not be read (a run turning into
        plain SSL: views deleted, or error pages saved as views, after the start check)."""
        self._window[0] += drawn
        self._window[1] += fell
        drawn, fell = self._window
        if drawn < self.fallback_window:
            return
        self._window = [0, 0]
        if fell > self.max_fallback_fraction * drawn:
            raise RunCheckFailed(
                f'GenView: {fell} of the last {drawn} generated views drawn could not be read '
                '(missing, empty or undecodable files; counted in train/genview_fallbacks), so '
                'their images trained on the original (plain SSL). Stopped; the warnings of '
                'GenViewPairDataset name such files: restore the views folder, then rerun with '
                '--resume (or set max_fallback_fraction of GenViewPairHook).')

    def _check_scores(self, runner, nonfinite) -> None:
        """Warn at the first batch trained unweighted (``nonfinite`` > 0), stop after
        ``max_unweighted`` in a row; ``nonfinite``: the count of all processes, each score once
        (MMEngine has already read each one's value)."""
        if nonfinite is None or float(nonfinite) <= 0:
            self._unweighted = 0
            return
        self._unweighted += 1
        why = (f'{int(float(nonfinite))} pair score(s) of iteration {runner.iter + 1} were not '
               'finite, so its batch trained with uniform weights (the upstream loss; counted in '
               'train/genview_nonfinite)')
        fix = ('a scorer encoder that overflows in float16 does this: try --cfg-options '
               "model.scorer.autocast_dtype=bfloat16 (or model.scorer.autocast=False)")
        if not self._warned_scores:
            self._warned_scores = True
            runner.logger.warning(f'GenView: {why}; if it goes on, {fix}.')
        if self.max_unweighted and self._unweighted >= self.max_unweighted:
            raise RunCheckFailed(
                f'GenView: {why}, and so did the {self._unweighted - 1} before it: the run is '
                f'training the upstream loss, not GenView\'s. Stopped; {fix}, then rerun with '
                '--resume (or set max_unweighted of GenViewPairHook).')
