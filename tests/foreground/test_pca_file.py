"""ForegroundPCA, the PCA file (arXiv:2403.12003, Sec. 3.2): numbers, round trip, old files,
and the refusal of a file fitted for another encoder (by name, architecture, weights
fingerprint, token width, grid or input size)."""
from typing import NamedTuple, Optional, Tuple

import pytest
import torch

from genview_mm.foreground import ForegroundPCA, ForegroundPCAError, check_pca_encoder
from genview_mm.foreground.encoder_identity import EncoderIdentity


class Enc(NamedTuple):
    """What check_pca_encoder reads of an encoder (no weights: identity by name/arch)."""
    name: str
    dim: int = 8
    grid: Tuple[int, int] = (2, 4)
    input_size: int = 32
    arch: Optional[str] = None


class FingerprintedEnc(NamedTuple):
    name: str
    fingerprint: list
    dim: int = 8
    grid: Tuple[int, int] = (2, 4)
    input_size: int = 32
    arch: Optional[str] = 'clip-vit:d8'

    def identity(self) -> EncoderIdentity:
        return EncoderIdentity(self.name, self.arch, self.fingerprint)


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
    assert pca.foreground_ratio(tokens.double()).dtype == torch.float64


def test_round_trip_weights_only(tmp_path):
    pca = _pca()
    path = str(tmp_path / 'fg.pth')
    pca.save(path)
    raw = torch.load(path, weights_only=True)
    assert raw['format'] == 'genview_mm.ForegroundPCA'
    back = ForegroundPCA.load(path)
    check_pca_encoder(back, Enc('enc/a'))
    assert torch.equal(back.direction, pca.direction) and torch.equal(back.mean, pca.mean)
    assert (back.alpha, back.encoder, back.grid, back.input_size) == (0.25, 'enc/a', (2, 4), 32)
    assert (back.fg_fraction, back.num_images, back.sign_rule) == (0.3, 7, '+1')
    assert (back.threshold_rule, back.center, back.source) == ('quantile', True, 'fit')


def test_a_killed_save_leaves_the_old_file(tmp_path, monkeypatch):
    """The save goes through a temporary file: a fit killed while saving left a truncated PCA
    file that the rerun then refused to replace."""
    import os
    path = str(tmp_path / 'pca.pth')
    _pca().save(path)
    before = open(path, 'rb').read()

    def killed(state, f):
        f.write(b'half a pickle')
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, 'save', killed)
    with pytest.raises(KeyboardInterrupt):
        _pca(encoder='enc/b').save(path)
    assert open(path, 'rb').read() == before and os.listdir(tmp_path) == ['pca.pth']


def test_missing_file_says_how_to_fit(tmp_path):
    with pytest.raises(ForegroundPCAError, match='not found.*fit_foreground_pca.py'):
        ForegroundPCA.load(str(tmp_path / 'nope.pth'))
    # a config whose model.scorer.pca_path stayed None: a bare TypeError from os.stat
    with pytest.raises(ForegroundPCAError, match=r'^No foreground PCA file given \(the path is '
                       r'None\): set it \(e\.g\. model\.scorer\.pca_path\)\. Fit one with '):
        ForegroundPCA.load(None)


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
    pca = ForegroundPCA.load(path)
    with pytest.raises(ForegroundPCAError, match="fitted for 'enc/a'.*encoder is 'enc/b'.*"
                       'another name.*fit_foreground_pca.py IMAGES --encoder enc/b'):
        check_pca_encoder(pca, Enc('enc/b'))
    with pytest.raises(ForegroundPCAError, match='8-d tokens.*encoder is .*16-d tokens.*width'):
        check_pca_encoder(pca, Enc('enc/a', dim=16))
    # a pipeline's encoder by hub id: the command the tool can run (it refused 'id/image_encoder')
    with pytest.raises(ForegroundPCAError, match='fit_foreground_pca.py IMAGES --encoder '
                       'stabilityai/stable-diffusion-2-1-unclip --subfolder image_encoder '):
        check_pca_encoder(pca, Enc('stabilityai/stable-diffusion-2-1-unclip/image_encoder'))
    # shapes are checked even when the identity check is off (--no-encoder-check)
    check_pca_encoder(pca, Enc('enc/b'), check_identity=False)
    with pytest.raises(ForegroundPCAError, match='grid at 32 px.*grid at 64 px'):
        check_pca_encoder(pca, Enc('enc/b', input_size=64), check_identity=False)


def test_the_refit_command_quotes_a_folder_with_a_space(tmp_path):
    """The refusal's fix named an encoder folder as it is: a path with a space ran the fit on
    two arguments (an unknown image source, then an error) instead of the folder."""
    folder = tmp_path / 'my models' / 'clip'
    folder.mkdir(parents=True)
    with pytest.raises(ForegroundPCAError) as err:
        check_pca_encoder(_pca(encoder='enc/a'), Enc(str(folder)))
    assert str(err.value).endswith(f"IMAGES --encoder '{folder}' --out PCA.pth")


def test_the_refit_command_of_a_timm_file_names_the_file(tmp_path):
    """A timm encoder with its weights from a file: the refit command fitted timm's download
    instead (or failed offline), and the file it made was refused again."""
    import timm

    from genview_mm.models.encoders import TimmPatchEncoder
    weights = tmp_path / 'my weights' / 'r18.pth'
    weights.parent.mkdir()
    torch.save(timm.create_model('resnet18', pretrained=False, num_classes=0).state_dict(),
               str(weights))
    enc = TimmPatchEncoder('resnet18', input_size=64, checkpoint_path=str(weights))
    with pytest.raises(ForegroundPCAError) as err:
        check_pca_encoder(_pca(encoder='enc/a'), enc)
    assert str(err.value).endswith(f"IMAGES --timm-model resnet18 --timm-checkpoint '{weights}' "
                                   '--input-size 64 --out PCA.pth')


def test_input_size_mismatch_names_both(tmp_path):
    """A ConvNeXt PCA fitted at 256 px (timm's default) is refused for the 224-px scorer."""
    pca = ForegroundPCA(direction=torch.ones(8) / 8 ** 0.5, mean=torch.zeros(8), alpha=None,
                        encoder='convnext_base.clip_laion2b_augreg', grid=(8, 8), input_size=256,
                        encoder_arch='timm:convnext_base')
    scorer_enc = Enc('convnext_base.clip_laion2b_augreg', grid=(7, 7), input_size=224,
                     arch='timm:convnext_base')
    with pytest.raises(ForegroundPCAError) as err:
        check_pca_encoder(pca, scorer_enc, 'pca.pth', 'scorer encoder')
    msg = str(err.value)
    assert '8x8 grid at 256 px' in msg and '7x7 grid at 224 px' in msg and 'scorer encoder' in msg
    assert '--timm-model convnext_base.clip_laion2b_augreg --input-size 224' in msg


def test_same_weights_under_another_name_are_accepted():
    """Fitted from a local folder, used with the hub id (or a moved folder): same weights."""
    fp = [0.1, 0.2, 0.3]
    pca = ForegroundPCA(direction=torch.ones(8) / 8 ** 0.5, mean=torch.zeros(8), alpha=0.0,
                        encoder='/old/place/clip', grid=(2, 4), input_size=32,
                        encoder_arch='clip-vit:d8', fingerprint=fp)
    check_pca_encoder(pca, FingerprintedEnc('openai/clip-vit-base-patch32',
                                            [0.1, 0.2 * (1 + 1e-4), 0.3]))  # bf16-level noise
    with pytest.raises(ForegroundPCAError, match='weights differ'):
        check_pca_encoder(pca, FingerprintedEnc('/old/place/clip', [0.1, 0.25, 0.3]))
    with pytest.raises(ForegroundPCAError, match='architecture differs'):
        check_pca_encoder(pca, Enc('/old/place/clip', arch='clip-vit:d16'))


def test_version_1_file_loads(tmp_path):
    """Files written before the identity fields existed still load (checked by name)."""
    state = dict(direction=torch.tensor([1.0, 0.0]), mean=torch.zeros(2), alpha=0.1,
                 encoder='enc/a', grid=[1, 2], input_size=8, fg_fraction=0.4, num_images=3,
                 sign_rule='center', format='genview_mm.ForegroundPCA', version=1)
    torch.save(state, str(tmp_path / 'v1.pth'))
    pca = ForegroundPCA.load(str(tmp_path / 'v1.pth'))
    assert (pca.threshold_rule, pca.center, pca.fingerprint) == ('quantile', True, None)
    check_pca_encoder(pca, Enc('enc/a', dim=2, grid=(1, 2), input_size=8))


def test_uncentred_projection_and_missing_threshold():
    """The official convention projects without the mean; a file without alpha cannot give
    foreground ratios (the scorer needs none)."""
    pca = ForegroundPCA(direction=torch.tensor([1.0, 0.0]), mean=torch.tensor([5.0, 0.0]),
                        alpha=None, encoder='e', grid=(1, 2), input_size=8, center=False)
    tokens = torch.tensor([[[2.0, 1.0], [-1.0, 3.0]]])
    assert pca.scores(tokens).tolist() == [[2.0, -1.0]]
    assert pca.threshold_rule == 'none'
    with pytest.raises(ForegroundPCAError, match='no foreground threshold.*--alpha'):
        pca.foreground_ratio(tokens)


def test_an_all_zero_direction_is_refused_at_load(tmp_path):
    """Every score of a zero direction is 0 (or ``-mean @ 0``): one side of alpha for every
    token, so every image got the same foreground ratio and noise level, and the scorer's masks
    were all equal (uniform weights), with no warning. The file is refused at load, naming it."""
    pca = _pca()
    pca.save(str(tmp_path / 'good.pth'))
    raw = torch.load(str(tmp_path / 'good.pth'), weights_only=True)
    raw['direction'] = torch.zeros_like(raw['direction'])
    torch.save(raw, str(tmp_path / 'zero.pth'))
    with pytest.raises(ForegroundPCAError, match=r"zero.pth' is malformed \(the direction is "
                       r'all zeros: every token would score the same\)'):
        ForegroundPCA.load(str(tmp_path / 'zero.pth'))
    with pytest.raises(ForegroundPCAError, match='the direction is all zeros'):
        ForegroundPCA(direction=torch.zeros(8), mean=torch.zeros(8), alpha=0.0, encoder='e',
                      grid=(2, 4), input_size=32)


@pytest.mark.parametrize('field,value,said', [
    ('input_size', '32px', "ValueError: invalid literal for int() with base 10: '32px'"),
    ('grid', (4, ), 'IndexError: '),
    ('version', 'two', "ValueError: invalid literal for int() with base 10: 'two'"),
])
def test_a_field_edited_by_hand_is_named_for_the_file(tmp_path, field, value, said):
    """A field that int()/float() cannot read, or a short grid, was a bare ValueError or
    IndexError naming no file (the preflight, catching ForegroundPCAError, crashed on it)."""
    pca = _pca()
    pca.save(str(tmp_path / 'good.pth'))
    raw = torch.load(str(tmp_path / 'good.pth'), weights_only=True)
    raw[field] = value
    torch.save(raw, str(tmp_path / 'edited.pth'))
    with pytest.raises(ForegroundPCAError) as exc:
        ForegroundPCA.load(str(tmp_path / 'edited.pth'))
    assert str(exc.value).startswith(f"{str(tmp_path / 'edited.pth')!r} is malformed ({said}")


def test_low_precision_tokens_score_in_float32_and_no_tokens_are_refused():
    """The projection ran in the tokens' dtype: float16 tokens moved masks against the same
    tokens in float32, integer tokens truncated the direction to zeros (ratio 0). A batch
    without tokens gave NaN ratios."""
    g = torch.Generator().manual_seed(1)
    d = torch.randn(64, generator=g)
    pca = ForegroundPCA(direction=d / d.norm(), mean=torch.randn(64, generator=g) * 3,
                        alpha=0.0, encoder='e', grid=(16, 16), input_size=32)
    tokens = (torch.randn(8, 256, 64, generator=g) * 40).half()
    assert pca.scores(tokens).dtype == torch.float32
    assert torch.equal(pca.foreground_mask(tokens), pca.foreground_mask(tokens.float()))
    ints = torch.randint(-50, 50, (2, 256, 64), generator=g)
    assert torch.equal(pca.foreground_ratio(ints), pca.foreground_ratio(ints.float()))
    assert pca.foreground_ratio(ints).min() > 0
    with pytest.raises(ValueError, match=r'no tokens to count: got tokens of shape \(2, 0, 64\)'):
        pca.foreground_ratio(torch.zeros(2, 0, 64))


def test_a_name_match_does_not_hide_another_architecture():
    """fits_encoder said 'same name' for an encoder of another architecture when the config's
    identity had no fingerprint (a model folder swapped under the same path)."""
    from genview_mm.foreground import fits_encoder
    pca = _pca(encoder='/models/enc')
    pca.encoder_arch, pca.fingerprint = 'clip-vit:d1280-l32-p14-s224', [1.0, 2.0]
    assert fits_encoder(pca, EncoderIdentity('/models/enc', 'clip-vit:d1024-l24-p14-s224')) == (
        False, 'its architecture differs (clip-vit:d1280-l32-p14-s224 vs '
        'clip-vit:d1024-l24-p14-s224)')
    assert fits_encoder(pca, EncoderIdentity('/models/enc', 'clip-vit:d1280-l32-p14-s224')) == (
        True, 'same name')


def test_the_authors_npy_vector_given_as_a_pca_file_says_to_import_it(tmp_path):
    """The official configs point at pca_vectors.npy; given as a PCA file (pca_path, the
    generator's --pca) it was 'not a foreground PCA file (... UnpicklingError)'."""
    import numpy as np
    vector = str(tmp_path / 'pca_vectors.npy')
    np.save(vector, np.ones((8, 1), np.float32))
    with pytest.raises(ForegroundPCAError, match=r"is a NumPy array \(the authors' "
                       r'pca_vectors.npy\?\), not a foreground PCA file: import it with '
                       r'tools/import_official_pca.py'):
        ForegroundPCA.load(vector)
