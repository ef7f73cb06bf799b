"""tools/visualize_pairs.py --view1-dir/--view2-dir: images are paired by file name (x.jpg with
x.png), not by sorted position, and the images without a partner are listed."""
import os
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image

from genview_mm.apis.pair_samples import score_folders
from genview_mm.models.scorers import PairScores
from helpers import load_tool

COLOURS = {'apple': 30, 'bird': 90, 'cat': 150, 'dog': 210}


def folder(root, names):
    os.makedirs(root, exist_ok=True)
    for name in names:
        stem = os.path.splitext(name)[0]
        Image.new('RGB', (8, 8), (COLOURS.get(stem, 0),) * 3).save(os.path.join(root, name))
    with open(os.path.join(root, 'notes.txt'), 'w') as f:
        f.write('not an image')
    return str(root)


class RecordingScorer:
    """Stands in for PairQualityScorer: records the views it is given."""
    encoder = SimpleNamespace(input_size=8)

    def to(self, device):
        return self

    def __call__(self, v1, v2, data_preprocessor=None):
        self.views = (v1, v2)
        zeros = torch.zeros(v1.shape[0])
        return PairScores(zeros, zeros, zeros)


def test_folders_pair_by_name_and_report_the_rest(tmp_path, capsys):
    a = folder(tmp_path / 'a', ['bird.jpg', 'cat.png', 'dog.jpg', 'eel.jpg'])
    b = folder(tmp_path / 'b', ['apple.png', 'bird.png', 'cat.jpg', 'dog.webp', 'dog.png'])
    scorer = RecordingScorer()
    img1, img2, _, weights = score_folders(a, b, scorer, num=8)
    assert img1.shape == img2.shape == (2, 8, 8, 3) and weights.shape == (2,)
    # each pair shows the same scene: bird with bird, cat with cat (sorted position would pair
    # a/bird.jpg with b/apple.png)
    np.testing.assert_array_equal(img1[:, 0, 0, 0], [COLOURS['bird'], COLOURS['cat']])
    np.testing.assert_array_equal(img2[:, 0, 0, 0], [COLOURS['bird'], COLOURS['cat']])

    from genview_mm.apis.pair_samples import pair_by_stem
    found = pair_by_stem(a, b)
    assert found.pairs == [('bird.jpg', 'bird.png'), ('cat.png', 'cat.jpg')]
    assert found.unmatched1 == ['dog.jpg', 'eel.jpg']  # dog is ambiguous in b
    assert found.unmatched2 == ['apple.png', 'dog.png', 'dog.webp']

    load_tool('visualize_pairs').report_unmatched(a, b)
    out = capsys.readouterr().out.splitlines()
    assert out == [f'unmatched in {a}: 2 images without a partner of the same name: dog.jpg, '
                   'eel.jpg',
                   f'unmatched in {b}: 3 images without a partner of the same name: apple.png, '
                   'dog.png, dog.webp']


def test_folders_copied_from_a_mac_skip_the_resource_files(tmp_path):
    """macOS leaves '._x.jpg' (AppleDouble metadata, not an image) beside each x.jpg on a
    shared or FAT volume; paired as '._bird' with '._bird', it sorted first and the tool
    stopped on 'cannot identify image file' (every other listing skips dot-files)."""
    a = folder(tmp_path / 'a', ['bird.jpg', 'cat.jpg'])
    b = folder(tmp_path / 'b', ['bird.png', 'cat.png'])
    for side, ext in ((a, 'jpg'), (b, 'png')):
        for stem in ('bird', 'cat'):
            with open(os.path.join(side, f'._{stem}.{ext}'), 'wb') as f:
                f.write(b'\x00\x05\x16\x07 Mac OS X resource fork')
    from genview_mm.apis.pair_samples import pair_by_stem
    found = pair_by_stem(a, b)
    assert found.pairs == [('bird.jpg', 'bird.png'), ('cat.jpg', 'cat.png')]
    assert found.unmatched1 == found.unmatched2 == []
    img1, img2, _, _ = score_folders(a, b, RecordingScorer(), num=8)
    np.testing.assert_array_equal(img1[:, 0, 0, 0], [COLOURS['bird'], COLOURS['cat']])
