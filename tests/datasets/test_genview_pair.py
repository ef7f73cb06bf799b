"""GenViewPairDataset: MultiView's arguments, view assignment, prob, fallback on bad files,
manifest matching, and GenViewPairHook's start-of-training check."""
import os
import os.path as osp
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from genview_mm.datasets import GenViewPairDataset, ManifestIndex
from genview_mm.engine import GenViewPairHook
from helpers import photos_with_views, write_photos

N = 6


@pytest.fixture
def data(tmp_path):
    """6 photos (24 px) in src_root/cls/ and a fake manifest whose view i is solid 10*(i+1)."""
    return photos_with_views(str(tmp_path), N, 24, ext='.png')


def original_bgr(path):
    return np.asarray(Image.open(path).convert('RGB'))[..., ::-1]


def run(transform, path):
    return transform(dict(img_path=path, sample_idx=0))


def test_generated_view_in_random_slot_about_half(data):
    np.random.seed(0)
    t = GenViewPairDataset(manifest=data.manifest, transforms=[[]])  # identity views
    slots = []
    for k in range(400):
        i = k % N
        out = run(t, data.sources[i])
        slot = out['genview_slot']
        assert slot in (0, 1)
        slots.append(slot)
        gen, orig = out['img'][slot], out['img'][1 - slot]
        assert gen.shape == (24, 24, 3) and np.all(gen == 10 * (i + 1))
        np.testing.assert_array_equal(orig, original_bgr(data.sources[i]))
        assert out['genview_noise_level'] == (100, 200, 0, 300, 400, 100)[i]
        assert out['genview_fallback'] is False
    frac = np.mean(slots)
    assert abs(frac - 0.5) < 4 * np.sqrt(0.25 / 400), frac  # binomial, 4 sigma


@pytest.mark.parametrize('prob', [0.0, 0.3])
def test_prob_respected(data, prob):
    np.random.seed(1)
    t = GenViewPairDataset(manifest=data.manifest, transforms=[[]], prob=prob)
    used = [run(t, data.sources[k % N])['genview_slot'] >= 0 for k in range(500)]
    assert abs(np.mean(used) - prob) <= 4 * np.sqrt(prob * (1 - prob) / 500) + 1e-9


def test_multiview_arguments_one_pipeline_per_slot_and_more_views(data):
    resize = [[dict(type='Resize', scale=s)] for s in (8, 16, 4)]
    t = GenViewPairDataset(manifest=data.manifest, transforms=resize, num_views=[1, 1, 3])
    out = run(t, data.sources[0])
    assert [im.shape[0] for im in out['img']] == [8, 16, 4, 4, 4]
    with pytest.raises(ValueError, match='one entry per pipeline'):
        GenViewPairDataset(manifest=data.manifest, transforms=resize, num_views=[1, 1])
    with pytest.raises(ValueError, match='at least 2 views'):
        GenViewPairDataset(manifest=data.manifest, transforms=[[]], num_views=1)
    # one pipeline without its brackets: the message said to give num_views an entry for each
    # transform, which builds a pipeline of each transform alone (views of a flip, of a crop)
    with pytest.raises(ValueError, match=re.escape(
            'num_views [2] needs one entry per pipeline in transforms (2 given), as in MultiView'
            ': transforms holds transforms, not pipelines (lists of them); for one pipeline '
            'write transforms=[pipeline]')):
        GenViewPairDataset(manifest=data.manifest, num_views=2,
                           transforms=[dict(type='Resize', scale=8), dict(type='RandomFlip')])


def test_swav_layout_generated_view_only_among_the_global_crops(data):
    """num_views=[2, 6] as upstream SwAV: the pair is the two 224-px-like crops."""
    np.random.seed(2)
    t = GenViewPairDataset(manifest=data.manifest, num_views=[2, 6],
                           transforms=[[], [dict(type='Resize', scale=8)]])
    for k in range(20):
        out = run(t, data.sources[k % N])
        assert len(out['img']) == 8 and out['genview_slot'] in (0, 1)
        assert all(im.shape[0] == 8 for im in out['img'][2:])
        assert np.all(out['img'][out['genview_slot']] == 10 * (k % N + 1))


def test_arguments_of_an_unreleased_version_are_refused(data):
    """view_pipelines/extra_views were never released: MultiView's arguments only."""
    with pytest.raises(TypeError, match='view_pipelines'):
        GenViewPairDataset(manifest=data.manifest, view_pipelines=[[dict(type='Resize',
                                                                         scale=8)]])
    with pytest.raises(TypeError, match='extra_views'):
        GenViewPairDataset(transforms=[[]], manifest=data.manifest,
                           extra_views=dict(num_views=3, pipeline=[]))


def test_after_upstream_loader_and_without_manifest(data):
    """Behind upstream's LoadImageFromFile the loaded original is used as it is; without a
    manifest the error says which setting to give."""
    from mmcv.transforms import Compose, LoadImageFromFile
    pipeline = Compose([LoadImageFromFile(),
                        GenViewPairDataset(manifest=data.manifest, transforms=[[]])])
    out = pipeline(dict(img_path=data.sources[1], sample_idx=0))
    np.testing.assert_array_equal(out['img'][1 - out['genview_slot']],
                                  original_bgr(data.sources[1]))
    t = GenViewPairDataset(transforms=[[]])
    with pytest.raises(ValueError, match='genview = dict\\(manifest='):
        run(t, data.sources[0])


def test_the_generated_view_is_decoded_as_the_original_was(data):
    """Behind a loader with to_float32=True or color_type='grayscale' the generated view was
    still colour uint8: the two views of a pair (and the slots of a batch) had other dtypes
    or shapes."""
    from mmcv.transforms import Compose, LoadImageFromFile
    for options, dtype, shape in ((dict(to_float32=True), np.float32, (24, 24, 3)),
                                  (dict(color_type='grayscale'), np.uint8, (24, 24))):
        np.random.seed(0)
        pipeline = Compose([LoadImageFromFile(**options),
                            GenViewPairDataset(manifest=data.manifest, transforms=[[]], prob=1)])
        out = pipeline(dict(img_path=data.sources[2], sample_idx=0))
        assert [v.dtype for v in out['img']] == [dtype, dtype], options
        assert [v.shape for v in out['img']] == [shape, shape], options
        assert np.all(out['img'][out['genview_slot']] == 30)  # view 2 is solid 30


@pytest.mark.parametrize('kind', ['16-bit', 'BGRA'])
def test_an_unchanged_original_gets_its_depth_and_channels(data, kind):
    """Behind color_type='unchanged' a 16-bit original was paired with a view of values 0..255
    (nearly black beside it) and a BGRA original with a 3-channel view (a batch that does not
    stack)."""
    import cv2
    from mmcv.transforms import Compose, LoadImageFromFile
    src = data.sources[2]
    grey = np.full((24, 24, 3), 100, np.uint8)
    cv2.imwrite(src, grey.astype(np.uint16) * 257 if kind == '16-bit' else
                np.dstack([grey, np.full((24, 24), 9, np.uint8)]))
    np.random.seed(0)
    pipeline = Compose([LoadImageFromFile(color_type='unchanged'),
                        GenViewPairDataset(manifest=data.manifest, transforms=[[]], prob=1)])
    out = pipeline(dict(img_path=src, sample_idx=0))
    view, orig = out['img'][out['genview_slot']], out['img'][1 - out['genview_slot']]
    assert (view.dtype, view.shape) == (orig.dtype, orig.shape)
    if kind == '16-bit':
        assert view.dtype == np.uint16 and np.all(view == 30 * 257) and np.all(orig == 25700)
    else:
        assert view.shape == (24, 24, 4)
        assert np.all(view[..., :3] == 30) and np.all(view[..., 3] == 255)


@pytest.mark.parametrize('damage', ['delete', 'corrupt'])
def test_bad_generated_file_falls_back_to_original(data, damage):
    victim = osp.join(data.gen_dir, osp.splitext(osp.basename(data.sources[2]))[0] + '.png')
    if damage == 'delete':
        os.remove(victim)
    else:
        with open(victim, 'wb') as f:
            f.write(b'\x89PNG this is not an image')
    t = GenViewPairDataset(manifest=data.manifest, transforms=[[]])
    out = run(t, data.sources[2])
    assert out['genview_slot'] == -1 and out['genview_fallback'] is True
    for view in out['img']:
        np.testing.assert_array_equal(view, original_bgr(data.sources[2]))
    assert run(t, data.sources[1])['genview_slot'] in (0, 1)  # others unaffected


def test_a_bad_generated_file_draws_what_a_good_one_draws(data):
    """The fallback skipped the slot draw, so one missing view shifted the random numbers of
    every later sample in that worker (their crops and slots), not only its own."""
    os.remove(osp.join(data.gen_dir, osp.splitext(osp.basename(data.sources[2]))[0] + '.png'))
    good = photos_with_views(osp.join(osp.dirname(data.manifest), 'intact'), N, 24, ext='.png')
    after = []
    for d in (data, good):
        np.random.seed(3)
        t = GenViewPairDataset(manifest=d.manifest, transforms=[[]])
        out = [run(t, d.sources[i]) for i in (0, 2, 1)]
        after.append(([o['genview_slot'] for o in out[::2]], np.random.rand()))
    assert after[0] == after[1]


def test_a_similarity_that_is_not_finite_counts_as_unknown(data, tmp_path):
    """A row whose clip_sim is NaN (JSON's NaN, written before the generator recorded it as
    null) passed min_clip_sim and was counted neither as filtered nor as unknown."""
    import json
    rows = [json.loads(line) for line in open(data.manifest)]
    rows[0]['clip_sim'], rows[1]['clip_sim'] = float('nan'), 0.9
    manifest = osp.join(osp.dirname(data.manifest), 'nan.jsonl')
    with open(manifest, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows)
    index = ManifestIndex(manifest, min_clip_sim=0.5)
    unknown = sum(r['status'] == 'ok' and r.get('clip_sim') is None for r in rows)
    assert index.stats['no_clip_sim'] == unknown + 1


def manifest_warnings_of(index) -> list:
    """The messages :func:`manifest_warnings` logs for ``index``."""
    import logging

    from genview_mm.engine.hooks.genview_pair_hook import manifest_warnings
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger(f'manifest_warnings_{id(index)}')
    logger.addHandler(handler)
    manifest_warnings(index, logger)
    return messages


def test_two_views_claiming_one_variation_are_counted_and_warned(data, tmp_path):
    """Manifests of two runs concatenated by hand: rows with the same (key, variation) and
    different outputs were all kept without a word, so those images drew from extra views at
    other noise levels (tools/merge_manifests.py reports them as conflicts)."""
    import json
    rows = [json.loads(line) for line in open(data.manifest)]
    ok = [r for r in rows if r['status'] == 'ok']
    redo = [dict(r, output=r['output'].replace('.', '_redo.', 1), noise_level=500)
            for r in ok[:2]]
    manifest = osp.join(osp.dirname(data.manifest), 'two_runs.jsonl')
    with open(manifest, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows + redo)
    index = ManifestIndex(manifest)
    assert index.stats['conflicts'] == 2 and index.stats['duplicates'] == 0
    assert ManifestIndex(data.manifest).stats['conflicts'] == 0
    messages = manifest_warnings_of(index)
    assert messages[-1] == (f'GenView manifest {manifest}: 2 ok rows give another view of an '
                            'image variation already listed (manifests of different runs '
                            'concatenated?): those images draw from each of their views. '
                            'tools/merge_manifests.py keeps the newest row of each image '
                            'variation.')


def test_a_view_listed_for_two_images_is_counted_and_warned(data, tmp_path):
    """Two images whose rows name one output (a manifest written by hand, one placeholder for
    missing views) were both paired with that picture, reported as 100% covered, no word."""
    import json
    rows = [json.loads(line) for line in open(data.manifest)]
    ok = [r for r in rows if r['status'] == 'ok']
    first_view = {}
    for r in ok:  # the first view of each image
        first_view.setdefault(r['key'], r['output'])
    keys = sorted(first_view)
    assert len(keys) >= 3
    firsts = [next(r for r in ok if r['key'] == k) for k in keys[1:3]]
    shared = [dict(r, output=first_view[keys[0]]) if r in firsts else r for r in rows]
    manifest = osp.join(osp.dirname(data.manifest), 'shared.jsonl')
    with open(manifest, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in shared)
    index = ManifestIndex(manifest)
    n = 2  # the first view of keys[1] and keys[2] is keys[0]'s
    assert index.stats['shared_views'] == n and index.stats['duplicates'] == 0
    assert ManifestIndex(data.manifest).stats['shared_views'] == 0
    messages = manifest_warnings_of(index)
    assert messages[-1] == (
        f'GenView manifest {manifest}: {n} ok rows give a view that another image lists too '
        '(one output named for several images: a manifest written or edited by hand?): those '
        'images are paired with the same generated picture. Each image needs views of its own '
        '(tools/generate_views.py and tools/import_views.py write them).')


def test_rows_of_two_datasets_sharing_a_key_are_no_conflict(tmp_path):
    """A manifest of two datasets whose images share a relative path: each image draws only
    its own views (mixed keys), yet the rows were counted as conflicts and the warning advised
    tools/merge_manifests.py, which keeps one row per (key, variation): the other dataset's
    views would be dropped."""
    import json
    (tmp_path / 'v1').mkdir()
    (tmp_path / 'v2').mkdir()
    rows = []
    for n, root in ((1, '/d1/train'), (2, '/d2/train')):
        Image.new('RGB', (8, 8)).save(tmp_path / f'v{n}' / 'a.jpg')
        rows.append(dict(source=f'{root}/n01/a.jpg', key='n01/a.jpg', variation=0,
                         output=f'v{n}/a.jpg', status='ok'))
    redo = dict(rows[0], output='v1/b.jpg')  # a real conflict: d1's image, another view
    manifest = tmp_path / 'manifest.jsonl'
    manifest.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    index = ManifestIndex(str(manifest))
    assert index.stats['conflicts'] == 0 and index.mixed == {'n01/a.jpg'}
    assert index.lookup('/d1/train/n01/a.jpg')[0][0].endswith('v1/a.jpg')
    manifest.write_text(''.join(json.dumps(r) + '\n' for r in rows + [redo]))
    assert ManifestIndex(str(manifest)).stats['conflicts'] == 1


def test_a_variation_out_of_range_is_a_damaged_row(tmp_path):
    """``variation`` -1 ended in 'negative shift count' naming no file; 2**32 - 1 (an
    unsigned -1) took 20 s and 2 GB for one row (a bit mask per key)."""
    import json
    import tracemalloc
    Image.new('RGB', (8, 8)).save(tmp_path / 'a.jpg')
    manifest = tmp_path / 'manifest.jsonl'
    row = dict(source='/d/train/n01/a.jpg', key='n01/a.jpg', output='a.jpg', status='ok')
    manifest.write_text(json.dumps(dict(row, variation=-1)) + '\n')
    with pytest.raises(ValueError, match=r'manifest\.jsonl:1: not a manifest row \(variation '
                       r'must be >= 0: got -1\)'):
        ManifestIndex(str(manifest))
    manifest.write_text(json.dumps(dict(row, variation=2 ** 32 - 1)) + '\n')
    tracemalloc.start()
    try:
        index = ManifestIndex(str(manifest))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert index.lookup('/x/n01/a.jpg')[0][0].endswith('a.jpg') and peak < 2 ** 24, peak


def test_image_without_generated_view_uses_original_twice(data, tmp_path):
    extra = write_photos(str(tmp_path / 'other'), 1, size=24, ext='.png')[0]
    t = GenViewPairDataset(manifest=data.manifest, transforms=[[]])
    out = run(t, extra)
    assert out['genview_slot'] == -1 and out['genview_fallback'] is False
    assert np.array_equal(out['img'][0], out['img'][1])


def test_manifest_index_matching(data, tmp_path):
    index = ManifestIndex(data.manifest)
    assert index.num_rows == N  # the failed row is skipped
    moved = '/mnt/elsewhere/' + osp.relpath(data.sources[3], data.src_root)
    assert index.lookup(moved)[0][1] == 300  # trailing-path match after the data moved
    assert index.lookup('/mnt/elsewhere/other/img_0003.png') == []  # folder must match too
    assert ManifestIndex(data.manifest, min_clip_sim=0.65).num_rows == 3
    with pytest.raises(FileNotFoundError, match='generate_views'):
        ManifestIndex(str(tmp_path / 'missing.jsonl'))
    with pytest.raises(ValueError) as exc:
        ManifestIndex(data.manifest, min_clip_sim=2.0)
    assert str(exc.value) == (f'The manifest {data.manifest!r} lists no usable generated image: '
                              '6 views filtered by min_clip_sim=2.0: lower it '
                              '(genview.min_clip_sim), or set it to None to keep every view.')
    failed_only = tmp_path / 'failed.jsonl'
    with open(data.manifest) as f:
        failed_only.write_text(f.readlines()[-1])
    with pytest.raises(ValueError, match='no usable generated image. Check that '
                       'tools/generate_views.py finished'):
        ManifestIndex(str(failed_only), min_clip_sim=2.0)
    # two manifests concatenated: each view once (it was listed twice, with twice the chance)
    twice = tmp_path / 'twice.jsonl'
    twice.write_text(open(data.manifest).read() * 2)
    index = ManifestIndex(str(twice))
    assert index.num_rows == N and index.stats['duplicates'] == N
    assert all(len(views) == 1 for views in index.by_key.values())


def build_dataset(root, manifest, **settings):
    from mmpretrain.datasets import CustomDataset
    pipeline = [dict(type='GenViewPairDataset', manifest=manifest, transforms=[[]], **settings)]
    return CustomDataset(data_root=root, with_label=False, pipeline=pipeline)


def fake_runner(dataset, hub=None):
    from mmengine.logging import MessageHub
    logs = []
    logger = SimpleNamespace(info=logs.append, warning=logs.append)
    hub = hub or MessageHub(f'fake-runner-{len(MessageHub._instance_dict)}')
    return SimpleNamespace(train_dataloader=SimpleNamespace(dataset=dataset), logger=logger,
                           message_hub=hub, iter=0), logs


def test_hook_names_an_empty_dataset(data, tmp_path):
    """An empty annotation list was "matches 0 of 0 dataset images ... A dataset image is
    '<empty dataset>' ... Generate views for this dataset"."""
    from mmpretrain.datasets import CustomDataset

    from genview_mm.engine import StartCheckFailed
    (tmp_path / 'empty.txt').write_text('')  # (serialized, MMEngine fails on it first)
    dataset = CustomDataset(data_root=data.src_root, ann_file=str(tmp_path / 'empty.txt'),
                            with_label=False, serialize_data=False, pipeline=[dict(
                                type='GenViewPairDataset', manifest=data.manifest,
                                transforms=[[]])])
    runner, _ = fake_runner(dataset)
    with pytest.raises(StartCheckFailed) as err:
        GenViewPairHook().before_train(runner)
    assert str(err.value) == (
        'The training dataset CustomDataset (pipeline with GenViewPairDataset) has no images: '
        'check its data_root, ann_file and data_prefix.')


def test_hook_stops_a_run_whose_scores_are_not_finite(data):
    """A batch with a non-finite score trains unweighted (decided on the device, counted in
    genview_nonfinite): a scorer failing every iteration turned the run into the baseline with
    no word. The first such batch is a warning, max_unweighted in a row stop the run."""
    import torch

    from genview_mm.engine import RunCheckFailed
    runner, logs = fake_runner(build_dataset(data.src_root, data.manifest))
    hook = GenViewPairHook(max_unweighted=3)
    hook.before_train(runner)
    started = len(logs)

    def step(nonfinite):
        hook.after_train_iter(runner, runner.iter, {},
                              dict(loss=torch.tensor(1.0),
                                   genview_nonfinite=torch.tensor(float(nonfinite))))
        runner.iter += 1
    for count in (0, 2, 1, 0, 4, 4):  # a finite batch ends a streak
        step(count)
    assert logs[started:] == [
        'GenView: 2 pair score(s) of iteration 2 were not finite, so its batch trained with '
        'uniform weights (the upstream loss; counted in train/genview_nonfinite); if it goes on, '
        'a scorer encoder that overflows in float16 does this: try --cfg-options '
        'model.scorer.autocast_dtype=bfloat16 (or model.scorer.autocast=False).']
    with pytest.raises(RunCheckFailed, match=r'4 pair score\(s\) of iteration 7 were not finite.*'
                       r'and so did the 2 before it: the run is training the upstream loss'):
        step(4)
    hook.before_train(runner)  # a new run (no checkpoint loaded) starts its count again
    step(4)
    step(4)
    never = GenViewPairHook(max_unweighted=0)
    for _ in range(200):  # 0: warned, never stopped
        never._check_scores(runner, 9.0)
    assert never._unweighted == 200


def test_hook_fallback_count_continues_after_resume(data):
    """``train/genview_fallbacks`` is a sum over training: a resumed run continues the count
    its checkpoint's message hub holds (it started again from 0)."""
    from mmengine.logging import MessageHub
    from mmengine.structures import BaseDataElement
    saved = MessageHub('before-the-kill')
    saved.update_scalar('train/genview_fallbacks', 5.0)
    hub = MessageHub('resumed')
    hub.load_state_dict(saved.state_dict())  # what --resume does with the checkpoint
    runner, _ = fake_runner(build_dataset(data.src_root, data.manifest), hub)
    hook = GenViewPairHook()
    hook.before_train(runner)
    samples = [BaseDataElement(genview_slot=-1, genview_fallback=fell) for fell in (True, False)]
    hook.after_train_iter(runner, 0, dict(data_samples=samples))
    assert hub.get_scalar('train/genview_fallbacks').current() == 6.0
    runner, _ = fake_runner(build_dataset(data.src_root, data.manifest))  # a fresh run
    hook.before_train(runner)
    assert hook.fallbacks == 0


def test_hook_warns_once_when_the_pipeline_drops_the_genview_fields(data):
    """A pipeline ending in a plain PackInputs drops genview_slot & co.: no gen_frac and no
    fallback count were logged, silently (all views unreadable read the same as all fine)."""
    from mmengine.structures import BaseDataElement
    runner, logs = fake_runner(build_dataset(data.src_root, data.manifest))
    hook = GenViewPairHook()
    hook.before_train(runner)
    started = len(logs)
    for i in range(3):
        hook.after_train_iter(runner, i, dict(data_samples=[BaseDataElement()] * 2))
    assert logs[started:] == [
        'GenViewPairHook: the data samples carry no genview_slot, so train/genview_gen_frac, '
        'genview_noise_level and genview_fallbacks are not logged (nor are generated views that '
        "could not be read counted): pack them with PackInputs(algorithm_keys=('genview_slot', "
        "'genview_noise_level', 'genview_fallback')) after GenViewPairDataset, as the GenView "
        'configs do (genview_keys of configs/_base_/genview_defaults.py).']
    assert 'train/genview_gen_frac' not in runner.message_hub.log_scalars
    samples = [BaseDataElement(genview_slot=0, genview_noise_level=100, genview_fallback=False)]
    hook.after_train_iter(runner, 3, dict(data_samples=samples))  # the fields: no warning
    assert len(logs) == started + 1
    assert runner.message_hub.get_scalar('train/genview_gen_frac').current() == 1.0


def test_hook_counts_a_batch_that_mixes_genview_and_plain_samples(data):
    """A ConcatDataset of a GenView part and a plain MultiView part: a batch whose first
    sample was GenView's ended in AttributeError ('no attribute genview_slot') on a plain one;
    one whose first sample was plain logged nothing and warned that PackInputs drops the
    fields. The plain samples count as originals, and a batch of plain samples alone logs a
    generated fraction of 0 (it repeated the batch before) and no warning."""
    from mmengine.dataset import ConcatDataset
    from mmengine.structures import BaseDataElement
    from mmpretrain.datasets import CustomDataset
    plain = CustomDataset(data_root=data.src_root, with_label=False, pipeline=[])
    runner, logs = fake_runner(ConcatDataset([build_dataset(data.src_root, data.manifest),
                                              plain]))
    hook = GenViewPairHook()
    hook.before_train(runner)
    started = len(logs)
    gen = BaseDataElement(genview_slot=1, genview_noise_level=200, genview_fallback=False)
    hub = runner.message_hub
    for i, samples in enumerate(([gen, BaseDataElement()], [BaseDataElement()] * 3 + [gen])):
        hook.after_train_iter(runner, i, dict(data_samples=samples))
        assert hub.get_scalar('train/genview_gen_frac').current() == 1 / len(samples)
        assert hub.get_scalar('train/genview_noise_level').current() == 200.0
    hook.after_train_iter(runner, 2, dict(data_samples=[BaseDataElement()] * 4))
    assert hub.get_scalar('train/genview_gen_frac').current() == 0.0
    assert 'train/genview_noise_level' not in hub.log_scalars
    assert logs[started:] == []


def test_a_repeated_genview_dataset_has_no_plain_part(data):
    """A wrapper that repeats its dataset (RepeatDataset, ClassBalancedDataset) is longer than
    the dataset it wraps: the hook took the difference for a plain ConcatDataset part, so a
    pipeline dropping the genview fields logged a generated fraction of 0 each iteration and
    never said why (nor counted unreadable views)."""
    from mmengine.dataset import RepeatDataset
    from mmengine.structures import BaseDataElement
    runner, logs = fake_runner(RepeatDataset(build_dataset(data.src_root, data.manifest), 2))
    hook = GenViewPairHook()
    hook.before_train(runner)
    started = len(logs)
    hook.after_train_iter(runner, 0, dict(data_samples=[BaseDataElement()] * 2))
    assert [line.split(',')[0] for line in logs[started:]] == [
        'GenViewPairHook: the data samples carry no genview_slot']
    assert 'train/genview_gen_frac' not in runner.message_hub.log_scalars


def test_a_symlinked_manifest_finds_its_views_beside_the_file_it_names(tmp_path):
    """A manifest file linked into a config folder resolved its relative outputs from the
    link's folder: no view was found, and every image trained on its original."""
    data = photos_with_views(str(tmp_path / 'set'), N, 24, ext='.png')
    (tmp_path / 'cfgs').mkdir()
    link = tmp_path / 'cfgs' / 'manifest.jsonl'
    os.symlink(data.manifest, link)
    direct, linked = ManifestIndex(data.manifest), ManifestIndex(str(link))
    views = [linked.lookup(src) for src in data.sources]
    assert views == [direct.lookup(src) for src in data.sources]
    assert all(v and all(osp.isfile(p) for p, _ in v) for v in views)


@pytest.mark.parametrize('order', [(0, 1, 2), (2, 1, 0), (1, 0, 2)])
def test_a_key_with_rows_of_two_sources_is_mixed_in_any_row_order(tmp_path, order):
    """Source b listed under two keys (two runs with other data roots, concatenated): key
    'n01/x.jpg' has rows of a and of b. Whether it counted as mixed depended on the row order
    (b's key row first: b was no longer a new source when its n01/x.jpg row came, so a's
    image drew b's view too)."""
    from genview_mm.structures.manifest import ManifestRow, write_manifest
    a, b = str(tmp_path / 'a' / 'n01' / 'x.jpg'), str(tmp_path / 'b' / 'n01' / 'x.jpg')
    rows = [ManifestRow(a, 'n01/x.jpg', output=str(tmp_path / 'va.jpg'), noise_level=0),
            ManifestRow(b, 'b/n01/x.jpg', output=str(tmp_path / 'vb1.jpg'), noise_level=100),
            ManifestRow(b, 'n01/x.jpg', output=str(tmp_path / 'vb2.jpg'), noise_level=200)]
    path = str(tmp_path / 'm.jsonl')
    write_manifest(path, [rows[i] for i in order])
    index = ManifestIndex(path)
    assert index.mixed == {'n01/x.jpg'}
    assert index.lookup(a) == [(str(tmp_path / 'va.jpg'), 0)]


def test_hook_reports_coverage_and_rejects_mismatched_manifest(data, tmp_path):
    runner, logs = fake_runner(build_dataset(data.src_root, data.manifest))
    GenViewPairHook().before_train(runner)
    assert f'{N}/{N} checked images (100.0%)' in logs[0]

    other = write_photos(str(tmp_path / 'unrelated' / 'dogs'), 3, size=24, ext='.png')
    runner, _ = fake_runner(build_dataset(str(tmp_path / 'unrelated'), data.manifest))
    assert len(other) == 3
    with pytest.raises(ValueError, match='matches 0 of 3 dataset images'):
        GenViewPairHook().before_train(runner)


def test_rows_of_two_datasets_under_one_key_keep_to_their_source(tmp_path):
    """Two datasets of the same layout, their manifests concatenated: the key 'cls/img_0000.png'
    has a row of each, and an image of either drew its own view or the other dataset's with
    equal odds, while the start check said 100%. A source path now takes its own rows; a path
    that is neither (a copy) takes all, with a warning."""
    import json
    sets = [photos_with_views(str(tmp_path / name), N, 24, ext='.png') for name in 'ab']
    both = tmp_path / 'both.jsonl'
    with open(both, 'w') as out:
        for one in sets:
            with open(one.manifest) as f:
                for row in map(json.loads, f):
                    if row['output']:
                        row['output'] = osp.join(osp.dirname(one.manifest), row['output'])
                    out.write(json.dumps(row) + '\n')
    index = ManifestIndex(str(both))
    alone = [ManifestIndex(one.manifest) for one in sets]
    assert len(index.mixed) == N and index.num_rows == 2 * N
    for one, own in zip(sets, alone):
        for src in one.sources:
            assert index.lookup(src) == own.lookup(src) and not index.ambiguous(src)
    assert [v for _, v in index.matches(sets[1].sources)] == [
        alone[1].lookup(p) for p in sets[1].sources]
    copy = tmp_path / 'c' / 'cls'
    shutil.copytree(osp.dirname(sets[0].sources[0]), copy)
    moved = str(copy / osp.basename(sets[0].sources[1]))
    assert index.ambiguous(moved) and len(index.lookup(moved)) == 2
    runner, logs = fake_runner(build_dataset(str(tmp_path / 'c'), str(both)))
    GenViewPairHook().before_train(runner)
    assert any(f'GenView: {N} of {N} checked images (e.g. ' in line and 'by their key '
               "alone, not by their own path" in line for line in logs), logs
    runner, logs = fake_runner(build_dataset(sets[0].src_root, str(both)))
    GenViewPairHook().before_train(runner)
    assert not any('by their key alone' in line for line in logs)
    # one dataset holding both: each image its own view, no two share one
    from mmpretrain.datasets import CustomDataset
    lst = tmp_path / 'both.txt'
    lst.write_text(''.join(osp.relpath(p, tmp_path) + '\n' for one in sets for p in one.sources))
    pipeline = [dict(type='GenViewPairDataset', manifest=str(both), transforms=[[]])]
    runner, logs = fake_runner(CustomDataset(data_root=str(tmp_path), ann_file=str(lst),
                                             with_label=False, pipeline=pipeline))
    GenViewPairHook().before_train(runner)  # it refused them as sharing rows
    assert logs[0].startswith(f'GenView: {2 * N}/{2 * N} checked images (100.0%)'), logs
    # a's row of one image failed (or was filtered): that image has no view, not b's
    failed = tmp_path / 'failed.jsonl'
    with open(both) as f, open(failed, 'w') as out:
        for i, line in enumerate(f):
            row = json.loads(line)
            if i == 0:
                row.update(status='failed', output=None, reason='generation failed: x')
            out.write(json.dumps(row) + '\n')
    index = ManifestIndex(str(failed))
    first = json.loads(open(failed).readline())['source']
    assert index.lookup(first) == [] and not index.ambiguous(first)
    twin = next(p for p in sets[1].sources if osp.basename(p) == osp.basename(first))
    assert index.lookup(twin) == alone[1].lookup(twin)


def test_hook_refuses_images_that_share_manifest_rows(data, tmp_path):
    """A manifest made for one folder (keys 'img_0001.png', ...) used for a dataset holding
    that folder and another with the same file names: b/img_0001.png matched key
    'img_0001.png' by its trailing path and trained with the view of a/img_0001.png, while the
    hook said 100% coverage. So did two manifests of two datasets concatenated."""
    import json
    import shutil
    root = tmp_path / 'both'
    shutil.copytree(osp.dirname(data.sources[0]), root / 'a')
    shutil.copytree(osp.dirname(data.sources[0]), root / 'b')
    manifest = tmp_path / 'a_only.jsonl'
    with open(data.manifest) as f:
        rows = [json.loads(line) for line in f]
    with open(manifest, 'w') as f:
        for row in rows:
            row['key'] = osp.basename(row['key'])
            if row['output']:  # the failed row has none
                row['output'] = osp.join(osp.dirname(data.manifest), row['output'])
            f.write(json.dumps(row) + '\n')
    runner, _ = fake_runner(build_dataset(str(root / 'a'), str(manifest)))
    GenViewPairHook().before_train(runner)  # one folder: every key matched once
    runner, _ = fake_runner(build_dataset(str(root), str(manifest)))
    with pytest.raises(ValueError) as exc:  # however few are checked: a and b were rarely
        GenViewPairHook(max_check=2).before_train(runner)  # both in the sample
    assert str(exc.value).startswith(f'{2 * N} of {2 * N} dataset images share manifest rows '
                                     'with another image: ')
    assert "both match key 'img_0000.png' of" in str(exc.value)
    assert str(exc.value).endswith('set genview.source_root to the folder its keys are '
                                   'relative to, or generate views for this dataset '
                                   '(tools/generate_views.py).')
    # that advice works: b's images, outside source_root, have no key (they matched a's rows by
    # their trailing path, and the hook refused again): a's train with views, b's on originals
    runner, logs = fake_runner(build_dataset(str(root), str(manifest),
                                             source_root=str(root / 'a')))
    GenViewPairHook().before_train(runner)
    assert [line.split(' checked')[0] for line in logs if 'checked images (' in line] == [
        f'GenView: {N}/{2 * N}']
    assert 'only partly GenView' in next(line for line in logs if 'checked images (' in line)
    # the two folders as two datasets of a ConcatDataset, each with the same manifest: each
    # was checked alone (every key once), so b's images trained on a's views, 100% covered
    from mmengine.dataset import ConcatDataset
    spelled = osp.join(str(tmp_path), '.', 'a_only.jsonl')  # the same file, spelled otherwise
    concat = ConcatDataset([build_dataset(str(root / 'a'), str(manifest)),
                            build_dataset(str(root / 'b'), spelled)])
    runner, _ = fake_runner(concat)
    with pytest.raises(ValueError) as exc:
        GenViewPairHook().before_train(runner)
    assert str(exc.value).startswith(f'{2 * N} of {2 * N} dataset images share manifest rows '
                                     'with another image: ')
    twice = ConcatDataset([build_dataset(str(root / 'a'), str(manifest)),  # one folder twice
                           build_dataset(osp.join(str(root), '.', 'a'), spelled)])
    GenViewPairHook().before_train(fake_runner(twice)[0])
    # the same manifest named by its folder (out/) or through a link: checked apart before
    out = tmp_path / 'out'
    out.mkdir()
    shutil.copyfile(manifest, out / 'manifest.jsonl')
    os.symlink(out / 'manifest.jsonl', tmp_path / 'link.jsonl')
    for spelled in (str(out), str(tmp_path / 'link.jsonl')):
        concat = ConcatDataset([build_dataset(str(root / 'a'), str(out / 'manifest.jsonl')),
                                build_dataset(str(root / 'b'), spelled)])
        with pytest.raises(ValueError, match=f'^{2 * N} of {2 * N} dataset images share '):
            GenViewPairHook().before_train(fake_runner(concat)[0])
    other = photos_with_views(str(tmp_path / 'other'), N, 24, ext='.png')  # its own manifest
    runner, logs = fake_runner(ConcatDataset([build_dataset(str(root / 'a'), str(manifest)),
                                              build_dataset(other.src_root, other.manifest)]))
    GenViewPairHook().before_train(runner)
    assert [line.split(' checked')[0] for line in logs if 'checked images (' in line] == [
        f'GenView: {N}/{N}', f'GenView: {N}/{N}']


def test_hook_checks_that_the_view_files_are_there(data):
    """With most view files deleted the hook said '6/6 checked images (100.0%) have generated
    views' and the run was mostly plain SSL (each missing view falls back to the original)."""
    from genview_mm.engine import StartCheckFailed
    views = [v[0][0] for v in map(ManifestIndex(data.manifest).lookup, data.sources) if v]
    assert len(views) == N
    os.remove(views[0])
    runner, logs = fake_runner(build_dataset(data.src_root, data.manifest))
    GenViewPairHook().before_train(runner)
    assert logs[0].startswith(f'GenView: {N}/{N} checked images (100.0%)')
    assert logs[0].endswith(f' 1 of {N} sampled view files are missing, empty or undecodable '
                            f'(e.g. {views[0]!r}): those images train on the original.')
    open(views[1], 'wb').close()  # empty: as a full disk leaves them
    for view in views[2:4]:  # not images: an error page saved by a failed download
        with open(view, 'wb') as f:
            f.write(b'<html>403 Forbidden</html>')
    with pytest.raises(StartCheckFailed) as exc:
        GenViewPairHook().before_train(runner)
    assert str(exc.value).startswith(f'4 of {N} sampled views of {data.manifest!r} are missing, '
                                     f'empty or undecodable files (e.g. {views[0]!r}), so most '
                                     'images would train on the original (plain SSL)')


def test_hook_reads_the_views_through_the_transforms_backend(data, tmp_path):
    """Views on a named storage backend under plain paths (``backend_args`` with a
    ``path_mapping``, as on a cluster's object store): the transform reads them, but the start
    check looked for local files and stopped the run (6 of 6 missing)."""
    from mmengine.fileio import LocalBackend, register_backend
    from mmpretrain.datasets import CustomDataset

    @register_backend('genview_test_store', force=True)
    class Store(LocalBackend):  # what a petrel-style path_mapping does, on local files
        def __init__(self, path_mapping=None):
            super().__init__()
            self.mapping = path_mapping or {}

        def _map(self, path):
            for src, dst in self.mapping.items():
                path = str(path).replace(src, dst)
            return path

        def get(self, filepath):
            return super().get(self._map(filepath))

        def exists(self, filepath):
            return super().exists(self._map(filepath))
    stored = str(tmp_path / 'store')
    shutil.move(osp.dirname(data.manifest), stored)  # the views now live in the store only
    os.makedirs(osp.dirname(data.manifest))
    shutil.copy(osp.join(stored, osp.basename(data.manifest)), data.manifest)
    backend = dict(backend='genview_test_store',
                   path_mapping={osp.dirname(data.manifest): stored})
    pipeline = [dict(type='GenViewPairDataset', manifest=data.manifest, transforms=[[]],
                     backend_args=backend)]
    runner, logs = fake_runner(CustomDataset(data_root=data.src_root, with_label=False,
                                             pipeline=pipeline))
    GenViewPairHook().before_train(runner)  # it raised StartCheckFailed
    assert logs[0].startswith(f'GenView: {N}/{N} checked images (100.0%)')
    assert 'undecodable' not in logs[0]


def test_hook_stops_a_run_whose_views_cannot_be_read(data):
    """Views deleted (or overwritten) after the start check: every one falls back to the
    original, so the run was plain SSL with only a counter saying so. Most of a window of
    drawn views unreadable stops it."""
    from mmengine.structures import BaseDataElement

    from genview_mm.engine import RunCheckFailed
    runner, _ = fake_runner(build_dataset(data.src_root, data.manifest))
    hook = GenViewPairHook(fallback_window=8)
    hook.before_train(runner)

    def step(used, fell):
        samples = ([BaseDataElement(genview_slot=0, genview_fallback=False)] * used
                   + [BaseDataElement(genview_slot=-1, genview_fallback=True)] * fell
                   + [BaseDataElement(genview_slot=-1, genview_fallback=False)] * 2)
        hook.after_train_iter(runner, 0, dict(data_samples=samples))
    step(2, 2)
    step(2, 2)  # 4 of 8: not most of them
    step(0, 4)
    with pytest.raises(RunCheckFailed, match=r'^GenView: 8 of the last 9 generated views drawn '
                       r'could not be read'):
        step(1, 4)  # 9 drawn: the window is full
    assert runner.message_hub.get_scalar('train/genview_fallbacks').current() == 12.0


def _resume_step(hook, runner, fell, nonfinite=0.0):
    """One iteration of ``hook`` with ``fell`` unreadable views and one read."""
    import torch
    from mmengine.structures import BaseDataElement
    samples = [BaseDataElement(genview_slot=-1, genview_fallback=True)] * fell + \
        [BaseDataElement(genview_slot=0, genview_fallback=False)]
    hook.after_train_iter(runner, 0, dict(data_samples=samples),
                          dict(genview_nonfinite=torch.tensor(nonfinite)))


def _resumed_hook(data):
    """A hook that saved a checkpoint mid-window (7 drawn, 5 unreadable) and mid-streak (2
    unweighted in a row); (that checkpoint, the first runner, a resumed runner and its logs)."""
    from mmengine.logging import MessageHub
    dataset = build_dataset(data.src_root, data.manifest)
    runner, _ = fake_runner(dataset)
    hook = GenViewPairHook(fallback_window=8, max_unweighted=3)
    hook.before_train(runner)
    _resume_step(hook, runner, 3, nonfinite=1.0)
    _resume_step(hook, runner, 2, nonfinite=1.0)
    checkpoint = dict(meta=dict())
    hook.before_save_checkpoint(runner, checkpoint)
    hub = MessageHub(f'resumed-{len(MessageHub._instance_dict)}')
    hub.load_state_dict(runner.message_hub.state_dict())
    return checkpoint, runner, *fake_runner(dataset, hub)


def test_a_resumed_run_stops_where_an_uninterrupted_one_would(data):
    """The fallback window and the streak of unweighted iterations were not in the
    checkpoint: a run resumed mid-window (or mid-streak) started both from 0, so a run preempted
    often never stopped, where the same run uninterrupted did. (Views still unreadable at the
    resume: 2 of the 6 here.)"""
    from genview_mm.engine import RunCheckFailed
    checkpoint, runner, resumed, logs = _resumed_hook(data)
    for name in sorted(os.listdir(data.gen_dir))[:2]:
        os.remove(osp.join(data.gen_dir, name))
    again = GenViewPairHook(fallback_window=8, max_unweighted=3)
    again.after_load_checkpoint(resumed, checkpoint)
    again.before_train(resumed)
    assert '2 of 6 sampled view files are missing' in logs[0]
    with pytest.raises(RunCheckFailed, match=r'and so did the 2 before it'):
        again._check_scores(resumed, 1.0)
    with pytest.raises(RunCheckFailed, match=r'^GenView: 6 of the last 9 generated views'):
        _resume_step(again, resumed, 1)
    fresh = GenViewPairHook(fallback_window=8)  # load_from (no resume): a fresh count
    fresh.after_load_checkpoint(runner, checkpoint)
    fresh.before_train(fake_runner(build_dataset(data.src_root, data.manifest))[0])
    assert (fresh._window, fresh._unweighted) == ([0, 0], 0)


def test_a_resume_after_the_views_are_restored_does_not_count_their_old_failures(data):
    """The stop says: restore the views folder, then rerun with --resume. The window saved in
    the checkpoint still held the failures of before, so the resumed run stopped again once it
    filled, however often it was resumed. When every view file the start check samples reads,
    they are now forgotten (said in the log); the streak of unweighted iterations is kept."""
    from genview_mm.engine import RunCheckFailed
    checkpoint, _, resumed, logs = _resumed_hook(data)  # every view file is there
    again = GenViewPairHook(fallback_window=8, max_unweighted=3)
    again.after_load_checkpoint(resumed, checkpoint)
    again.before_train(resumed)
    assert logs[-1] == ('GenView: the 5 unreadable generated views of the window saved in the '
                        f'checkpoint are not counted: all {N} sampled view files read now.')
    assert (again._window, again._unweighted) == ([0, 0], 2)  # the streak kept
    for _ in range(2):
        _resume_step(again, resumed, 0)  # 2 read: [2, 0] (with the saved window: [9, 5])
    _resume_step(again, resumed, 3)  # [6, 3]: no stop
    with pytest.raises(RunCheckFailed, match=r'^GenView: 6 of the last 10 generated views'):
        _resume_step(again, resumed, 3)  # failing again: stopped within one window


def test_hook_says_when_min_clip_sim_took_the_views(data):
    """Images whose only views min_clip_sim filtered out are named as such, with what to do
    (the advice was to check generate_views/merge_manifests)."""
    from mmpretrain.datasets import CustomDataset
    pipeline = [dict(type='GenViewPairDataset', manifest=data.manifest, transforms=[[]],
                     min_clip_sim=0.65)]  # clip_sim 0.9, 0.8, ..., 0.4: 3 kept
    runner, logs = fake_runner(CustomDataset(data_root=data.src_root, with_label=False,
                                             pipeline=pipeline))
    GenViewPairHook().before_train(runner)
    assert logs[0].startswith(f'GenView: 3/{N} checked images (50.0%)')
    assert logs[0].endswith('partly GenView. 3 views filtered by min_clip_sim=0.65 (3 of the '
                            'checked images have no other): lower it (genview.min_clip_sim).')
    with pytest.raises(ValueError) as exc:
        GenViewPairHook(min_coverage=1.0).before_train(runner)
    assert str(exc.value).endswith('matches 3 of 6 dataset images (needed: >0 and >= 100%). 3 '
                                   'views filtered by min_clip_sim=0.65 (3 of the checked images '
                                   'have no other): lower it (genview.min_clip_sim).')


def test_hook_warns_when_min_clip_sim_cannot_filter(data):
    """Rows without a clip_sim (every imported view) pass any min_clip_sim: a run that set one
    filtered nothing of them and said nothing."""
    import json

    from mmpretrain.datasets import CustomDataset
    with open(data.manifest) as f:
        rows = [json.loads(line) for line in f]
    for row in rows[:2]:
        row['clip_sim'] = None
    with open(data.manifest, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows)
    warned = {}
    for min_clip_sim in (0.65, None):
        pipeline = [dict(type='GenViewPairDataset', manifest=data.manifest, transforms=[[]],
                         min_clip_sim=min_clip_sim)]
        runner, logs = fake_runner(CustomDataset(data_root=data.src_root, with_label=False,
                                                 pipeline=pipeline))
        GenViewPairHook().before_train(runner)
        warned[min_clip_sim] = [line for line in logs if 'record no clip_sim' in line]
    assert warned[None] == [] and warned[0.65] == [
        f'GenView manifest {data.manifest}: min_clip_sim=0.65 filters none of its 2 of {N} views '
        'that record no clip_sim (imported views have none): they are all kept. Generate the '
        'views with tools/generate_views.py to filter them, or set min_clip_sim to None.']


def test_manifest_and_views_on_another_storage_backend(data, tmp_path):
    """The manifest is read and the views decoded through mmengine.fileio: a backend other than
    the local disk (here one serving 'mirror://' paths from a copy of the files) works."""
    import shutil

    import mmengine.fileio as fileio
    from mmengine.fileio.backends import BaseStorageBackend
    mirror = str(tmp_path / 'mirror')
    shutil.copytree(osp.dirname(data.manifest), osp.join(mirror, 'gen'))
    fetched = []

    class MirrorBackend(BaseStorageBackend):
        def _local(self, path):
            return osp.join(mirror, str(path).split('mirror://', 1)[1])

        def get(self, filepath):
            fetched.append(str(filepath))
            with open(self._local(filepath), 'rb') as f:
                return f.read()

        def get_text(self, filepath, encoding='utf-8'):
            return self.get(filepath).decode(encoding)

        def join_path(self, filepath, *filepaths):
            return '/'.join([str(filepath).rstrip('/'), *filepaths])

        def get_local_path(self, filepath):
            from contextlib import contextmanager

            @contextmanager
            def local():
                fetched.append(str(filepath))
                yield self._local(filepath)
            return local()

    fileio.register_backend('genview_test_mirror', MirrorBackend, force=True)
    args = dict(backend='genview_test_mirror')
    from mmcv.transforms import Compose, LoadImageFromFile
    t = Compose([LoadImageFromFile(),  # the originals stay on the local disk
                 GenViewPairDataset(manifest='mirror://gen/manifest.jsonl', transforms=[[]],
                                    backend_args=args)])
    out = run(t, data.sources[1])
    assert out['genview_slot'] in (0, 1) and np.all(out['img'][out['genview_slot']] == 20)
    assert fetched[0] == 'mirror://gen/manifest.jsonl'
    assert fetched[-1].startswith('mirror://gen/images/')  # the view came through the backend


def test_hook_warns_once_about_failed_rows_and_outputs_outside_the_views_folder(data):
    """Rows that give no view (undecodable sources among them) and outputs that are absolute or
    climb out of the manifest's folder are counted in one warning each at start."""
    import json
    outside = osp.join(osp.dirname(data.manifest), '..', 'elsewhere.png')
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(outside)
    with open(data.manifest) as f:
        rows = [json.loads(line) for line in f]
    rows[0]['output'] = osp.abspath(osp.join(osp.dirname(data.manifest), rows[0]['output']))
    rows[1]['output'] = '../elsewhere.png'
    rows.append(dict(rows[-1], source='/nowhere/y.jpg', key='y.jpg',
                     reason='undecodable: undecodable image: UnidentifiedImageError: y.jpg'))
    with open(data.manifest, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows)
    pipeline = [dict(type='GenViewPairDataset', manifest=data.manifest, transforms=[[]])] * 2
    from mmpretrain.datasets import CustomDataset
    runner, logs = fake_runner(CustomDataset(data_root=data.src_root, with_label=False,
                                             pipeline=pipeline))
    GenViewPairHook().before_train(runner)
    failed = [line for line in logs if 'rows failed' in line]
    assert len(failed) == 1  # two transforms, one manifest: one warning
    assert '2 rows failed and give no view, 1 of them "undecodable"' in failed[0]
    outside_lines = [line for line in logs if 'climbs out' in line]
    assert len(outside_lines) == 1
    assert f'1 of its {N} ok rows have an absolute `output` and 1 one that climbs' in \
        outside_lines[0]
    assert f'{N}/{N} checked images (100.0%)' in logs[0]
    assert logs[0].endswith(f"2 of its {N} views lie outside the manifest's folder.")


def test_hook_and_dataset_at_prob0_need_no_manifest(data):
    """prob=0 is plain MultiView: no manifest is read, by the hook or by the transform."""
    from mmpretrain.datasets import CustomDataset
    pipeline = [dict(type='GenViewPairDataset', transforms=[[]], prob=0.0)]
    dataset = CustomDataset(data_root=data.src_root, with_label=False, pipeline=pipeline)
    runner, logs = fake_runner(dataset)
    GenViewPairHook().before_train(runner)
    assert logs == ["GenView: prob 0, no generated view is used (the pairs are MultiView's); "
                    'the manifest is not read.']
    out = dataset[0]
    assert out['genview_slot'] == -1 and np.array_equal(out['img'][0], out['img'][1])


def test_hook_views_imported_in_place_are_counted_not_warned(data):
    """tools/import_views.py writes '..' outputs for views left where they are: when every view
    climbs out together the coverage line counts them and nothing warns."""
    import json
    folder = osp.basename(osp.dirname(data.manifest))
    with open(data.manifest) as f:
        rows = [json.loads(line) for line in f]
    for row in rows:
        row['output'] = row['output'] and f'../{folder}/{row["output"]}'
    with open(data.manifest, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows)
    runner, logs = fake_runner(build_dataset(data.src_root, data.manifest))
    GenViewPairHook().before_train(runner)
    assert not [line for line in logs if 'climbs out' in line]
    assert logs[0].endswith(f"{N} of its {N} views lie outside the manifest's folder.")
    assert run(GenViewPairDataset(manifest=data.manifest, transforms=[[]]),
               data.sources[0])['genview_slot'] in (0, 1)


def test_hook_turns_a_damaged_manifest_into_a_start_error(data, tmp_path):
    """A malformed row the preflight's sample skipped (or a manifest removed since) was a
    13-frame ValueError traceback from before_train, after the model was built; now it is a
    StartCheckFailed (one line, exit 2) naming the file and line."""
    from genview_mm.engine import StartCheckFailed
    lines = open(data.manifest).read().splitlines()
    bad = str(tmp_path / 'bad.jsonl')
    with open(bad, 'w') as f:
        f.write('\n'.join(lines[:2] + ['{"source": "/x/y.jpg", "key": "y.jpg", "variation": 0, '
                                       '"output": null, "status": "ok"}'] + lines[2:]) + '\n')
    runner, _ = fake_runner(build_dataset(data.src_root, bad))
    with pytest.raises(StartCheckFailed, match=r'bad\.jsonl:3: not a manifest row'):
        GenViewPairHook().before_train(runner)
    runner, _ = fake_runner(build_dataset(data.src_root, str(tmp_path / 'gone.jsonl')))
    with pytest.raises(StartCheckFailed, match='gone.jsonl'):
        GenViewPairHook().before_train(runner)


def test_a_dataset_without_image_files_is_refused_by_the_hook_and_warned_by_the_transform(
        data, monkeypatch):
    """An in-memory dataset (no img_path, like MMPretrain's CIFAR-10) with prob > 0 trained as
    plain SSL without a word, and the hook failed with a bare KeyError: 'img_path'."""
    from mmengine.dataset import BaseDataset

    import genview_mm.datasets.transforms.genview_pair as pair_module
    from genview_mm.engine import StartCheckFailed

    class InMemory(BaseDataset):
        def load_data_list(self):
            return [dict(img=np.zeros((8, 8, 3), np.uint8), gt_label=0)] * 3

    pipeline = [GenViewPairDataset(manifest=data.manifest, transforms=[[]])]
    runner, _ = fake_runner(InMemory(pipeline=pipeline))
    with pytest.raises(StartCheckFailed, match='needs image files: sample 0 has no img_path'):
        GenViewPairHook().before_train(runner)
    transform = GenViewPairDataset(manifest=data.manifest, transforms=[[]])
    seen = []
    monkeypatch.setattr(pair_module, 'print_log', lambda msg, **kw: seen.append(msg))
    for _ in range(3):
        out = transform(dict(img=np.zeros((8, 8, 3), np.uint8), sample_idx=0))
    assert out['genview_slot'] == -1
    assert [m for m in seen if 'without img_path' in m] == [
        'GenViewPairDataset: a sample without img_path (an in-memory dataset) gets no generated '
        'view: GenView pairs need image files named in the manifest (or set prob=0)']


def test_hook_refuses_a_manifest_made_from_other_pictures(data, tmp_path):
    """The manifest of one dataset used for another with the same layout (keys
    'cls/img_0000.png'): each image matched a row by its trailing path and trained with the
    view of the other dataset's picture, while the hook logged 100% coverage. The rows' sources
    are still there and are other files: refused. A byte-identical copy (the data moved) is
    not; a re-encoded copy is accepted when the hook is told so."""
    other = tmp_path / 'other'
    shutil.copytree(data.src_root, other)
    mine = sorted(str(p) for p in (other / 'cls').iterdir())
    GenViewPairHook().before_train(fake_runner(build_dataset(str(other), data.manifest))[0])
    # a few re-saved since their views were made (one of six): a warning, not a refusal
    Image.fromarray(255 - original_bgr(mine[2])[..., ::-1]).save(mine[2])
    runner, logs = fake_runner(build_dataset(str(other), data.manifest))
    GenViewPairHook().before_train(runner)
    assert [line for line in logs if 'differ from' in line] == [
        f'GenView: 1 of {N} sampled images that match rows of {data.manifest!r} by file name '
        f"differ from those rows' source (e.g. {mine[2]!r} and {data.sources[2]!r}), so they "
        "would be paired with another picture's generated view. Were they re-saved since their "
        'views were made? Generate their views again.']
    shutil.copy(data.sources[2], mine[2])
    for path in mine:  # other pictures under the same names: most, another dataset's
        Image.fromarray(255 - original_bgr(path)[..., ::-1]).save(path)
    with pytest.raises(ValueError) as exc:
        GenViewPairHook().before_train(fake_runner(build_dataset(str(other), data.manifest))[0])
    assert str(exc.value).startswith(
        f'{N} of {N} sampled images that match rows of {data.manifest!r} by file name differ '
        f"from those rows' source (e.g. {mine[0]!r} and {data.sources[0]!r})")
    assert 'The manifest was made for another dataset or folder' in str(exc.value)
    assert str(exc.value).endswith('set check_sources=False of GenViewPairHook.')
    runner, logs = fake_runner(build_dataset(str(other), data.manifest))
    GenViewPairHook(check_sources=False).before_train(runner)
    assert [line.split(' checked')[0] for line in logs if 'checked images (' in line] == [
        f'GenView: {N}/{N}']
    for path in data.sources:  # sources not here (the released views name the authors' paths)
        os.remove(path)
    GenViewPairHook().before_train(fake_runner(build_dataset(str(other), data.manifest))[0])


def test_other_pictures_among_the_sources_of_a_mixed_key(data, tmp_path):
    """The manifests of datasets A and B (same file names, other pictures) concatenated, used
    for a copy of B: each image draws A's views too. Only the key's first source was compared,
    so A+B was refused and B+A passed; a key whose A rows all failed (B's views only) was
    refused in one order. Every source whose views the image draws is compared now."""
    import json
    b = tmp_path / 'b'
    shutil.copytree(data.src_root, b)
    for path in (b / 'cls').iterdir():
        Image.fromarray(255 - original_bgr(str(path))[..., ::-1]).save(path)
    copy = tmp_path / 'copy_of_b'
    shutil.copytree(b, copy)
    with open(data.manifest) as f:
        rows_a = [json.loads(line) for line in f if '"ok"' in line]
    rows_b = [dict(r, source=str(b / r['key'])) for r in rows_a]
    failed_a = [dict(r, status='failed', output=None, reason='transient: x') for r in rows_a]
    mixed = osp.join(osp.dirname(data.manifest), 'mixed.jsonl')
    for rows, refused in ((rows_a + rows_b, True), (rows_b + rows_a, True),
                          (failed_a + rows_b, False), (rows_b + failed_a, False)):
        with open(mixed, 'w') as f:
            f.writelines(json.dumps(r) + '\n' for r in rows)
        runner, logs = fake_runner(build_dataset(str(copy), mixed))
        if refused:
            with pytest.raises(ValueError, match=f'^{N} of {N} sampled images that match rows '
                               '.* by file name differ from'):
                GenViewPairHook().before_train(runner)
        else:
            GenViewPairHook().before_train(runner)
            assert any(f'GenView: {N}/{N} checked' in line for line in logs)


def test_hook_refuses_a_manifest_whose_views_are_the_images_themselves(data):
    """tools/import_views.py run with VIEWS_ROOT and --source-root swapped matched 100%, and the
    hook said '6/6 checked images (100.0%) have generated views': every pair was two views of
    the original (plain SSL), with no warning. The same file by another path (a link) counts."""
    import json

    from genview_mm.engine import StartCheckFailed
    folder = osp.dirname(data.manifest)
    with open(data.manifest) as f:
        rows = [json.loads(line) for line in f]
    assert all(osp.isabs(r['source']) for r in rows)
    link = osp.join(folder, 'link.png')
    os.symlink(rows[0]['source'], link)
    first = dict(rows[0], output='link.png')  # one row: a warning, the run goes on
    with open(data.manifest, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in [first] + rows[1:])
    runner, logs = fake_runner(build_dataset(data.src_root, data.manifest))
    GenViewPairHook().before_train(runner)
    assert [line for line in logs if 'have themselves' in line] == [
        f'GenView: 1 of {N} sampled images (e.g. {rows[0]["source"]!r}) have themselves as '
        f'their generated view in {data.manifest!r}, so their pairs are two views of the '
        'original (plain SSL): the views folder and --source-root of tools/import_views.py were '
        'swapped, the views folder is a copy of the sources, or the rows name the sources as '
        'outputs; import or generate the views again.']
    with open(data.manifest, 'w') as f:  # every row: the run stops
        f.writelines(json.dumps(dict(r, output=osp.relpath(r['source'], folder))) + '\n'
                     for r in rows)
    runner, logs = fake_runner(build_dataset(data.src_root, data.manifest))
    with pytest.raises(StartCheckFailed, match=f'^{N} of {N} sampled images .* have themselves '
                       'as their generated view'):
        GenViewPairHook().before_train(runner)
    # a views folder copied from the sources (not linked): the same pictures, other files
    with open(data.manifest, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows)
    for r in rows:
        if r['output']:
            shutil.copyfile(r['source'], osp.join(folder, r['output']))
    runner, logs = fake_runner(build_dataset(data.src_root, data.manifest))
    with pytest.raises(StartCheckFailed, match=f'^{N} of {N} sampled images .* have themselves '
                       'as their generated view'):
        GenViewPairHook().before_train(runner)


@pytest.mark.parametrize('setting', [dict(max_check=0), dict(max_check=-1), dict(max_check=2.0),
                                     dict(min_coverage=1.5), dict(max_fallback_fraction=-0.1),
                                     dict(fallback_window=0), dict(max_unweighted=-1),
                                     dict(check_sources='no'), dict(min_coverage='0.9')])
def test_hook_settings_refused_when_built(setting):
    """max_check=0 said that no image had a view ('matches 0 of 0'), a float one (1e5) was a
    TypeError of np.linspace once the dataset was bigger, a negative max_fallback_fraction or
    max_unweighted stopped a healthy run: refused when the runner builds the hook (train.py
    prints a StartCheckFailed as one line, exit 2)."""
    from genview_mm.engine import StartCheckFailed
    name = next(iter(setting))
    with pytest.raises(StartCheckFailed, match=f'GenViewPairHook: {name} must be'):
        GenViewPairHook(**setting)


def test_a_member_without_image_files_is_one_clear_line_in_the_shared_rows_check():
    """shared_keys read img_path by indexing: a ConcatDataset part holding its images in
    memory was a bare KeyError instead of the hook's StartCheckFailed."""
    from genview_mm.engine import StartCheckFailed
    from genview_mm.engine.hooks.genview_pair_hook import shared_keys

    class InMemory:
        def __len__(self):
            return 2

        def get_data_info(self, i):
            return dict(img=np.zeros((2, 2, 3), np.uint8), gt_label=0)

    with pytest.raises(StartCheckFailed, match=r'GenView: GenViewPairDataset needs image files: '
                       r'sample 0 has no img_path \(InMemory holds its images in memory\)'):
        shared_keys([(InMemory(), SimpleNamespace(identity=lambda path: None))])


def test_each_generated_view_of_an_image_is_drawn_alike_at_its_own_size(tmp_path):
    """Two variations of one image (--num-variations 2): each is drawn about half the time with
    its own noise level, and the swapped-in view brings its own img_shape/ori_shape to the
    slot's pipeline (views need not have the source's size). No test had more than one view
    per image, so always taking the first, or keeping the source's shape, passed."""
    import json

    from mmcv.transforms import BaseTransform
    from mmengine.registry import TRANSFORMS

    @TRANSFORMS.register_module(force=True)
    class ShapeMustMatch(BaseTransform):  # what a shape-reading step (e.g. a crop) relies on
        def transform(self, results):
            assert tuple(results['img_shape']) == results['img'].shape[:2], results['img_shape']
            assert tuple(results['ori_shape']) == results['img'].shape[:2], results['ori_shape']
            return results

    src = write_photos(str(tmp_path / 'images' / 'cls'), 1, size=24)[0]
    os.makedirs(tmp_path / 'views' / 'images')
    rows = []
    for v, (value, size, level) in enumerate(((50, 16, 100), (200, 32, 300))):
        out = f'images/x_v{v}.png'
        Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(tmp_path / 'views' / out)
        rows.append(dict(source=src, key='cls/' + osp.basename(src), variation=v, output=out,
                         noise_level=level, fg_ratio=0.5, seed=v, generator='t', clip_sim=0.9,
                         status='ok', reason=''))
    manifest = tmp_path / 'views' / 'manifest.jsonl'
    manifest.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    np.random.seed(3)
    t = GenViewPairDataset(manifest=str(manifest), transforms=[[dict(type='ShapeMustMatch')]])
    seen = []
    for _ in range(400):
        out = run(t, src)
        view = out['img'][out['genview_slot']]
        seen.append((int(view[0, 0, 0]), view.shape[0], out['genview_noise_level']))
        assert out['img'][1 - out['genview_slot']].shape[:2] == (24, 24)  # the original
    assert set(seen) == {(50, 16, 100), (200, 32, 300)}
    second = np.mean([s[0] == 200 for s in seen])
    assert abs(second - 0.5) < 4 * np.sqrt(0.25 / 400), second  # binomial, 4 sigma
