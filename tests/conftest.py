import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests'))
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')

import genview_mm  # noqa: E402,F401  (compat fixes before any test imports mmpretrain)


@pytest.fixture(scope='session')
def repo_root() -> str:
    return ROOT


@pytest.fixture(scope='session')
def tiny_clip_path(tmp_path_factory) -> str:
    """A tiny CLIP vision tower saved to disk (load it with from_pretrained(path))."""
    from tiny_models import save_tiny_clip_vision
    return save_tiny_clip_vision(str(tmp_path_factory.mktemp('tiny_clip')))


@pytest.fixture(scope='session')
def tiny_scorer_pca(tiny_clip_path, tmp_path_factory) -> str:
    """A foreground PCA file for the tiny CLIP (random unit direction, alpha 0) that records the
    encoder's identity as a fit does (name, architecture, weights fingerprint)."""
    import torch
    from genview_mm.foreground import ForegroundPCA
    from genview_mm.models.encoders import CLIPPatchEncoder
    identity = CLIPPatchEncoder.from_pretrained(tiny_clip_path).identity()
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(32, generator=g)
    path = str(tmp_path_factory.mktemp('pca') / 'tiny_clip_pca.pth')
    ForegroundPCA(direction=direction / direction.norm(), mean=torch.zeros(32), alpha=0.0,
                  encoder=identity.name, grid=(8, 8), input_size=32,
                  encoder_arch=identity.arch, fingerprint=identity.fingerprint).save(path)
    return path
