"""TimmPatchEncoder and build_patch_encoder: the timm adapter (against a stand-in timm module
and a real ConvNeXt), MODELS registration, building, freezing, errors, and a PCA fitted for a
timm tower through tools/fit_foreground_pca.py."""
import logging
import re
import sys
import types
from contextlib import contextmanager

import pytest
import torch
from torch import nn

from genview_mm.models.encoders import build_patch_encoder
from genview_mm.models.scorers import PairQualityScorer
from helpers import run_tool, save_pca, write_photos


class TinyConvNet(nn.Module):
    """Behaves like a timm ConvNeXt: ``forward_features`` -> (B, C, H/8, W/8)."""

    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.kwargs = kwargs
        self.stem = nn.Conv2d(3, 12, 8, 8)
        self.pretrained_cfg = dict(input_size=(3, 48, 48), mean=(0.1, 0.2, 0.3),
                                   std=(0.5, 0.5, 0.5))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)


@pytest.fixture
def fake_timm(monkeypatch):
    module = types.ModuleType('timm')
    module.create_model = lambda name, **kw: TinyConvNet(name=name, **kw)
    module.is_model = lambda name: True
    monkeypatch.setitem(sys.modules, 'timm', module)
    return module


@contextmanager
def capture_logs():
    """The messages print_log(logger='current') writes inside the block."""
    from mmengine.logging import MMLogger
    logger, messages = MMLogger.get_current_instance(), []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def test_timm_adapter_tokens_and_metadata(fake_timm):
    enc = build_patch_encoder(dict(type='TimmPatchEncoder', model_name='convnext_base.clip_laion2b',
                                   pretrained=False, input_size=32))
    assert enc.model.kwargs == dict(name='convnext_base.clip_laion2b', pretrained=False,
                                    num_classes=0)
    assert (enc.input_size, enc.grid, enc.dim) == (32, (4, 4), 12)
    assert enc.mean == (0.1, 0.2, 0.3) and enc.name == 'convnext_base.clip_laion2b'
    x = torch.randn(2, 3, 32, 32)
    tokens = enc(x)
    fmap = enc.model.forward_features(x)
    assert tokens.shape == (2, 16, 12)
    assert torch.equal(tokens[:, 5], fmap[:, :, 1, 1])  # row-major h*w order
    enc.train()
    assert not enc.training and not any(p.requires_grad for p in enc.parameters())
    default = build_patch_encoder(dict(type='TimmPatchEncoder', model_name='m', pretrained=False))
    assert default.input_size == 48 and default.grid == (6, 6)


def test_scorer_with_timm_encoder(fake_timm, tmp_path):
    pca = save_pca(str(tmp_path / 'pca.pth'), 'convnext_base.clip_laion2b', 12, (4, 4), 32)
    scorer = PairQualityScorer(pca, encoder=dict(
        type='TimmPatchEncoder', model_name='convnext_base.clip_laion2b', pretrained=False,
        input_size=32))
    x = torch.randn(3, 3, 64, 64)
    scores = scorer(x, x.flip(-1))
    assert scores.q.shape == (3, ) and torch.isfinite(scores.q).all()
    assert scorer.state_dict() == {}


def test_registry_and_errors(fake_encoder):
    from mmpretrain.registry import MODELS

    from genview_mm.models.encoders import CLIPPatchEncoder, TimmPatchEncoder
    assert MODELS.get('CLIPPatchEncoder') is CLIPPatchEncoder
    assert MODELS.get('TimmPatchEncoder') is TimmPatchEncoder
    assert build_patch_encoder(fake_encoder) is fake_encoder
    with pytest.raises(KeyError, match='OpenCLIPTower'):
        build_patch_encoder(dict(type='OpenCLIPTower'))
    with pytest.raises(AttributeError, match='lacks'):
        build_patch_encoder(nn.Linear(2, 2))
    with pytest.raises(TypeError, match='must be a str, dict or nn.Module, got int'):
        build_patch_encoder(3)  # not any TypeError: a 3 taken for a dict raises one of ``**``


def test_real_timm_convnext_tower(tmp_path):
    """The adapter on a real (randomly initialised) timm ConvNeXt, as the official scorer's
    LAION-2B ConvNeXt-Base-W tower would be plugged in."""
    import timm  # noqa: F401  (installed by tools/bootstrap_env.sh)

    from genview_mm.models.weighting import quality_weights
    enc = build_patch_encoder(dict(type='TimmPatchEncoder', model_name='convnext_atto',
                                   pretrained=False, input_size=64))
    assert enc.grid == (2, 2)
    tokens = enc(torch.randn(1, 3, 64, 64))
    assert tokens.shape == (1, 4, enc.dim)
    assert not any(p.requires_grad for p in enc.parameters())
    pca = save_pca(str(tmp_path / 'p.pth'), enc.name, enc.dim, (2, 2), 64)
    scorer = PairQualityScorer(pca, encoder=enc)
    scores = scorer(torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64))
    assert torch.isfinite(scores.q).all()
    assert abs(float(quality_weights(scores.q).weights.mean()) - 1.0) < 1e-6


@pytest.mark.slow
def test_fit_tool_for_a_timm_tower_then_score(tmp_path):
    """tools/fit_foreground_pca.py --timm-model: the official scorer's encoder family gets its
    own PCA file through the real tool, and the scorer accepts it."""
    import os.path as osp

    import timm
    weights = str(tmp_path / 'convnext_atto.pth')
    torch.manual_seed(0)
    torch.save(timm.create_model('convnext_atto', pretrained=False, num_classes=0).state_dict(),
               weights)
    images = str(tmp_path / 'images')
    write_photos(images, 6, size=64)
    out = str(tmp_path / 'pca.pth')
    proc = run_tool('fit_foreground_pca.py', images, '--out', out, '--timm-model', 'convnext_atto',
                    '--timm-checkpoint', weights, '--input-size', '64', '--num-workers', '0',
                    '--fg-fraction', '0.5', timeout=300)
    assert 'encoder=convnext_atto grid=(2, 2)' in proc.stdout
    assert osp.isfile(osp.join(tmp_path, 'pca.png'))  # the contact sheet
    scorer = PairQualityScorer(out, encoder=dict(
        type='TimmPatchEncoder', model_name='convnext_atto', pretrained=False,
        checkpoint_path=weights, input_size=64))
    scores = scorer(torch.randn(3, 3, 64, 64), torch.randn(3, 3, 64, 64))
    assert torch.isfinite(scores.q).all() and scores.q.shape == (3, )


def test_local_timm_weights_load_offline_with_or_without_a_classifier(tmp_path, monkeypatch):
    """``checkpoint_path`` replaces the download even with the default ``pretrained=True`` (timm
    went to the hub first: the README's offline fix failed), a full timm checkpoint's classifier
    is dropped (a strict-load error before), OpenCLIP's layout of the tower is converted as timm
    converts it, and another model's weights are refused."""
    import timm
    from timm.models import _builder

    def no_hub(*args, **kwargs):
        raise AssertionError('tried to download')
    monkeypatch.setattr(_builder, 'load_pretrained', no_hub)
    torch.manual_seed(0)
    full = timm.create_model('convnext_atto', pretrained=False, num_classes=10)
    weights = str(tmp_path / 'full.pth')
    torch.save(full.state_dict(), weights)
    with capture_logs() as logs:
        enc = build_patch_encoder(dict(type='TimmPatchEncoder', model_name='convnext_atto',
                                       checkpoint_path=weights, input_size=64))
    assert torch.equal(enc.model.stem[0].weight, full.stem[0].weight)
    # no tag in the name: the file's weights get the default tag's mean and std, said aloud (an
    # untagged convnext_base with the authors' CLIP weights took ImageNet's, silently)
    tag = timm.models.get_pretrained_cfg('convnext_atto').tag
    assert [m for m in logs if 'names no pretrained tag' in m] == [
        f"TimmPatchEncoder: 'convnext_atto' names no pretrained tag, so the weights of {weights} "
        f"get the input mean and std of timm's default tag {tag!r} ({enc.mean}, {enc.std}): if "
        'the file holds other weights, name their tag (convnext_atto.TAG; the authors\' scorer: '
        'convnext_base.clip_laion2b_augreg)']
    with capture_logs() as logs:
        build_patch_encoder(dict(type='TimmPatchEncoder', model_name=f'convnext_atto.{tag}',
                                 checkpoint_path=weights, input_size=64))
    assert not [m for m in logs if 'names no pretrained tag' in m]
    # OpenCLIP's file of the same tower (open_clip_pytorch_model.bin: visual.trunk.*, the
    # projection, the text tower), which timm's loader converts, was refused as another model's
    openclip = {f'visual.trunk.{k}': v for k, v in full.state_dict().items()
                if not k.startswith('head.fc.')}
    openclip.update({'visual.head.proj.weight': torch.randn(16, full.num_features),
                     'text.token_embedding.weight': torch.randn(10, 16)})
    weights = str(tmp_path / 'open_clip_pytorch_model.bin')
    torch.save(openclip, weights)
    enc = build_patch_encoder(dict(type='TimmPatchEncoder', model_name='convnext_atto',
                                   checkpoint_path=weights, input_size=64))
    assert all(torch.equal(v, openclip[f'visual.trunk.{k}'])
               for k, v in enc.model.state_dict().items())
    other = str(tmp_path / 'resnet.pth')
    torch.save(timm.create_model('resnet18', pretrained=False).state_dict(), other)
    with pytest.raises(ValueError, match=f'{other} does not hold the weights of this timm model'):
        build_patch_encoder(dict(type='TimmPatchEncoder', model_name='convnext_atto',
                                 checkpoint_path=other, input_size=64))
    # a wider model of the same family: the same names, other sizes (a RuntimeError of dozens
    # of 'size mismatch' lines, a traceback in import_official_pca.py)
    other = str(tmp_path / 'femto.pth')
    torch.save(timm.create_model('convnext_femto', pretrained=False).state_dict(), other)
    with pytest.raises(ValueError) as info:
        build_patch_encoder(dict(type='TimmPatchEncoder', model_name='convnext_atto',
                                 checkpoint_path=other, input_size=64))
    assert str(info.value).startswith(
        f'{other} does not hold the weights of this timm model: size mismatch for stem.0.weight')
    assert re.search(r' \(and \d+ more\): pass the file saved from the model_name given$',
                     str(info.value))
    assert '\n' not in str(info.value)


def test_missing_timm_weights_file_is_named_with_the_setting_to_fix(tmp_path):
    """A ``checkpoint_path`` that is not there: timm raised a FileNotFoundError without any
    message (the scorer of a run started with --skip-preflight, or of a script of one's own)."""
    missing = str(tmp_path / 'convnext_base.safetensors')
    with pytest.raises(FileNotFoundError) as info:
        build_patch_encoder(dict(type='TimmPatchEncoder', model_name='convnext_atto',
                                 checkpoint_path=missing, input_size=64))
    assert str(info.value) == (
        f"TimmPatchEncoder: checkpoint_path {missing!r} (convnext_atto weights) is not a file: "
        'give the local weights file of that model (in a GenView config: --cfg-options '
        'model.scorer.encoder.checkpoint_path=FILE), or leave checkpoint_path unset to load '
        "timm's pretrained weights (Hugging Face cache or hub)")


@pytest.mark.parametrize('damage', ['cut', 'text', 'unpickler_index_error'])
def test_a_damaged_timm_weights_file_is_named(tmp_path, damage):
    """A truncated weights file gave '[Errno 22] Invalid argument' (no file named), a text file
    a KeyError traceback: a ValueError naming the file and what to do (the tools print it as
    one line)."""
    import timm
    path = tmp_path / 'atto.pth'
    torch.save(timm.create_model('convnext_atto', pretrained=False, num_classes=0).state_dict(),
               str(path))
    if damage == 'cut':
        path.write_bytes(path.read_bytes()[:20000])
    elif damage == 'text':
        path.write_text('hello\n')
    else:  # bytes on which the unpickler raises IndexError: a traceback
        import random
        path.write_bytes(random.Random(2).randbytes(4096))
    with pytest.raises(ValueError, match=rf'{re.escape(str(path))} cannot be read as weights '
                       r'\(.*\): .*copy or download it again'):
        build_patch_encoder(dict(type='TimmPatchEncoder', model_name='convnext_atto',
                                 pretrained=False, checkpoint_path=str(path), input_size=64))


def test_timm_names_with_a_source_are_timm_s_to_resolve():
    """``hf-hub:`` and ``local-dir:`` names, which timm.create_model takes and timm.is_model
    says no to, were refused as unknown models; a misspelt plain name still is."""
    import timm

    from genview_mm.models.encoders.timm_encoder import _check_name
    for name in ('local-dir:/models/convnext', 'hf-hub:timm/convnext_atto.d2_in1k'):
        assert not timm.is_model(name)
        _check_name(timm, name)
    with pytest.raises(ValueError, match="'convnext_atoo' is not a timm model"):
        _check_name(timm, 'convnext_atoo')
