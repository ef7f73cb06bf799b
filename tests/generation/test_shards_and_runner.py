"""Fixed shards and the runner (a stand-in generator, no model): shard ids that do not depend on
the worker count, each image generated exactly once over any sequence of worker counts and
kills, prefetch + writer pool equal to the serial path bit for bit, the views a writer accepts,
a full disk, and the per-image seeds."""
import errno
import os
import re
import time
import weakref
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from gen_tool import leftovers
from genview_mm.apis.generation.job import SetupError
from genview_mm.apis.generation.runner import generate_views
from genview_mm.apis.generation.shards import merge_manifests, my_shards, shard_count, shard_path
from genview_mm.datasets.image_sources import ImageItem, list_folder
from genview_mm.generation import GeneratedView, image_seed
from genview_mm.generation.device_images import to_pil
from genview_mm.structures.manifest import read_manifest, read_rows


class Killed(BaseException):  # not caught as a failed batch: the process dies
    pass


class FakeGen:
    """Views whose pixels depend only on (key, variation) and their seed; counts the images
    generated, and can 'die' after a number of them."""

    name, base_seed = 'fake', 0

    def __init__(self, num_variations=1, die_after=None, tensor=None):
        self.num_variations, self.die_after, self.tensor = num_variations, die_after, tensor
        self.calls = Counter()

    def analyze(self, images, pixels=None):
        ratios = [float(np.asarray(im).mean()) / 255 for im in images]
        return dict(fg_ratio=ratios, noise_level=[100 * int(r * 4) for r in ratios],
                    embeds=torch.zeros(len(images), 2))

    def generate(self, images, keys, analysis=None):
        info = analysis or self.analyze(images)
        views = []
        for i, key in enumerate(keys):
            if self.die_after is not None and sum(self.calls.values()) >= self.die_after:
                raise Killed
            self.calls[key] += 1
            for v in range(self.num_variations):
                seed = image_seed(key, self.base_seed, v)
                pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), np.uint8)
                image = Image.fromarray(pixels)
                if self.tensor == 'hwc':
                    image = torch.from_numpy(pixels)
                elif self.tensor == 'chw':
                    image = torch.from_numpy(pixels).permute(2, 0, 1)
                views.append(GeneratedView(image, key, v, info['noise_level'][i],
                                           info['fg_ratio'][i], seed, 0.5))
        return views


class FailingOn(FakeGen):
    """A :class:`FakeGen` whose generate call fails for a batch holding ``key``."""

    def __init__(self, key, **kw):
        super().__init__(**kw)
        self.key = key

    def generate(self, images, keys, analysis=None):
        if self.key in keys:
            raise RuntimeError('out of memory')
        return super().generate(images, keys, analysis)


@pytest.fixture(scope='module')
def items(tmp_path_factory):
    root = tmp_path_factory.mktemp('src')
    rng = np.random.default_rng(0)
    for i in range(11):
        os.makedirs(root / f'c{i % 2}', exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (6, 6, 3), np.uint8)).save(
            root / f'c{i % 2}' / f'{i:02d}.png')
    return list_folder(str(root))


def test_shards_do_not_depend_on_the_worker_count():
    assert shard_count(0, 4) == 0 and shard_count(11, 4) == 3 and shard_count(12, 4) == 3
    for n in (0, 1, 7, 100):
        for world in (1, 2, 3, 8, 150):
            got = sorted(s for r in range(world) for s in my_shards(n, r, world))
            assert got == list(range(n))  # each shard to exactly one worker
    assert my_shards(10, 1, 4) == [1, 5, 9]
    with pytest.raises(ValueError, match='rank 4 of 4'):
        my_shards(10, 4, 4)


def run(items, out, gen, **kw):
    kw = dict(dict(show_progress=False, shard_size=3, batch_size=2), **kw)
    stats = generate_views(items, gen, str(out), **kw)
    if stats['complete']:
        merge_manifests(str(out))
    return stats


def test_each_image_once_over_worker_counts_and_kills(items, tmp_path):
    out, gen = tmp_path / 'out', FakeGen()
    run(items, out, gen, rank=0, world_size=3)  # shards 0 and 3 of 0..3
    assert sorted(gen.calls) == sorted(it.key for it in items[0:3] + items[9:11])
    run(items, out, gen, rank=1, world_size=2)  # shard 1 (3 is done)
    dying = FakeGen(die_after=1)  # worker 0 of 2: shard 0 is done, it dies inside shard 2
    with pytest.raises(Killed):
        run(items, out, dying, rank=0, world_size=2, batch_size=1, writers=0)
    assert len(list(read_rows(shard_path(str(out), 2, 'journal')))) == 1
    assert sum(dying.calls.values()) == 1
    stats = run(items, out, gen, rank=0, world_size=1)  # one worker finishes
    assert (stats['shards'], stats['ran'], stats['skipped'], stats['new']) == (4, 1, 9, 2)
    assert stats['complete'] and all(n == 1 for n in (gen.calls + dying.calls).values())
    assert len(gen.calls + dying.calls) == 11
    assert sorted(r.key for s in range(4) for r in read_rows(shard_path(str(out), s))) == \
        sorted(it.key for it in items)
    assert not leftovers(str(out))


def test_a_kill_inside_a_shard_keeps_its_finished_images(items, tmp_path):
    out = tmp_path / 'out'
    dying = FakeGen(die_after=2)
    with pytest.raises(Killed):
        run(items, out, dying, shard_size=100, batch_size=1, writers=0)
    assert len(list(read_rows(shard_path(str(out), 0, 'journal')))) == 2
    gen = FakeGen()
    stats = run(items, out, gen, shard_size=100)
    assert (stats['skipped'], stats['new']) == (2, 9) and not set(gen.calls) & set(dying.calls)


class DiesOnceWritten(FakeGen):
    """Dies in its second generate call, once the first call's views are on disk."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def generate(self, images, keys, analysis=None):
        if self.calls:
            for _ in range(500):  # the writer threads' files, not yet their rows
                if len([f for _, _, fs in os.walk(self.out / 'images') for f in fs]) == 2:
                    break
                time.sleep(0.01)
            raise Killed
        return super().generate(images, keys, analysis)


def test_a_kill_journals_the_views_the_writers_finished(items, tmp_path):
    """Ctrl-C (or an error) during a generate call: the views the writer threads had written
    by then were dropped with the pool, unjournaled, so the rerun generated them again."""
    out = tmp_path / 'out'
    dying = DiesOnceWritten(out)
    with pytest.raises(Killed):
        run(items, out, dying, shard_size=100, batch_size=2, writers=2)
    journaled = {r.key for r in read_rows(shard_path(str(out), 0, 'journal'))}
    assert journaled == set(dying.calls) and len(journaled) == 2
    gen = FakeGen()
    stats = run(items, out, gen, shard_size=100)
    assert (stats['skipped'], stats['new']) == (2, 9) and not set(gen.calls) & journaled


def test_a_lost_view_whose_redo_fails_is_recorded_failed_not_ok(items, tmp_path):
    """A view file deleted, and its redo failing: the shard record kept the old ok row (ok
    beat failed), so the merged manifest listed a missing file as ok, the failure reason was
    lost, and every rerun counted the image as lost again. The redo's row replaces it now."""
    out = tmp_path / 'out'
    run(items, out, FakeGen(), shard_size=4)
    lost = items[5]
    row = next(r for r in read_rows(shard_path(str(out), 1)) if r.key == lost.key)
    os.remove(out / row.output)

    stats = run(items, out, FailingOn(lost.key), shard_size=4, batch_size=1)
    assert (stats['redone'], stats['ok'], stats['failed']) == (1, 0, 1)
    now = {r.key: r for r in read_rows(shard_path(str(out), 1))}
    assert not now[lost.key].ok and 'out of memory' in now[lost.key].reason
    assert len(now) == 4 and sum(r.ok for r in now.values()) == 3  # the others kept
    merge_manifests(str(out))
    merged = {r['key']: r for r in read_manifest(str(out), status=None)}
    assert merged[lost.key]['status'] == 'failed' and len(merged) == len(items)
    again = run(items, out, FakeGen(), shard_size=4)
    assert (again['retried'], again['redone'], again['ok']) == (1, 0, 1)


def test_a_failed_redo_in_another_shard_beats_the_older_ok_row(items, tmp_path):
    """The source grew, so a lost view's image moved to the next shard, where its redo failed.
    Its old ok row stays in its former shard's record, and rows of two records were ordered by
    the files' times with an ok row beating a failed one: the merged manifest listed the
    missing file as ok. Each row now carries its attempt: the later attempt wins."""
    out = tmp_path / 'out'
    order = sorted(items, key=lambda it: it.key)
    run(order, out, FakeGen(), shard_size=4)
    lost = order[5]  # shard 1 of 0..2
    row = next(r for r in read_rows(shard_path(str(out), 1)) if r.key == lost.key)
    assert row.attempt == 1
    os.remove(out / row.output)
    grown = [ImageItem(order[i].path, f'a/{i}.png') for i in range(3)] + order  # lost -> shard 2

    stats = run(grown, out, FailingOn(lost.key), shard_size=4, batch_size=1)
    assert (stats['new'], stats['redone'], stats['failed']) == (3, 1, 1)
    assert any(r.key == lost.key and r.ok for r in read_rows(shard_path(str(out), 1)))
    now = next(r for r in read_rows(shard_path(str(out), 2)) if r.key == lost.key)
    assert (now.ok, now.attempt) == (False, 2)
    os.utime(shard_path(str(out), 1))  # the older record written last: file times do not order
    summary = merge_manifests(str(out), check_files=True)
    merged = {r['key']: r for r in read_manifest(str(out), status=None)}
    assert merged[lost.key]['status'] == 'failed' and 'out of memory' in merged[lost.key]['reason']
    assert summary['missing_files'] == [] and len(merged) == len(grown)
    again = run(grown, out, FakeGen(), shard_size=4)
    assert (again['retried'], again['redone'], again['ok']) == (1, 0, 1)
    merge_manifests(str(out))
    assert {r['key']: r['attempt'] for r in read_manifest(str(out))}[lost.key] == 3


def test_outputs_independent_of_batch_shard_workers_and_threads(items, tmp_path):
    """The pooled path (prefetch thread, 3 writers) against the serial one (no prefetch, the
    main thread writes), at other batch and shard sizes and worker counts: the same bytes."""
    serial = tmp_path / 'serial'
    stats = run(items, serial, FakeGen(), prefetch=False, writers=0, batch_size=1,
                shard_size=100)
    assert (stats['ok'], stats['failed'], stats['tried']) == (11, 0, 11)
    pooled = tmp_path / 'pooled'
    for rank in range(2):
        run(items, pooled, FakeGen(), rank=rank, world_size=2, writers=3, batch_size=4,
            shard_size=2)
    a, b = read_manifest(str(serial)), read_manifest(str(pooled))
    assert [r['key'] for r in a] == [r['key'] for r in b] and len(a) == 11
    for ra, rb in zip(a, b):
        assert open(ra['output'], 'rb').read() == open(rb['output'], 'rb').read()
        assert (ra['seed'], ra['noise_level']) == (rb['seed'], rb['noise_level'])


class LevelsGen(FakeGen):
    """Noise levels in a fixed order of analysis; records the size of every generate call."""

    def __init__(self, levels):
        super().__init__()
        self.levels, self.sizes = list(levels), []

    def analyze(self, images, pixels=None):
        info = super().analyze(images, pixels)
        info['noise_level'] = [self.levels.pop(0) for _ in images]
        return info

    def generate(self, images, keys, analysis=None):
        self.sizes.append(len(images))
        return super().generate(images, keys, analysis)


def test_each_loaded_batch_is_one_call_of_mixed_levels(items, tmp_path):
    """Per-level buckets (from before the generator took mixed-level calls) only added partial
    calls: 11 images of alternating levels at --batch-size 4 went as calls of 4, 4, 2 and 1 (on a
    GPU with --compile each padded to 4). Now each loaded batch is one call, whatever its
    levels, and only a shard's last call is partial."""
    gen = LevelsGen([0, 100] * 6)
    stats = run(items, tmp_path / 'out', gen, batch_size=4, shard_size=11)
    assert gen.sizes == [4, 4, 3] and stats['ok'] == 11
    assert sorted(gen.calls) == sorted(it.key for it in items)
    assert set(gen.calls.values()) == {1}
    rows = read_manifest(str(tmp_path / 'out'))
    assert sorted(r['noise_level'] for r in rows) == [0] * 6 + [100] * 5  # levels kept


class SplitLevelsGen(LevelsGen):
    """Fails every call of more than one image; records the level each single call was given."""

    def __init__(self, levels):
        super().__init__(levels)
        self.given = {}

    def generate(self, images, keys, analysis=None):
        self.sizes.append(len(images))
        if len(images) > 1:
            raise RuntimeError('CUDA out of memory (injected)')
        self.given[keys[0]] = analysis and analysis['noise_level'][0]
        return FakeGen.generate(self, images, keys, analysis)


def test_a_failed_batch_retried_image_by_image_keeps_each_images_analysis(items, tmp_path):
    """The retry hands each image its own row of the batch's analysis (not re-analysed, not
    another image's level)."""
    levels = [0, 100, 200, 300] * 3
    gen = SplitLevelsGen(levels)
    stats = run(items, tmp_path / 'out', gen, batch_size=4, shard_size=11)
    keys = sorted(it.key for it in items)
    assert stats['ok'] == 11 and gen.sizes == [4, 1, 1, 1, 1] * 2 + [3, 1, 1, 1]
    assert [gen.given[k] for k in keys] == levels[:11]
    rows = sorted(read_manifest(str(tmp_path / 'out')), key=lambda r: r['key'])
    assert [r['noise_level'] for r in rows] == levels[:11]


class FailingBatchGen(FakeGen):
    """Fails every call of more than one image; a single-image call checks that no failed
    call's tensors are still alive."""

    def __init__(self):
        super().__init__()
        self.held = []

    def generate(self, images, keys, analysis=None):
        activations = torch.ones(len(images), 8)
        assert all(ref() is None for ref in self.held), "a failed call's tensors are alive"
        if len(images) > 1:
            self.held.append(weakref.ref(activations))
            raise RuntimeError('CUDA out of memory (injected)')
        return super().generate(images, keys, analysis)


def test_a_failed_batch_is_retried_once_its_tensors_are_freed(items, tmp_path):
    """The image-by-image retry ran inside the ``except``, beside the failed call's tensors."""
    gen = FailingBatchGen()
    stats = run(items, tmp_path / 'out', gen, batch_size=4, shard_size=11)
    assert (stats['ok'], stats['failed']) == (11, 0) and len(gen.held) == 3
    assert set(gen.calls.values()) == {1}


@pytest.mark.parametrize('kind', ['hwc', 'chw'])
def test_tensor_views_are_written_as_pil_ones(items, tmp_path, kind):
    run(items, tmp_path / 'pil', FakeGen(num_variations=2))
    run(items, tmp_path / kind, FakeGen(num_variations=2, tensor=kind))
    pil, tensor = read_manifest(str(tmp_path / 'pil')), read_manifest(str(tmp_path / kind))
    assert len(pil) == len(tensor) == 22
    for ra, rb in zip(pil, tensor):
        assert open(ra['output'], 'rb').read() == open(rb['output'], 'rb').read()
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), np.uint8)
    for view in (pixels, pixels.transpose(2, 0, 1), torch.from_numpy(pixels)):
        assert np.array_equal(np.asarray(to_pil(view)), pixels)
    with pytest.raises(ValueError, match='uint8 HWC/CHW'):
        to_pil(pixels.astype(np.float32))


def test_full_disk_stops_with_one_line_and_no_temp_file(items, tmp_path, monkeypatch):
    out = tmp_path / 'out'
    real_save = Image.Image.save

    def full(self, fp, *args, **kwargs):
        real_save(self, fp, *args, **kwargs)  # half a file is there...
        raise OSError(errno.ENOSPC, 'No space left on device')  # ...when the disk fills up

    monkeypatch.setattr(Image.Image, 'save', full)
    with pytest.raises(SetupError) as err:
        run(items, out, FakeGen(), writers=2)
    message = str(err.value)
    assert '\n' not in message and message.startswith('no space left on the device writing '
                                                      f'to {out}')
    assert not leftovers(str(out)) or all(p.endswith('.journal') for p in leftovers(str(out)))
    assert not [f for _, _, fs in os.walk(out) for f in fs if '.partial' in f or '.tmp-' in f]
    monkeypatch.undo()
    stats = run(items, out, FakeGen())  # space freed: the rerun finishes
    assert stats['complete'] and stats['new'] + stats['retried'] == 11


def test_a_folder_that_cannot_be_written_stops_the_run_early(tmp_path, monkeypatch):
    """A persistent write error (a read-only or foreign-owned folder) is not a full disk: each
    view was a failed row, and the worker generated its whole share (GPU-hours) before it ended.
    It stops once the views failing in a row reach the limit; failures with written views in
    between do not stop it, and a rerun redoes the failed views."""
    root = tmp_path / 'src'
    root.mkdir()
    for i in range(60):
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(root / f'{i:02d}.png')
    many, out = list_folder(str(root)), tmp_path / 'out'
    real_save = Image.Image.save
    calls = Counter()

    def denied(self, fp, *args, **kwargs):
        calls['save'] += 1
        if calls['save'] % calls['every'] == 0:
            raise PermissionError(errno.EACCES, 'Permission denied', 'x.jpg')
        real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, 'save', denied)
    calls['every'] = 2  # every other view: the run goes on, each failure a retried row
    stats = run(many, out, FakeGen(), shard_size=100, batch_size=2, writers=2)
    assert (stats['ok'], stats['failed']) == (30, 30) and stats['complete']
    calls.update(save=-calls['save'], every=1 - calls['every'])  # now every view fails
    gen = FakeGen()
    with pytest.raises(SetupError) as err:
        run(many, tmp_path / 'denied', gen, shard_size=100, batch_size=2, writers=2)
    message = str(err.value)  # at least 16: the writers hand back several rows at once
    assert '\n' not in message and re.match(
        rf'(1[6-9]|2[0-6]) views in a row could not be written, the last to {tmp_path}/denied/'
        r'images \(', message), message
    assert 'Permission denied' in message and message.endswith('fix that and rerun (it '
                                                               'redoes them)')
    assert sum(gen.calls.values()) <= 16 + 4 * 2 + 2  # the limit, the writers' queue, a batch
    journal = list(read_rows(shard_path(str(tmp_path / 'denied'), 0, 'journal')))
    assert len(journal) >= 16 and not any(r.ok for r in journal)
    monkeypatch.undo()
    stats = run(many, tmp_path / 'denied', FakeGen(), shard_size=100)
    assert stats['complete'] and stats['ok'] == 60 and stats['retried'] == len(journal)


def test_a_folder_that_cannot_be_written_stops_a_run_of_small_shards(tmp_path, monkeypatch):
    """The count of views failing to write in a row started again with each shard: with
    shards of fewer views than the limit (--shard-size 5) the run never stopped and generated
    its whole share into a folder it could not write. The count goes on across shards; a
    rerun redoes every failed view."""
    root = tmp_path / 'src'
    root.mkdir()
    for i in range(60):
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(root / f'{i:02d}.png')
    many = list_folder(str(root))

    def denied(self, fp, *args, **kwargs):
        raise PermissionError(errno.EACCES, 'Permission denied', 'x.jpg')

    monkeypatch.setattr(Image.Image, 'save', denied)
    gen = FakeGen()
    with pytest.raises(SetupError, match='views in a row could not be written'):
        run(many, tmp_path / 'out', gen, shard_size=5, batch_size=2, writers=2)
    assert sum(gen.calls.values()) <= 16 + 4 * 2 + 2  # the limit, the writers' queue, a batch
    monkeypatch.undo()
    stats = run(many, tmp_path / 'out', FakeGen(), shard_size=5)
    assert stats['complete'] and stats['ok'] == 60


def test_verify_decodes_each_view_once_per_run(items, tmp_path, monkeypatch):
    """--verify decoded every view of a shard with work twice: in the plan made before its
    lock is taken and again in the one made under it (ImageNet: two full decodes)."""
    out = tmp_path / 'out'
    run(items, out, FakeGen(), shard_size=100)
    view = sorted(r['output'] for r in read_manifest(str(out)))[3]
    with open(view, 'r+b') as f:  # cut short: only a full decode finds it
        f.truncate(os.path.getsize(view) // 2)
    decoded, real_open = Counter(), Image.open
    monkeypatch.setattr(Image, 'open', lambda path, *a, **k: (
        decoded.update([path]), real_open(path, *a, **k))[1])
    gen = FakeGen()
    stats = run(items, out, gen, shard_size=100, verify=True)
    assert (stats['redone'], stats['skipped'], sum(gen.calls.values())) == (1, 10, 1)
    assert len(decoded) == 11 and set(decoded.values()) == {1}
    decoded.clear()
    assert run(items, out, FakeGen(), shard_size=100, verify=True)['skipped'] == 11
    assert len(decoded) == 11 and set(decoded.values()) == {1}


def test_seed_is_pure_and_distinct():
    # pinned: the same in every process and Python (no salted hash()); OUTPUT_FORMAT otherwise
    assert image_seed('n01/a.jpg', 0) == 5341660829684192621
    assert image_seed('n01/a.jpg', 1, 1) == 1968196751830032783
    seeds = {image_seed(f'img{i}', b, v) for i in range(50) for b in (0, 1) for v in (0, 1)}
    assert len(seeds) == 200
    assert all(0 <= s < 2 ** 63 for s in seeds)


def test_tiny_pipeline_pooled_equals_serial_bit_for_bit(tiny_unclip_path, tiny_unclip_pca,
                                                        photo_dir, tmp_path):
    """The real generator: prefetch thread and writer pool against the serial path, the same
    bytes and numbers; at another batch size, shard size and worker count the same images up to
    the rounding of a batched UNet call."""
    from mmpretrain.registry import MODELS
    gen = MODELS.build(dict(type='AdaptiveNoiseGenerator', pca=tiny_unclip_pca,
                            pretrained=tiny_unclip_path, device='cpu', num_inference_steps=2,
                            output_size=32))
    items = list_folder(photo_dir)
    stats = run(items, tmp_path / 'serial', gen, prefetch=False, writers=0, batch_size=4,
                shard_size=100)
    assert stats['ok'] == 10
    run(items, tmp_path / 'pooled', gen, writers=3, batch_size=4, shard_size=100)
    for rank in range(2):
        run(items, tmp_path / 'other', gen, rank=rank, world_size=2, batch_size=1)
    serial = read_manifest(str(tmp_path / 'serial'))
    fields = ('key', 'noise_level', 'fg_ratio', 'clip_sim', 'seed')
    for other in ('pooled', 'other'):
        rows = read_manifest(str(tmp_path / other))
        assert len(rows) == 10
        for ra, rb in zip(serial, rows):
            if other == 'pooled':
                assert open(ra['output'], 'rb').read() == open(rb['output'], 'rb').read()
                assert [ra[f] for f in fields] == [rb[f] for f in fields]
            else:  # a batch of 1, not 4: the same seed, rounding-level differences only
                pa, pb = (np.asarray(Image.open(r['output']), np.int16) for r in (ra, rb))
                assert np.abs(pa - pb).max() <= 3 and ra['noise_level'] == rb['noise_level']
                assert abs(ra['clip_sim'] - rb['clip_sim']) < 1e-4
