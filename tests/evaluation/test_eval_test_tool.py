"""tools/test.py's own options on an MMDetection and an MMPretrain config, as mmdet's and
mmpretrain's tools/test.py have them: ``--out`` (mmdet's DumpDetResults for detection, the path
checked before anything is built) and ``--show-dir``, ``--amp`` on a machine without CUDA."""
import glob
import json
import os
import os.path as osp
import pickle
import shutil
import textwrap

import pytest
import torch

from helpers import ROOT, load_tool, run_script, run_tool, write_class_folders, write_coco_shapes

MASK_CFG = osp.join(ROOT, 'configs/demo/mask-rcnn_r18_fpn_tiny_cpu.py')
LINEAR_CFG = 'configs/benchmarks/genview_mocov2_r50_linear-steplr-100e_in1k.py'


@pytest.fixture(scope='module')
def det(tmp_path_factory):
    """4 toy COCO images, a random tiny Mask R-CNN checkpoint and the --cfg-options that point
    the demo config at them (score_thr 0: every image has detections, so masks are dumped)."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules(init_default_scope=False)
    root = tmp_path_factory.mktemp('det')
    ann = write_coco_shapes(str(root / 'coco'), 4)
    cfg = Config.fromfile(MASK_CFG)
    cfg.model.backbone.init_cfg = None
    ckpt = str(root / 'mask_rcnn.pth')
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(), 'meta': {}}, ckpt)
    opts = [f"test_dataloader.dataset.data_root={root / 'coco'}/", f'test_evaluator.ann_file={ann}',
            'model.test_cfg.rcnn.score_thr=0.0']
    return root, ckpt, opts


@pytest.fixture(scope='module')
def cls(tmp_path_factory, repo_root):
    """9 images of 3 classes (0.png, 1.png and 2.png in each class folder), a linear-probe
    config shrunk to the tiny ResNet-18 layout and a random checkpoint of it."""
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    root = tmp_path_factory.mktemp('cls')
    write_class_folders(str(root / 'images'), per_class=3, seed=1)
    cfg = root / 'linear.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = '{repo_root}/{LINEAR_CFG}'
        model = dict(backbone=dict(depth=18, stem_channels=8, base_channels=8, init_cfg=None),
                     head=dict(num_classes=3, in_channels=64, topk=(1, )))
        data_preprocessor = dict(num_classes=3)
        test_dataloader = dict(batch_size=4, num_workers=0, persistent_workers=False,
            dataset=dict(_delete_=True, type='CustomDataset', data_root='{root}/images',
                         pipeline=[dict(type='LoadImageFromFile'), dict(type='PackInputs')]))
        test_evaluator = dict(type='Accuracy', topk=(1, ))
        """))
    ckpt = str(root / 'linear.pth')
    model = MODELS.build(Config.fromfile(str(cfg)).model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    return root, str(cfg), ckpt


@pytest.mark.slow
def test_out_dumps_mmdet_det_results(det, tmp_path):
    """A detection config's --out holds what mmdet's own tools/test.py writes (DumpDetResults):
    one record per image, masks as COCO RLE and no ground truth. It was MMEngine's DumpResults:
    dense mask tensors (images x detections x H x W) beside the ground-truth instances. An
    earlier dump at that path is replaced (MMEngine's rule), through a temporary file that is
    gone afterwards (:func:`test_out_is_written_atomically`)."""
    _, ckpt, opts = det
    out = tmp_path / 'preds' / 'mask_rcnn.pkl'
    out.parent.mkdir()
    out.write_bytes(pickle.dumps([{'an earlier': 'dump'}]))
    run_tool('test.py', MASK_CFG, ckpt, '--work-dir', tmp_path / 'work', '--out', out,
             '--cfg-options', *opts)
    assert os.listdir(out.parent) == ['mask_rcnn.pkl']
    with open(out, 'rb') as f:
        results = pickle.load(f)
    assert len(results) == 4
    for result in results:
        assert 'gt_instances' not in result and 'ignored_instances' not in result
        pred = result['pred_instances']
        assert len(pred['bboxes']) == len(pred['masks']) == 20  # max_per_img of the config
        assert all(sorted(m) == ['counts', 'size'] and m['size'] == [64, 64]
                   for m in pred['masks'])


def test_out_is_written_atomically(tmp_path):
    """The dump goes to a temporary file beside --out, renamed onto it once complete: a write
    that fails half-way (here the file-size limit, as a full disk or a killed run would stop
    it) leaves an earlier dump as it was and no temporary file; MMEngine's DumpResults wrote
    in place, and left the earlier file truncated to what was written (a kill: a partial
    pickle that looks like a result)."""
    import resource

    from mmengine.evaluator import DumpResults
    out = tmp_path / 'preds.pkl'
    out.write_bytes(b'an earlier dump')
    metric = DumpResults(out_file_path=str(out))
    load_tool('test').dump_atomically(metric)
    results = [dict(scores=torch.arange(100_000.0))]  # 400 kB
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))  # Python ignores SIGXFSZ
    try:
        with pytest.raises(OSError, match='File too large'):
            metric.compute_metrics(results)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert os.listdir(tmp_path) == ['preds.pkl']
    assert out.read_bytes() == b'an earlier dump'
    assert metric.compute_metrics(results) == {}
    assert os.listdir(tmp_path) == ['preds.pkl']
    with open(out, 'rb') as f:
        assert torch.equal(pickle.load(f)[0]['scores'], results[0]['scores'])


def test_out_replaces_only_a_dump_and_never_the_checkpoint(det, tmp_path):
    """--out replaced any file: a user's pickle, even the CHECKPOINT under test (a 749 kB
    checkpoint became a 10 kB dump). Refused now in one line before anything is built; an
    earlier dump (a pickle of a list of dicts) is still replaced
    (:func:`test_out_dumps_mmdet_det_results`)."""
    _, ckpt, opts = det
    tool = load_tool('test')
    mine = tmp_path / 'mine.pkl'
    mine.write_bytes(pickle.dumps({'my': 'results'}))
    torch.save({'state_dict': {}}, tmp_path / 'ck.pkl')
    (tmp_path / 'old.pkl').write_bytes(pickle.dumps([{'img_id': 1}], protocol=2))
    assert tool.is_results_dump(str(tmp_path / 'old.pkl'))
    for proto in (2, 4, 5):  # a list of numbers or names is a user's, not a dump
        for data, dump in (([], True), ([{'a': 1}, {'b': 2}], True), ([1], False),
                           (['x', {'a': 1}], False), ({'a': [1]}, False)):
            (tmp_path / 'p.pkl').write_bytes(pickle.dumps(data, protocol=proto))
            assert tool.is_results_dump(str(tmp_path / 'p.pkl')) is dump, (data, proto)
    assert not tool.is_results_dump(str(mine)) and not tool.is_results_dump(ckpt)
    assert not tool.is_results_dump(str(tmp_path / 'ck.pkl'))
    for out, extra, said in (
            (mine, [], f'{mine} exists and is not a dump of predictions (written by genview_mm)'),
            (tmp_path / 'ck.pkl', ['--overwrite'], f'--out {tmp_path / "ck.pkl"} is the '
             'CHECKPOINT: the dump would replace it; give another path')):
        before = out.read_bytes()
        ck = str(out) if out.name == 'ck.pkl' else ckpt
        proc = run_tool('test.py', MASK_CFG, ck, '--work-dir', tmp_path / 'work', '--out', out,
                        *extra, '--cfg-options', *opts, returncode=2)
        assert proc.stderr.startswith(f'test.py: error: {said}') and proc.stdout == ''
        assert proc.stderr.count('\n') == 1 and out.read_bytes() == before
    assert not (tmp_path / 'work').exists()


@pytest.mark.parametrize('where,message', [
    ('preds.json', '{out}: predictions are dumped as a pickle; give a .pkl or .pickle file'),
    ('a_file/preds.pkl', 'cannot write {out}: {tmp}/a_file is a file, not a folder; choose '
                         'another path'),
    ('a_file/deeper/preds.pkl', 'cannot write {out}: {tmp}/a_file is a file, not a folder; '
                                'choose another path'),
    ('folder.pkl', '{out} is a folder; give a file path'),
], ids=['suffix', 'parent-is-a-file', 'ancestor-is-a-file', 'folder'])
@pytest.mark.slow
def test_out_is_checked_before_anything_is_built(where, message, det, tmp_path):
    """A bad --out ends at once in one line, exit 2, nothing written; a path under a file ran
    the whole test and then died in the dump with a FileExistsError traceback."""
    _, ckpt, opts = det
    (tmp_path / 'a_file').write_text('mine')
    (tmp_path / 'folder.pkl').mkdir()
    out = tmp_path / where
    proc = run_tool('test.py', MASK_CFG, ckpt, '--work-dir', tmp_path / 'work', '--out', out,
                    '--cfg-options', *opts, returncode=2)
    assert proc.stdout == ''
    assert proc.stderr == 'test.py: error: --out ' + message.format(out=out, tmp=tmp_path) + '\n'
    assert sorted(os.listdir(tmp_path)) == ['a_file', 'folder.pkl']
    assert (tmp_path / 'a_file').read_text() == 'mine' and not os.listdir(tmp_path / 'folder.pkl')


def test_out_in_a_folder_that_refuses_files_is_one_line(det, tmp_path, monkeypatch, capsys):
    """A read-only folder (or filesystem): the check tries to create a file there, as the dump
    would (root may write a chmod-555 folder; a read-only mount refuses it too)."""
    import tempfile
    _, ckpt, opts = det

    def refused(*args, **kwargs):
        raise PermissionError(13, 'Permission denied')

    monkeypatch.setattr(tempfile, 'NamedTemporaryFile', refused)
    out = tmp_path / 'ro' / 'preds.pkl'
    out.parent.mkdir()
    with pytest.raises(SystemExit) as exit_:
        run_script('test.py', MASK_CFG, ckpt, '--out', out, '--cfg-options', *opts)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        f'test.py: error: --out cannot write {out}: no file can be created in {out.parent} '
        '(Permission denied); choose a writable location\n')
    assert not os.listdir(out.parent)


def test_out_on_a_full_disk_is_one_line(det, tmp_path, monkeypatch, capsys):
    """The disk fills up while the predictions are dumped at the end of the test: one line
    naming the folder, exit 1, the earlier dump as it was and no temporary file (it was a
    DiskFull traceback from inside MMEngine's evaluator)."""
    import errno

    import mmengine.fileio
    from mmengine.registry import DefaultScope
    _, ckpt, opts = det
    out = tmp_path / 'preds.pkl'
    earlier = pickle.dumps([{'an earlier': 'dump'}])
    out.write_bytes(earlier)

    def full(obj, file, **kwargs):
        file.write(b'part of a dump')
        raise OSError(errno.ENOSPC, 'No space left on device')

    monkeypatch.setattr(mmengine.fileio, 'dump', full)
    # the runner built in this process makes mmdet the current scope: restored at the end,
    # or later tests would build their models from mmdet's registry
    with DefaultScope.overwrite_default_scope('mmdet'), pytest.raises(SystemExit) as exit_:
        run_script('test.py', MASK_CFG, ckpt, '--work-dir', tmp_path / 'work', '--out', out,
                   '--cfg-options', *opts)
    assert exit_.value.code == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f'test.py: error: no space left on the device writing to {tmp_path} '
                       '(No space left on device): free space or write elsewhere, then rerun')
    assert 'Traceback' not in '\n'.join(err)
    assert out.read_bytes() == earlier
    assert sorted(os.listdir(tmp_path)) == ['preds.pkl', 'work']


def drawings(work_dir) -> list:
    """The files under ``work_dir/<timestamp>/shown`` (one run), relative to that folder."""
    shown, = glob.glob(str(work_dir / '*' / 'shown'))
    return sorted(osp.relpath(osp.join(folder, name), shown)
                  for folder, _, names in os.walk(shown) for name in names)


@pytest.mark.slow
def test_show_dir_draws_every_image_into_the_run_folder(cls, det, tmp_path):
    """--show-dir DIR: every test image, drawn into WORK_DIR/<timestamp>/DIR, for MMPretrain as
    for MMDetection configs. With an MMPretrain config it drew one image in 5000 (the hook's
    default interval: here only the first) into DIR relative to the current folder. Images in
    subfolders keep their folder there: both hooks named a drawing after the image's file name
    alone, so same-named images in different folders (here 0.png of each class, a/same.png and
    b/same.png) overwrote each other and one drawing was left of them."""
    root, cfg, ckpt = cls
    work, cwd = tmp_path / 'work', tmp_path / 'cwd'
    cwd.mkdir()
    run_tool('test.py', cfg, ckpt, '--work-dir', work, '--show-dir', 'shown', cwd=str(cwd))
    images = [osp.relpath(p, root / 'images') for p in glob.glob(str(root / 'images/*/*.png'))]
    assert len(images) == 9 and len(set(map(osp.basename, images))) == 3
    # mmpretrain's hook names a drawing <image name>_<step>.png (step 0 in a test)
    assert drawings(work) == sorted(f'{p}_0.png' for p in images)
    assert not os.listdir(cwd)
    det_root, det_ckpt, opts = det
    coco = tmp_path / 'coco'  # images/shape_0000.png -> images/a/same.png, 0001 -> b/same.png
    shutil.copytree(det_root / 'coco', coco)
    ann = json.loads((coco / 'annotations.json').read_text())
    for image, folder in zip(ann['images'], 'ab'):
        (coco / 'images' / folder).mkdir()
        os.rename(coco / 'images' / image['file_name'], coco / 'images' / folder / 'same.png')
        image['file_name'] = f'{folder}/same.png'
    (coco / 'annotations.json').write_text(json.dumps(ann))
    run_tool('test.py', MASK_CFG, det_ckpt, '--work-dir', tmp_path / 'det_work', '--show-dir',
             'shown', '--cfg-options', *opts, f'test_dataloader.dataset.data_root={coco}/',
             f"test_evaluator.ann_file={coco / 'annotations.json'}", cwd=str(cwd))
    assert drawings(tmp_path / 'det_work') == [
        'a/same.png', 'b/same.png', 'shape_0002.png', 'shape_0003.png']
    assert not os.listdir(cwd)


def _tree(folder):
    return sorted((osp.relpath(osp.join(d, n), folder), os.path.getsize(osp.join(d, n)))
                  for d, _, names in os.walk(folder) for n in names)


@pytest.mark.slow
def test_show_dir_among_the_test_images_is_refused(cls, det, tmp_path):
    """An absolute --show-dir is used as given (mmdet's hook joins it to the run folder, which
    drops the prefix): one naming COCO's image folder replaced the test images by drawings of
    them, and one naming a folder dataset's root added a drawing beside each image, tested as
    an image from then on. Both are refused before the test, exit 2, the data untouched; so is
    a --show-dir naming a file (a traceback after the whole test)."""
    root, cfg, ckpt = cls
    images = root / 'images'
    before = _tree(images)
    for show in (images, images / 'blue' / '..', images / 'blue' / 'shown'):
        proc = run_tool('test.py', cfg, ckpt, '--work-dir', tmp_path / 'work', '--show-dir',
                        show, returncode=2)
        assert proc.stderr.splitlines()[-1] == (f'test.py: error: --show-dir {show}: ' + (
            f'the drawings of the images in {images / "blue"} would be written into that folder, '
            'replacing or joining them; pass a folder outside the test data' if show.name != 'shown'
            else f'the drawings would be written inside {images}, which the test dataset lists '
            'its images from (no ann_file), so they would be tested as images from then on; pass '
            'a folder outside it') + " (a relative one is made in the run's folder)"), \
            proc.stderr[-2000:]
    assert _tree(images) == before
    (tmp_path / 'a_file').write_text('mine')
    proc = run_tool('test.py', cfg, ckpt, '--work-dir', tmp_path / 'work', '--show-dir',
                    tmp_path / 'a_file', returncode=2)
    assert proc.stderr.splitlines()[-1] == (
        f"test.py: error: --show-dir {tmp_path / 'a_file'}: {tmp_path / 'a_file'} is a file, not "
        'a folder; pass a folder path')
    assert (tmp_path / 'a_file').read_text() == 'mine'
    det_root, det_ckpt, opts = det
    coco_images = det_root / 'coco' / 'images'
    before = _tree(coco_images)
    proc = run_tool('test.py', MASK_CFG, det_ckpt, '--work-dir', tmp_path / 'det_work',
                    '--show-dir', coco_images, '--cfg-options', *opts, returncode=2)
    assert proc.stderr.splitlines()[-1].startswith(
        f'test.py: error: --show-dir {coco_images}: the drawings of the images in {coco_images} '
        'would be written into that folder'), proc.stderr[-2000:]
    assert _tree(coco_images) == before
    # beside the images, or holding them in a subfolder (an annotation file lists them): fine
    run_tool('test.py', MASK_CFG, det_ckpt, '--work-dir', tmp_path / 'det_work', '--show-dir',
             det_root / 'coco', '--cfg-options', *opts)
    assert _tree(coco_images) == before and len(os.listdir(det_root / 'coco')) > 2


@pytest.mark.slow
def test_amp_without_cuda(cls, det, tmp_path):
    """--amp on a CPU-only machine tests under bfloat16 autocast (float16 needs a GPU). An
    MMPretrain config runs, as mmpretrain's tools/test.py runs it, but now says so (it was
    silent). An MMDetection config is refused at once in one line: mmcv's NMS takes no
    bfloat16 on the CPU, and the run died in its first batch with a RuntimeError traceback."""
    no_cuda = dict(CUDA_VISIBLE_DEVICES='')
    _, cfg, ckpt = cls
    out = run_tool('test.py', cfg, ckpt, '--work-dir', tmp_path / 'work', '--amp',
                   env=no_cuda).output
    assert ('WARNING - --amp without CUDA: testing under bfloat16 autocast on the CPU (float16 '
            'autocast needs a GPU); the metrics may differ slightly from a float32 test (without '
            '--amp)\n') in out
    assert "{'accuracy/top1': " in out
    _, det_ckpt, opts = det
    proc = run_tool('test.py', MASK_CFG, det_ckpt, '--work-dir', tmp_path / 'det_work', '--amp',
                    '--cfg-options', *opts, env=no_cuda, returncode=2)
    assert (proc.stdout, proc.stderr) == ('', (
        'test.py: error: --amp without CUDA would test under bfloat16 autocast on the CPU, which '
        "mmcv's detection ops (NMS) do not take; drop --amp to test in float32\n"))
    assert not (tmp_path / 'det_work').exists()
    # the launchers' check before torchrun starts: refused there, once (it was said by every
    # rank, then torchrun's ChildFailedError, exit status 1)
    check = run_tool('check_config.py', MASK_CFG, '--checkpoint', det_ckpt, '--amp', '--quiet',
                     '--cfg-options', *opts, env=no_cuda, returncode=2)
    assert check.stderr == proc.stderr


@pytest.mark.parametrize('kind', ['mmdet', 'mmpretrain'])
def test_show_dir_adds_the_hook_and_visualizer_a_config_lacks(kind, repo_root):
    """A config without a visualization hook (or without any default_hooks) and without a
    visualizer gets those of its kind's default_runtime.py; it ended in a ValueError traceback
    (after the preflight and the work dir) and, had it passed, drew with MMEngine's bare
    Visualizer, which has no add_datasample."""
    from mmengine.config import Config
    enable_show_dir = load_tool('test').enable_show_dir
    path = MASK_CFG if kind == 'mmdet' else osp.join(repo_root, LINEAR_CFG)
    for drop in ('hook', 'default_hooks'):
        cfg = Config.fromfile(path)
        if drop == 'hook':
            cfg.default_hooks.visualization = None
        else:
            cfg = Config({k: v for k, v in cfg.to_dict().items() if k != 'default_hooks'})
        cfg.visualizer = None
        enable_show_dir(cfg, 'shown')
        if kind == 'mmdet':
            assert cfg.default_hooks.visualization == dict(
                type='mmdet.DetVisualizationHook', interval=1, draw=True, test_out_dir='shown')
            assert cfg.visualizer.type == 'mmdet.DetLocalVisualizer'
        else:
            assert cfg.default_hooks.visualization == dict(
                type='mmpretrain.VisualizationHook', interval=1, enable=True, out_dir='shown')
            assert cfg.visualizer.type == 'mmpretrain.UniversalVisualizer'
        assert list(cfg.default_hooks) == ['visualization'] or drop == 'hook'
    cfg = Config.fromfile(path)  # the config's own hook and visualizer are kept
    hook_type, visualizer = cfg.default_hooks.visualization.type, cfg.visualizer
    enable_show_dir(cfg, 'shown')
    assert (cfg.default_hooks.visualization.type, cfg.visualizer) == (hook_type, visualizer)


@pytest.mark.slow
def test_show_dir_draws_with_a_config_without_visualization(cls, tmp_path):
    """End to end: an MMPretrain config that sets ``visualization=None`` and no visualizer
    draws every image, as one with them (it was a ValueError traceback)."""
    root, cfg, ckpt = cls
    bare = tmp_path / 'bare.py'
    bare.write_text(f"_base_ = '{cfg}'\ndefault_hooks = dict(visualization=None)\n"
                    'visualizer = None\n')
    run_tool('test.py', bare, ckpt, '--work-dir', tmp_path / 'work', '--show-dir', 'shown')
    assert drawings(tmp_path / 'work') == sorted(
        f"{osp.relpath(p, root / 'images')}_0.png" for p in glob.glob(str(root / 'images/*/*.png')))


def test_a_config_that_cannot_test_and_a_work_dir_that_is_a_file(tmp_path, capsys):
    """test.py on a pretraining config (no test_dataloader/test_cfg/test_evaluator) ended in
    MMEngine's 'self._test_loop should not be None' traceback after the runner was built, the
    preflight having passed; a --work-dir that is a file, train.py's and test.py's, in a
    FileExistsError traceback. Both: one line, exit 2."""
    pretrain = osp.join(ROOT, 'configs/demo/genview_mocov2_r18_tiny_cpu.py')
    with pytest.raises(SystemExit) as exit_:
        run_script('test.py', pretrain, tmp_path / 'epoch_1.pth')
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f'test.py: error: {pretrain} has no test_dataloader, test_cfg, test_evaluator: it does '
        'not say how to test (a pretraining config?); test with an evaluation config such as '
        'configs/benchmarks/ or configs/detection/')
    a_file = tmp_path / 'work'
    a_file.write_text('mine')
    for tool, args in (('train.py', [pretrain]), ('test.py', [MASK_CFG, 'ckpt.pth'])):
        with pytest.raises(SystemExit) as exit_:
            run_script(tool, *args, '--work-dir', a_file)
        assert exit_.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(
            f'error: --work-dir {a_file} is a file, not a folder: pass a folder (it is created '
            'if missing)')
        with pytest.raises(SystemExit) as exit_:  # a NotADirectoryError traceback before
            run_script(tool, *args, '--work-dir', a_file / 'sub' / 'deeper')
        assert exit_.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(
            f"error: --work-dir {a_file / 'sub' / 'deeper'}: {a_file} is a file, not a folder, "
            'so it cannot be created: pass a folder path')
        with pytest.raises(SystemExit) as exit_:  # passed the check, then an OSError traceback
            run_script(tool, *args, '--work-dir', '/sys/genview-test-work')
        assert exit_.value.code == 2
        assert capsys.readouterr().err.splitlines()[-1].endswith(
            'error: --work-dir /sys/genview-test-work: no file can be created in /sys '
            '(Permission denied), so it cannot be created: pass a folder path')
    assert a_file.read_text() == 'mine'


def test_show_dir_draws_on_every_rank(tmp_path, monkeypatch):
    """Upstream's drawing methods run on rank 0 only (``master_only``): a distributed test with
    --show-dir drew rank 0's share of the images. Drawings into files now happen on every rank
    (each its own images); without a file (a backend's log) it stays rank 0's."""
    import numpy as np
    from mmengine.dist import utils as dist_utils
    from mmpretrain.structures import DataSample
    from mmpretrain.visualization import UniversalVisualizer
    keep = load_tool('test').KeepFolders
    visualizer = keep(UniversalVisualizer(name=f'show_dir_ranks_{id(tmp_path)}'), root=None)
    monkeypatch.setattr(dist_utils, 'is_main_process', lambda *a, **k: False)  # rank 1
    image = np.zeros((8, 8, 3), np.uint8)
    out = tmp_path / 'shown' / 'x.png'
    out.parent.mkdir()
    visualizer.visualize_cls(image, DataSample().set_gt_label(0), out_file=str(out))
    assert out.is_file()
    assert visualizer.visualize_cls(image, DataSample().set_gt_label(0)) is None  # rank 0's


@pytest.mark.slow
def test_a_config_dumped_by_a_resumed_run_tests_the_checkpoint(cls, tmp_path):
    """The config a run started with --resume dumps into its work dir holds resume=True (and
    load_from, the checkpoint it resumed). tools/test.py with that config resumed CHECKPOINT as
    a training state: it built the train loop (the train data had to be there) and ended in a
    KeyError 'epoch' traceback for a checkpoint without training meta; it now loads weights."""
    root, cfg, ckpt = cls
    dumped = tmp_path / 'dumped.py'
    dumped.write_text(f"_base_ = '{cfg}'\nresume = True\n"
                      f"load_from = '{tmp_path}/old_work/epoch_3.pth'\n")
    out = run_tool('test.py', dumped, ckpt, '--work-dir', tmp_path / 'work').output
    assert "{'accuracy/top1': " in out
    assert f'Load checkpoint from {ckpt}' in out
