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
