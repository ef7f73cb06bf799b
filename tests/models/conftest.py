"""Fixtures for the GenView model tests (helpers live in genview_tiny.py)."""
import pytest

from genview_tiny import FakePatchEncoder, save_pca


@pytest.fixture
def fake_encoder() -> FakePatchEncoder:
    return FakePatchEncoder()


@pytest.fixture
def fake_pca_path(tmp_path) -> str:
    return save_pca(str(tmp_path / 'fake_pca.pth'), 'fake-patch-encoder', 16, (4, 4), 32)


@pytest.fixture(scope='session')
def tiny_clip_pca_path(tiny_clip_path, tmp_path_factory) -> str:
    from genview_mm.models.encoders import encoder_id
    folder = tmp_path_factory.mktemp('tiny_clip_pca')
    return save_pca(str(folder / 'pca.pth'), encoder_id(tiny_clip_path), 32, (8, 8), 32)
