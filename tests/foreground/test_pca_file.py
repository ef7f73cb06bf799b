import pytest
import torch

from genview_mm.foreground import ForegroundPCA, ForegroundPCAError


def _pca(dim=8, encoder='enc/a'):
    g = torch.Generator().manual_seed(0)
    d = torch.randn(dim, generator=g)
    return ForegroundPCA(direction=d / d.norm(), mean=torch.randn(dim, generator=g), alpha=0.25,
                         encoder=encoder, grid=(2, 4), input_size=32, fg_fraction=0.3,
                         num_images=7, sign_rule='+1')


def test_scores_and_ratio_numbers():
    pca = ForegroundPCA(direction=torch.tensor([1.0, 0.0]), mean=torch.tensor([1.0, 0.0]),
                        alpha=0.5, encoder='e', grid=(2, 2), input_size=8)
    tokens = torch.tensor([[[2.0, 5.0], [1.0, 0.0], [1.4, 3.0], [3.0, -1.0]]])
    assert torch.allclose(pca.scores(tokens), torch.tensor([[1.0, 0.0, 0.4, 2.0]]))
    assert pca.foreground_ratio(tokens).tolist() == [0.5]
    assert pca.foreground_ratio(tokens.double()).dtype == torch.float32


def test_round_trip_weights_only(tmp_path):
    pca = _pca()
    path = str(tmp_path / 'fg.pth')
    pca.save(path)
    raw = torch.load(path, weights_only=True)
    assert raw['format'] == 'genview_mm.ForegroundPCA'
    back = ForegroundPCA.load(path, encoder='enc/a', dim=8)
    assert torch.equal(back.direction, pca.direction) and torch.equal(back.mean, pca.mean)
    assert (back.alpha, back.encoder, back.grid, back.input_size) == (0.25, 'enc/a', (2, 4), 32)
    assert (back.fg_fraction, back.num_images, back.sign_rule) == (0.3, 7, '+1')


def test_missing_file_says_how_to_fit(tmp_path):
    with pytest.raises(ForegroundPCAError, match='not found.*fit_foreground_pca.py'):
        ForegroundPCA.load(str(tmp_path / 'nope.pth'))


@pytest.mark.parametrize('content', [b'garbage', None])
def test_not_a_pca_file(tmp_path, content):
    path = tmp_path / 'x.pth'
    if content is None:
        torch.save({'state_dict': torch.zeros(2)}, str(path))
    else:
        path.write_bytes(content)
    with pytest.raises(ForegroundPCAError, match='not a foreground PCA file.*fit_foreground_pca'):
        ForegroundPCA.load(str(path))


def test_wrong_encoder_or_width(tmp_path):
    path = str(tmp_path / 'fg.pth')
    _pca(encoder='enc/a').save(path)
    with pytest.raises(ForegroundPCAError, match="fitted for encoder 'enc/a', not 'enc/b'"):
        ForegroundPCA.load(path, encoder='enc/b')
    with pytest.raises(ForegroundPCAError, match='8-d tokens.*gives 16-d'):
        ForegroundPCA.load(path, dim=16)
