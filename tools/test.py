"""Evaluate a checkpoint on an MMPretrain or MMDetection config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR] [--out FILE]
    python tools/test.py CONFIG CHECKPOINT --preflight   # only check what the test needs
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [same options]

Before anything is built, rank 0 checks the test data, annotation files and the checkpoint
(genview_mm.apis.preflight) and stops with a short checklist if one is missing.
"""
import argparse
import logging
import os.path as osp
import sys
from typing import Optional

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from _launch_args import add_common_args, cfg_options, check_work_dir  # noqa: E402


def parse_args(argv=None, prog=None) -> argparse.Namespace:
    """The options, checked before anything heavy is imported or any rank starts
    (tools/check_config.py runs this for the launchers, with the options they pass on)."""
    parser = argparse.ArgumentParser(prog=prog, description='Test (and evaluate) a model',
                                     allow_abbrev=False)  # the launchers match --preflight
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions to this pickle file (.pkl or .pickle; '
                        "MMDetection configs: mmdet's DumpDetResults, masks as RLE); it "
                        'replaces an earlier dump, anything else only with --overwrite')
    parser.add_argument('--overwrite', action='store_true', help='let --out replace a file '
                        'that is not a dump of predictions (never CONFIG or CHECKPOINT)')
    parser.add_argument('--show-dir', help='draw every test image with its predictions into '
                        'this folder, relative to the run\'s timestamped folder inside the work '
                        "dir, each under its image's folder relative to the test images' "
                        'common folder (a config without a visualization hook or visualizer '
                        "gets its kind's default ones)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    if not osp.isfile(args.config):
        parser.error(f'config {args.config} not found')
    check_work_dir(parser, args.work_dir, args.config)
    for flag, value in (('--out', args.out), ('--show-dir', args.show_dir)):
        # an unset variable: the test ran, and neither dump nor drawings were written
        if value is not None and not value.strip():
            usage_error(f'{flag} is empty: pass a path, or leave the option out')
    if args.out and not args.out.endswith(('.pkl', '.pickle')):
        usage_error(f'--out {args.out}: predictions are dumped as a pickle; give a .pkl or '
                    '.pickle file')
    for name, path in (('CONFIG', args.config), ('CHECKPOINT', args.checkpoint)):
        if args.out and osp.realpath(args.out) == osp.realpath(path):  # even with --overwrite
            usage_error(f'--out {args.out} is the {name}: the dump would replace it; give '
                        'another path')
    if args.out:  # before the test: the dump is written only at its end
        from _early import library_module
        safety = library_module('utils/file_safety.py')  # its exceptions are this copy's
        try:
            safety.check_writable(args.out)
            safety.check_replace(args.out, is_results_dump, 'a dump of predictions',
                                 '--overwrite', args.overwrite)
        except safety.NotWritable as exc:
            usage_error(f'--out {exc}')
        except safety.ReplaceRefused as exc:
            usage_error(str(exc))
    return args


def is_results_dump(path: str) -> bool:
    """Whether ``path`` is a pickle of a list of dicts (or of an empty list), as ``DumpResults``
    and ``DumpDetResults`` write (read from its first opcodes: nothing is unpickled, a foreign
    file runs no code; a user's list of numbers or names is not a dump)."""
    import pickletools
    skip = ('PROTO', 'FRAME', 'MEMOIZE', 'BINPUT', 'LONG_BINPUT', 'PUT', 'MARK')
    try:
        with open(path, 'rb') as f:
            ops = (op.name for op, _, _ in pickletools.genops(f) if op.name not in skip)
            return next(ops, None) == 'EMPTY_LIST' and next(ops, None) in ('EMPTY_DICT', 'STOP')
    except Exception:  # noqa: BLE001  (not a pickle: not a dump)
        return False


def usage_error(message: str) -> None:
    """Exit with status 2 and one line ``test.py: error: MESSAGE``."""
    print(f'test.py: error: {message}', file=sys.stderr)
    sys.exit(2)


def add_dump(cfg, out: str) -> None:
    """Append the metric that dumps the predictions to ``out`` to ``cfg.test_evaluator``: for an
    MMDetection config mmdet's ``DumpDetResults`` (masks encoded as RLE, ground truth left out:
    the file mmdet's tools/test.py writes and its analysis tools read), else MMEngine's
    ``DumpResults``."""
    cfg.test_evaluator = list(cfg.test_evaluator) if isinstance(
        cfg.test_evaluator, (list, tuple)) else [cfg.test_evaluator]
    kind = 'mmdet.DumpDetResults' if cfg.get('default_scope') == 'mmdet' else 'DumpResults'
    cfg.test_evaluator.append(dict(type=kind, out_file_path=out))


def dump_atomically(metric) -> None:
    """Have ``metric`` (MMEngine's ``DumpResults`` or mmdet's ``DumpDetResults``) write its
    pickle through :func:`genview_mm.utils.atomic_write.atomic_write`: into a temporary file
    next to ``out_file_path``, renamed onto it once complete. MMEngine's writes the file in
    place: a run killed during the dump left a partial pickle where the results belong, and a
    failed write (a full disk) an earlier dump truncated."""
    from mmengine.fileio import dump
    from mmengine.logging import print_log

    from genview_mm.utils.atomic_write import atomic_write

    def compute_metrics(results: list) -> dict:
        with atomic_write(metric.out_file_path, 'wb') as f:
            dump(results, f, file_format='pkl')
        print_log(f'Results has been saved to {metric.out_file_path}.', logger='current')
        return {}

    metric.compute_metrics = compute_metrics


# What each kind's default_runtime.py sets, for a config that dropped them (``_delete_`` in
# default_hooks, ``visualization=None``, no ``visualizer``): --show-dir adds them.
VIS_HOOKS = {'mmdet': dict(type='mmdet.DetVisualizationHook'),
             'mmpretrain': dict(type='mmpretrain.VisualizationHook')}
VISUALIZERS = {'mmdet': dict(type='mmdet.DetLocalVisualizer', name='visualizer',
                             vis_backends=[dict(type='LocalVisBackend')]),
               'mmpretrain': dict(type='mmpretrain.UniversalVisualizer',
                                  vis_backends=[dict(type='LocalVisBackend')])}


def enable_show_dir(cfg, show_dir: str) -> None:
    """Draw every test image with its predictions into ``show_dir`` inside the run's
    timestamped folder (``<work_dir>/<timestamp>/<show_dir>``), as mmdet's tools/test.py does
    (``draw``, ``test_out_dir``); ``interval=1`` as mmpretrain's (its hook draws one sample in
    ``interval``, 5000 by default). mmpretrain's hook writes to ``out_dir`` as given: the runner's
    folder is known only once it is built, :func:`place_show_dir` puts it there. A config
    without a ``visualization`` hook in ``default_hooks`` or without a ``visualizer`` gets those
    of its kind's default_runtime.py (mmdet's and mmpretrain's tools/test.py stop with an
    assertion instead)."""
    from mmengine.config import ConfigDict
    from mmengine.logging import print_log
    kind = 'mmdet' if cfg.get('default_scope') == 'mmdet' else 'mmpretrain'
    added = []
    if cfg.get('default_hooks') is None:
        cfg.default_hooks = ConfigDict()
    if cfg.default_hooks.get('visualization') is None:
        cfg.default_hooks.visualization = ConfigDict(VIS_HOOKS[kind])
        added.append(f"default_hooks.visualization={VIS_HOOKS[kind]['type']}")
    if cfg.get('visualizer') is None:
        cfg.visualizer = ConfigDict(VISUALIZERS[kind])
        added.append(f"visualizer={VISUALIZERS[kind]['type']}")
    if added:
        print_log(f"--show-dir: added what the config lacks for drawing: {', '.join(added)}",
                  logger='current')
    hook = cfg.default_hooks.visualization
    hook['interval'] = 1
    if kind == 'mmdet':  # DetVisualizationHook
        hook['draw'] = True
        hook['test_out_dir'] = show_dir
    else:  # mmpretrain's VisualizationHook
        hook['enable'] = True
        hook['out_dir'] = show_dir


def place_show_dir(runner, show_dir: str) -> None:
    """Point mmpretrain's ``VisualizationHook`` of ``runner`` at ``<work_dir>/<timestamp>/
    show_dir``, where mmdet's ``DetVisualizationHook`` writes (it joins the folders itself), and
    have both keep each image's folder (:class:`KeepFolders`). A ``show_dir`` (absolute, or
    reaching out with ``..``) among the test images is refused (exit status 2): the drawings
    replaced COCO's images, or were added to a folder dataset's class folders and tested as
    images from then on."""
    from mmpretrain.engine.hooks import VisualizationHook

    from genview_mm.datasets.image_sources import walked_folder
    from genview_mm.utils.file_safety import lies_under, same_file, writable_problem
    target = osp.join(runner.log_dir, show_dir)
    problem = writable_problem(target)  # a file there: a traceback after the whole test
    if problem:
        usage_error(f'--show-dir {show_dir}: {problem}; pass a folder path')
    dataset = runner.test_loop.dataloader.dataset
    folders = image_folders(dataset) or set()
    root = common_folder(folders)
    for folder in sorted(folders):  # where KeepFolders draws this folder's images
        if same_file(osp.join(target, keep_folder(folder, root)), folder or '.'):
            usage_error(f'--show-dir {show_dir}: the drawings of the images in '
                        f"{folder or '.'} would be written into that folder, replacing or "
                        "joining them; pass a folder outside the test data (a relative one is "
                        "made in the run's folder)")
    walked = walked_folder(dataset)
    spelled = lambda path: {osp.abspath(path), osp.realpath(path)}  # noqa: E731
    if walked is not None and any(o == w or lies_under(o, w) for o in spelled(target)
                                  for w in spelled(walked)):
        usage_error(f'--show-dir {show_dir}: the drawings would be written inside '
                    f"{walked}, which the test dataset lists its images from (no "
                    'ann_file), so they would be tested as images from then on; pass a folder '
                    "outside it (a relative one is made in the run's folder)")
    kinds = (VisualizationHook, )
    if runner.cfg.get('default_scope') == 'mmdet':
        from mmdet.engine.hooks import DetVisualizationHook
        kinds = (DetVisualizationHook, )
    for hook in runner.hooks:
        if isinstance(hook, VisualizationHook):
            hook.out_dir = target
        if isinstance(hook, kinds):
            hook._visualizer = KeepFolders(hook._visualizer, root)


class KeepFolders:
    """A visualization hook's visualizer that writes each drawing under the folder of its image
    relative to the folder that holds all the test images (``a/x.png`` and ``b/x.png`` drawn as
    ``SHOW_DIR/a/x.png`` and ``SHOW_DIR/b/x.png``; the hooks name a drawing after the image's
    file name alone, so the second overwrote the first). Images in one folder are drawn into
    SHOW_DIR itself, as before. That common folder, ``root``, is found from the whole test set
    (every rank the same; None: every drawing in SHOW_DIR). Every rank draws its share of the
    images (:meth:`_draw`)."""

    def __init__(self, visualizer, root: Optional[str]) -> None:
        self._visualizer = visualizer
        self._root = root

    def __getattr__(self, name: str):
        return getattr(self._visualizer, name)

    def add_datasample(self, *args, **kwargs):  # mmdet's DetLocalVisualizer
        return self._draw('add_datasample', args, self._keep_folder(kwargs))

    def visualize_cls(self, *args, **kwargs):  # mmpretrain's UniversalVisualizer
        return self._draw('visualize_cls', args, self._keep_folder(kwargs))

    def _draw(self, name: str, args: tuple, kwargs: dict):
        """The visualizer's ``name``; into a file, on every rank: upstream's visualizers draw on
        rank 0 only (their methods are ``master_only``), so a distributed test drew rank 0's
        share of the images. Each drawing is a file of its own image (the sampler pads the
        ranks to one length, so an image may be drawn twice, the same); a drawing for the
        visualizer's backends (no file) stays rank 0's, and so does ``show``."""
        method = getattr(self._visualizer, name)
        if kwargs.get('out_file') is None:
            return method(*args, **kwargs)
        from mmengine.dist import utils as dist_utils
        main = dist_utils.is_main_process  # what master_only asks, at each call
        if not main():
            kwargs = dict(kwargs, show=False)
        dist_utils.is_main_process = lambda *_, **__: True
        try:
            return method(*args, **kwargs)
        finally:
            dist_utils.is_main_process = main

    def _keep_folder(self, kwargs: dict) -> dict:
        out_file, sample = kwargs.get('out_file'), kwargs.get('data_sample')
        img_path = sample.get('img_path') if sample is not None else None
        if out_file is None or img_path is None or self._root is None:
            return kwargs
        folder = keep_folder(osp.dirname(img_path), self._root)
        if not folder:  # not under the root: as before
            return kwargs
        out_dir, name = osp.split(out_file)
        return dict(kwargs, out_file=osp.join(out_dir, folder, name))


def keep_folder(folder: str, root: Optional[str]) -> str:
    """The subfolder of SHOW_DIR that the drawings of the images in ``folder`` go to: its path
    relative to ``root``; '' (SHOW_DIR itself) for ``root`` or a folder outside it."""
    if root is None:
        return ''
    rel = osp.relpath(folder or '.', root or '.')
    return '' if rel == '.' or rel.split(osp.sep)[0] == '..' else rel


def image_folders(dataset) -> Optional[set]:
    """The folders of the images of ``dataset`` (their ``img_path``s), or None if some sample
    has none."""
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    folders = set()
    for i in range(len(dataset)):
        img_path = dataset.get_data_info(i).get('img_path')
        if img_path is None:
            return None
        folders.add(osp.dirname(img_path))
    return folders


def common_folder(folders: Optional[set]) -> Optional[str]:
    """The deepest folder that holds all ``folders``, or None if there are none or they mix
    absolute and relative paths."""
    try:
        return osp.commonpath(folders) if folders else None
    except ValueError:
        return None


def refuse_amp(cfg) -> None:
    """The refusal of :func:`check_amp` (tools/check_config.py calls it too, so that the
    launchers stop once, before any rank starts)."""
    from mmengine.device import get_device
    if get_device() == 'cpu' and cfg.get('default_scope') == 'mmdet':
        usage_error('--amp without CUDA would test under bfloat16 autocast on the CPU, which '
                    "mmcv's detection ops (NMS) do not take; drop --amp to test in float32")


def check_amp(cfg) -> None:
    """``--amp`` on a machine without an accelerator, where MMEngine's autocast runs bfloat16
    on the CPU (float16 autocast needs a GPU). mmcv's detection ops (NMS) take only float32 on
    the CPU, so an MMDetection config would fail in its first batch: refused at once, in one
    line (mmdet's own tools/test.py has no --amp). An MMPretrain config runs, as mmpretrain's
    tools/test.py runs it, with a warning that it tests in bfloat16."""
    from mmengine.device import get_device
    from mmengine.logging import print_log
    refuse_amp(cfg)
    if get_device() != 'cpu':
        return
    print_log('--amp without CUDA: testing under bfloat16 autocast on the CPU (float16 autocast '
              'needs a GPU); the metrics may differ slightly from a float32 test (without --amp)',
              logger='current', level=logging.WARNING)


def main() -> None:
    args = parse_args()
    import genview_mm  # noqa: F401  (applies genview_mm.compat before any mmpretrain import)
    from genview_mm.apis import GenViewSettingError
    from genview_mm.apis.launch import (
        OptionRefused,
        build_runner,
        load_cfg,
        preflight_or_exit,
        prepare_cfg,
    )
    from genview_mm.utils.atomic_write import DiskFull
    from genview_mm.utils.dist import is_first_rank
    try:
        cfg = load_cfg(args, cfg_options(args))
    except GenViewSettingError as exc:
        usage_error(str(exc))
    from genview_mm.apis.preflight import missing_test_settings
    unable = missing_test_settings(cfg, args.config)
    if unable:  # MMEngine's 'self._test_loop should not be None' traceback, after the build
        usage_error(unable)
    if args.amp:
        check_amp(cfg)
    if args.preflight or (not args.skip_preflight and is_first_rank(args.launcher)):
        preflight_or_exit(cfg, args, 'test', args.checkpoint)
    try:  # --launcher without the variables its launcher sets
        prepare_cfg(cfg, args.launcher, args.work_dir, args.config, amp=False)
    except OptionRefused as exc:
        usage_error(str(exc))
    # the checkpoint's weights only: a config dumped by a resumed run holds resume=True, with
    # which MMEngine's test() resumed CHECKPOINT as a training state (building the train loop
    # and its data, then KeyError 'epoch' for a checkpoint without its training meta)
    cfg.resume, cfg.load_from = False, args.checkpoint
    if args.show_dir:
        enable_show_dir(cfg, args.show_dir)
    if args.out:
        add_dump(cfg, args.out)
    if args.amp:
        cfg.test_cfg = dict(cfg.get('test_cfg') or {}, fp16=True)
    runner = build_runner(cfg)
    if args.show_dir:
        place_show_dir(runner, args.show_dir)
    if args.out and runner.test_loop is not None:  # builds the loop that test() would build
        from mmengine.evaluator import DumpResults
        for metric in runner.test_loop.evaluator.metrics:
            if isinstance(metric, DumpResults):
                dump_atomically(metric)
    try:
        metrics = runner.test()
    except DiskFull as exc:  # the --out dump (atomic: an earlier dump is kept, no temp file)
        print(f'test.py: error: {exc}', file=sys.stderr)
        sys.exit(exc.exit_code)
    if runner.rank == 0:
        print(metrics)


if __name__ == '__main__':
    main()
