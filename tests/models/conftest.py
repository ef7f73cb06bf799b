"""Fixtures for the GenView model tests (helpers live in genview_tiny.py)."""
import pytest

from genview_tiny import FakePatchEncoder
from helpers import save_pca


@pytest.fixture
def fake_encoder() -> FakePatchEncoder:
    return FakePatchEncoder()


@pytest.fixture
def fake_pca_path(tmp_path) -> str:
    return save_pca(str(tmp_path / 'fake_pca.pth'), 'fake-patch-encoder', 16, (4, 4), 32)

