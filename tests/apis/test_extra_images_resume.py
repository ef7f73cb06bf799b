"""The extra-image scan goes on where a stopped run left it (``resume``): a 100M-image dump takes
hours to walk, and a job killed near its end used to start over. The sample is the one an
uninterrupted run draws, and nothing walked before the stop is walked again."""
import functools
import json
import os
import os.path as osp

import pytest

from genview_mm.apis.extra_images import (
    KeyedReservoir,
    NotEnoughImages,
    sample_extra_images,
    sampling,
)
from genview_mm.apis.extra_images.candidates import Scan


class Stop(BaseException):  # a kill: not caught as an error
    pass


def write_dump(root, folders=8, per=40):
    for d in range(folders):
        os.makedirs(osp.join(root, f'd{d}'), exist_ok=True)
        for i in range(per):
            with open(osp.join(root, f'd{d}', f'{i}.jpg'), 'wb') as f:
                f.write(b'x')
    return str(root)


@pytest.fixture
def offers(monkeypatch):
    """Counts the candidates offered to the reservoir; ``stop_after`` makes the next run stop
    (a kill) after that many."""
    seen = dict(count=0, stop_after=None)
    real = KeyedReservoir.offer

    def offer(self, item):
        if seen['stop_after'] is not None and seen['count'] >= seen['stop_after']:
            raise Stop
        seen['count'] += 1
        real(self, item)

    monkeypatch.setattr(KeyedReservoir, 'offer', offer)
    return seen


def draw(source, tmp_path, **kw):
    lines = []
    kw = dict(dict(resume=str(tmp_path / 'extra.txt.scan'), save_every=0, progress=lines.append),
              **kw)
    report = sample_extra_images(source, 50, None, **kw)
    return report, lines


def test_a_stopped_folder_scan_goes_on_where_it_stopped(tmp_path, offers):
    dump = write_dump(tmp_path / 'dump')
    whole = sample_extra_images(dump, 50, None)
    offers.update(count=0, stop_after=150)
    with pytest.raises(Stop):
        draw(dump, tmp_path)
    saved = json.load(open(tmp_path / 'extra.txt.scan'))
    assert not saved['finished'] and saved['candidates'] == 120  # 3 folders done
    offers.update(count=0, stop_after=None)
    report, lines = draw(dump, tmp_path)
    assert offers['count'] == 320 - saved['candidates']  # the folders left, each once
    assert report.paths == whole.paths and report.candidates == whole.candidates == 320
    assert f'going on from {tmp_path / "extra.txt.scan"}: pass 1, 120 candidates read' in lines
    assert json.load(open(tmp_path / 'extra.txt.scan'))['finished'] is True
    offers.update(count=0)
    again, lines = draw(dump, tmp_path)  # a finished scan is not redone
    assert offers['count'] == 0 and again.paths == whole.paths and again.candidates == 320
    assert lines[0].endswith('320 candidates read, the scan is done')


def test_a_stopped_list_scan_skips_the_entries_read(tmp_path, offers, monkeypatch):
    dump = write_dump(tmp_path / 'dump', folders=3, per=100)
    lst = tmp_path / 'list.txt'
    lst.write_text(''.join(f'd{i % 3}/{i // 3}.jpg\n' for i in range(300)))
    whole = sample_extra_images(str(lst), 50, None, data_root=dump)
    monkeypatch.setattr(sampling, 'Scan', functools.partial(Scan, every=25))
    offers.update(count=0, stop_after=110)
    with pytest.raises(Stop):
        draw(str(lst), tmp_path, data_root=dump)
    assert json.load(open(tmp_path / 'extra.txt.scan'))['position'] == 100
    offers.update(count=0, stop_after=None)
    report, _ = draw(str(lst), tmp_path, data_root=dump)
    assert offers['count'] == 200 and report.paths == whole.paths
    lst.write_text(lst.read_text() + 'd0/0.jpg\n')  # the list changed: scanned again
    offers.update(count=0)
    report, lines = draw(str(lst), tmp_path, data_root=dump)
    assert offers['count'] == 301 and report.paths == whole.paths
    assert any('is the scan of other settings: scanning from the start' in x for x in lines)


def test_a_scan_of_other_settings_or_a_damaged_one_is_not_used(tmp_path, offers):
    dump = write_dump(tmp_path / 'dump', folders=2)
    scan = tmp_path / 'extra.txt.scan'
    other, _ = draw(dump, tmp_path, seed=1)
    offers.update(count=0)
    report, lines = draw(dump, tmp_path)  # seed 0: the seed-1 scan is not carried on
    assert offers['count'] == 80 and report.paths == sample_extra_images(dump, 50, None).paths
    assert report.paths != other.paths and lines[0] == (
        f'{scan} is the scan of other settings: scanning from the start (it is replaced)')
    scan.write_text(scan.read_text()[:1000])  # cut short
    offers.update(count=0)
    again, lines = draw(dump, tmp_path)
    assert offers['count'] == 80 and again.paths == report.paths
    assert lines[0] == f'{scan} is damaged: scanning from the start (it is replaced)'


def test_a_finished_scan_serves_a_rerun_that_allows_fewer(tmp_path, offers):
    dump = write_dump(tmp_path / 'dump', folders=1)
    with pytest.raises(NotEnoughImages, match='has 40 eligible images'):
        draw(dump, tmp_path)
    offers.update(count=0)
    report, _ = draw(dump, tmp_path, allow_fewer=True)
    assert offers['count'] == 0 and len(report.paths) == 40


def test_the_walk_is_saved_only_when_due(tmp_path, monkeypatch):
    """The walk's state (its folders seen grow with the dump) was taken after every folder,
    saved or not: quadratic in the folders of the dump. It is taken when a save is due."""
    from genview_mm.apis.extra_images.candidates import Walk
    dump = write_dump(tmp_path / 'dump', folders=8, per=10)
    taken, real = [], Walk.to_json
    monkeypatch.setattr(Walk, 'to_json', lambda self: taken.append(1) or real(self))
    draw(dump, tmp_path, save_every=3600)
    assert taken == []  # only the finished scan was saved: no walk in it
    draw(dump, tmp_path, save_every=0, seed=1)
    assert len(taken) == 9  # the 8 folders and the top one


def test_a_scan_goes_on_from_another_working_folder(tmp_path, offers, monkeypatch):
    """The walk saved its folders as spelt from the working folder: a rerun from another one,
    naming the same dump otherwise, stopped at a FileNotFoundError (or walked other folders)."""
    dump = write_dump(tmp_path / 'data' / 'dump', folders=4)
    whole = sample_extra_images(dump, 50, None)
    monkeypatch.chdir(tmp_path / 'data')
    offers.update(count=0, stop_after=50)
    with pytest.raises(Stop):
        draw('dump', tmp_path)
    monkeypatch.chdir(tmp_path)
    offers.update(count=0, stop_after=None)
    report, lines = draw(osp.join('data', 'dump'), tmp_path)
    assert lines[0].startswith('going on from') and report.paths == whole.paths
    assert offers['count'] == 160 - 40


def test_a_folder_removed_after_the_stop_is_counted_not_fatal(tmp_path, offers, caplog):
    """A folder listed before the stop and removed before the rerun reached it ended every rerun
    in a FileNotFoundError, and the saved scan kept it so."""
    import shutil
    dump = write_dump(tmp_path / 'dump', folders=4)
    offers.update(count=0, stop_after=50)
    with pytest.raises(Stop):
        draw(dump, tmp_path)
    left = json.load(open(tmp_path / 'extra.txt.scan'))['position']['stack']
    shutil.rmtree(left[0][0])
    offers.update(count=0, stop_after=None)
    report, _ = draw(dump, tmp_path)
    assert offers['count'] == 80 and report.candidates == 120
    assert f'{dump}: 1 folders were removed before the walk reached them' in caplog.text


def test_a_scan_goes_on_where_the_dump_has_another_device_number(tmp_path, offers):
    """A job resumed on another node (or after a remount) sees the dump's file system under
    another device number: the folders seen before the stop were not recognised through a
    link, and a link back to the dump listed it all again under the link's name."""
    dump = write_dump(tmp_path / 'dump', folders=4)
    for d in range(4):
        os.symlink('..', osp.join(dump, f'd{d}', 'up'))  # a loop back to the dump
    whole = sample_extra_images(dump, 50, None)
    assert whole.candidates == 160
    offers.update(count=0, stop_after=50)
    with pytest.raises(Stop):
        draw(dump, tmp_path)
    scan = tmp_path / 'extra.txt.scan'
    saved = json.load(open(scan))
    walk = saved['position']
    walk['seen'] = [[dev + 7, ino] for dev, ino in walk['seen']]  # as another node numbers it
    walk['root_dev'] += 7
    scan.write_text(json.dumps(saved))
    offers.update(count=0, stop_after=None)
    report, _ = draw(dump, tmp_path)
    assert report.candidates == 160 and report.paths == whole.paths


@pytest.mark.parametrize('signum, ends', [('SIGTERM', SystemExit), ('SIGINT', KeyboardInterrupt)])
def test_a_signal_saves_the_scan_at_its_next_stop(tmp_path, monkeypatch, signum, ends):
    """Slurm's preemption (SIGTERM) or Ctrl-C ended the scan at once, losing up to save_every
    (5 minutes) of it: now the scan is saved at its next stop (the folder's end) and the run
    ends as the signal asked (status 143; KeyboardInterrupt), and the rerun goes on from
    there. The handler before the scan is back after it."""
    import signal
    dump = write_dump(tmp_path / 'dump')
    whole = sample_extra_images(dump, 50, None)
    kind, count, real = getattr(signal, signum), [0], KeyedReservoir.offer

    def offer(self, item):  # the signal lands in the middle of the 4th folder
        count[0] += 1
        if count[0] == 150:
            os.kill(os.getpid(), kind)
        real(self, item)

    def at_once(signum, frame):  # what the process did before: end without saving
        raise Stop
    monkeypatch.setattr(KeyedReservoir, 'offer', offer)
    previous = signal.signal(kind, at_once)
    try:
        with pytest.raises(ends) as stopped:
            draw(dump, tmp_path, save_every=1e9)
        assert signal.getsignal(kind) is at_once
    finally:
        signal.signal(kind, previous)
    assert ends is KeyboardInterrupt or stopped.value.code == 143
    saved = json.load(open(tmp_path / 'extra.txt.scan'))
    assert not saved['finished'] and saved['candidates'] == 160  # 4 folders: the 4th finished
    monkeypatch.setattr(KeyedReservoir, 'offer', real)
    report, lines = draw(dump, tmp_path)
    assert report.paths == whole.paths and report.candidates == 320
    assert f'going on from {tmp_path / "extra.txt.scan"}: pass 1, 160 candidates read' in lines
