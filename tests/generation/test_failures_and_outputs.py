"""Generation failures and outputs: transient versus undecodable failures and what is retried,
the failure summary, collision-free output names and output checks."""
import os.path as osp

import pytest
from PIL import Image

from genview_mm.apis.generation import shards as outputs
from genview_mm.apis.generation.job import summarize_failures
from genview_mm.apis.generation.shards import check_unique_outputs, output_relpath
from genview_mm.datasets.image_sources import load_image
from genview_mm.structures.manifest import (
    failure_cause,
    failure_kind,
    failure_reason,
    should_retry,
)
from genview_mm.utils.image_files import image_file_ok


def test_failure_kinds_and_retry_rule():
    missing = failure_reason('transient', 'missing file', FileNotFoundError(2, 'No such file'))
    broken = failure_reason('undecodable', 'undecodable image', OSError('cannot identify'))
    assert missing.startswith('transient: missing file: FileNotFoundError:')
    assert failure_kind(missing) == 'transient' and failure_kind(broken) == 'undecodable'
    assert should_retry(missing) and not should_retry(broken)
    assert should_retry(broken, retry_failed=True)
    old = 'unreadable image: FileNotFoundError: [Errno 2] x'  # rows of the previous version
    assert failure_kind(old) == 'transient' and should_retry(old)
    assert failure_cause(missing) == 'transient: missing file'
    assert failure_cause(old) == 'unreadable image'
    with pytest.raises(ValueError, match='failure kind'):
        failure_reason('fatal', 'x', ValueError())


def test_summary_names_the_most_common_cause():
    miss = [f'transient: missing file: FileNotFoundError: /d/{i}.jpg' for i in range(6)]
    bad = ['undecodable: undecodable image: UnidentifiedImageError: /d/x.jpg'] * 2
    msg = summarize_failures(miss + bad, attempted=10)
    assert msg.startswith('8 of 10 images failed (80% >= 50%)')
    assert 'Most common cause: transient: missing file (6 images), e.g. transient: missing ' \
           'file: FileNotFoundError: /d/0.jpg' in msg
    assert '--data-root' in msg and '2 x undecodable: undecodable image' in msg
    assert summarize_failures(miss[:4], attempted=10) is None  # 40% < 50%
    assert summarize_failures(miss[:5], attempted=10) is not None  # exactly 50%
    assert summarize_failures(miss[:1], attempted=10, max_fraction=0.1) is not None
    assert summarize_failures([], attempted=0) is None


def test_load_image_tells_transient_from_undecodable(tmp_path):
    reason = load_image(str(tmp_path / 'nope.jpg'))[1]
    assert reason.startswith('transient: missing file: FileNotFoundError')
    # a folder in a source list: it was 'transient: unreadable file', retried on every rerun
    # with the advice to check permissions
    assert load_image(str(tmp_path))[1].startswith('undecodable: not a file: IsADirectoryError')
    assert summarize_failures([load_image(str(tmp_path))[1]], attempted=1).splitlines()[2] == (
        'Fix: the source list names folders: list image files (then rerun with --retry-failed). '
        'A rerun retries transient failures.')
    (tmp_path / 'junk.jpg').write_bytes(b'\x00not a jpeg')
    assert load_image(str(tmp_path / 'junk.jpg'))[1] == (
        'undecodable: undecodable image: ValueError: cannot decode image file '
        f"{str(tmp_path / 'junk.jpg')!r}")
    Image.new('L', (5, 3), 7).save(tmp_path / 'ok.png')
    img, reason = load_image(str(tmp_path / 'ok.png'))
    assert reason is None and img.mode == 'RGB' and img.size == (5, 3)


def test_output_names_never_collide():
    keys = ['a/x.jpg', 'a/x.png', 'a/x.JPEG', 'a/x.jpeg', 'a/X.jpg', 'A/x.jpg', 'x.jpg']
    names = [output_relpath(k, 0, 1, '.jpg') for k in keys]
    assert len({n.casefold() for n in names}) == len(keys)  # also on case-insensitive disks
    assert names[0].startswith('images/a/x-') and names[0].endswith('.jpg')  # readable
    assert names[-1].startswith('images/x-')
    assert output_relpath('a/x.jpg', 0, 1, '.jpg') == names[0]  # pure
    assert output_relpath('n01440764/n01440764_10026.JPEG', 0, 1, '.jpg') == \
        'images/n01440764/n01440764_10026-8129eb59.jpg'  # the README's example
    v1 = output_relpath('a/x.jpg', 1, 2, '.png')
    assert v1 == names[0][:-4] + '_v1.png'
    check_unique_outputs(keys, 1, '.jpg')


def test_output_names_of_long_source_names_fit_the_file_system(tmp_path):
    """A legal 250-byte source name gave a 259-byte view name: 'File name too long' on every
    write, recorded as a transient failure (redone and thrown away on every rerun). The stem
    is cut to fit 255 bytes (not inside a UTF-8 character); the hash of the whole key keeps
    the names apart; shorter names are unchanged."""
    long_keys = ['d/' + 'x' * 246 + '.jpg', 'd/' + 'x' * 246 + '.png',
                 'd/' + '\u00e9' * 125 + '.jpg']
    for variation, count in ((0, 1), (3, 4)):
        names = [output_relpath(k, variation, count, '.jpeg') for k in long_keys]
        assert len(set(names)) == 3
        for name in names:
            base = name.rsplit('/', 1)[1]
            assert len(base.encode()) <= 255 and base.endswith('.jpeg')
            base.encode().decode('utf-8')  # whole characters only
            (tmp_path / base).write_bytes(b'x')  # the file system takes it
    check_unique_outputs(long_keys, 1, '.jpg')
    fits = output_relpath('d/' + 'x' * 200 + '.jpg', 0, 1, '.jpg')
    assert fits.startswith('images/d/' + 'x' * 200 + '-')  # a name that fits keeps its stem


def test_check_unique_outputs_refuses_a_collision(monkeypatch):
    monkeypatch.setattr(outputs, 'output_relpath',
                        lambda key, v, n, ext: 'images/' + osp.splitext(key)[0] + ext)
    with pytest.raises(ValueError, match="'a/x.jpg' and 'a/X.png' would share"):
        check_unique_outputs(['a/x.jpg', 'a/X.png'], 1, '.jpg')


def test_output_ok(tmp_path):
    path = tmp_path / 'v.jpg'
    Image.new('RGB', (64, 64), (200, 10, 10)).save(path, quality=95)
    assert image_file_ok(str(path)) and image_file_ok(str(path), verify=True)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # truncated: only a decode sees it
    assert image_file_ok(str(path)) and not image_file_ok(str(path), verify=True)
    path.write_bytes(b'')
    assert not image_file_ok(str(path))
    assert not image_file_ok(str(tmp_path / 'gone.jpg'))
    (tmp_path / 'dir.jpg').mkdir()  # a folder where a view should be: lost, redone
    (tmp_path / 'dir.jpg' / 'x').write_bytes(b'x')
    assert not image_file_ok(str(tmp_path / 'dir.jpg'))
    assert not image_file_ok(str(tmp_path / 'dir.jpg'), verify=True)


def test_sources_decoded_as_training_decodes_them(tmp_path):
    """As MMPretrain's LoadImageFromFile (mmcv, OpenCV): an EXIF-rotated JPEG is rotated and
    a 16-bit PNG scaled to 8 bits (on main, PIL generated from the unrotated photo and turned
    the 16-bit image white, so its foreground ratio was not the one training sees)."""
    import cv2
    import numpy as np
    from mmcv.transforms import LoadImageFromFile
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 256, (20, 40, 3), np.uint8))  # 40 wide, 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    photo.save(tmp_path / 'rotated.jpg', exif=exif, quality=95)
    gray16 = (np.arange(24 * 24, dtype=np.uint16).reshape(24, 24) * 113).astype(np.uint16)
    cv2.imwrite(str(tmp_path / 'deep.png'), gray16)
    load = LoadImageFromFile()
    for name, shape in (('rotated.jpg', (40, 20, 3)), ('deep.png', (24, 24, 3))):
        path = str(tmp_path / name)
        img, reason = load_image(path)
        assert reason is None
        ours = np.asarray(img)
        training = load(dict(img_path=path))['img'][..., ::-1]  # BGR -> RGB
        assert ours.shape == shape and np.array_equal(ours, training), name
    deep = np.asarray(load_image(str(tmp_path / 'deep.png'))[0])
    assert np.array_equal(deep[..., 0], (gray16 >> 8).astype(np.uint8))  # not all white
    # a PIL image given to the generator (docs/view_generation.md, "From Python"): opened
    # as it is, or converted to RGB (which keeps the EXIF tag), it is turned as training turns it
    from genview_mm.generation.generator import as_training_decodes
    opened = Image.open(tmp_path / 'rotated.jpg')
    for given in (opened, opened.convert('RGB')):
        assert np.array_equal(np.asarray(as_training_decodes(given)),
                              np.asarray(load_image(str(tmp_path / 'rotated.jpg'))[0]))


def test_two_sources_of_one_output_name_are_one_line(tmp_path, gen_main, capsys,
                                                     tiny_unclip_pca, tiny_unclip_path):
    """'x.30106' and 'x.108228' share their stem and the 8 hex digits of their keys' sha1, so
    one output name: refused, as a ValueError the tool did not catch (a traceback)."""
    from gen_tool import cmd
    listing = tmp_path / 'list.txt'
    listing.write_text('x.30106\nx.108228\n')
    out = tmp_path / 'out'
    assert gen_main(cmd(str(listing), tiny_unclip_pca, tiny_unclip_path, str(out))[2:]) == 2
    err = capsys.readouterr().err
    assert err == ("generate_views.py: error: sources 'x.108228' and 'x.30106' would share the "
                   "output file 'images/x-98457cf5.jpg': rename one of them\n")
    assert not (out / 'shards').exists()
