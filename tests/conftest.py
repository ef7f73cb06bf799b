"""Session fixtures shared by all test folders: tiny CLIP files and the photos the demo configs
train on. Test helpers are in :mod:`helpers` (tests/helpers/)."""
import os

import pytest

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # before anything imports huggingface_hub
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
# One thread unless asked for more: the models are tiny, and on a busy 2-core machine several
# OpenMP threads spin against each other (the in-process tests ran 2-3x slower with two).
os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', os.environ['OMP_NUM_THREADS'])

import torch  # noqa: E402

import genview_mm  # noqa: E402,F401  (compat fixes before any test imports mmpretrain)
from helpers import ROOT, photos_with_views, save_pca, save_tiny_clip_vision  # noqa: E402

torch.set_num_threads(int(os.environ['OMP_NUM_THREADS']))  # also if torch came in earlier


@pytest.fixture(scope='session')
def repo_root() -> str:
    return ROOT


@pytest.fixture(scope='session')
def tiny_clip_path(tmp_path_factory) -> str:
    """A tiny CLIP vision tower saved to disk (load it with from_pretrained(path))."""
    return save_tiny_clip_vision(str(tmp_path_factory.mktemp('tiny_clip')))


@pytest.fixture(scope='session')
def tiny_scorer_pca(tiny_clip_path, tmp_path_factory) -> str:
    """A foreground PCA file for the tiny CLIP (random unit direction, alpha 0) that records the
    encoder's identity as a fit does (name, architecture, weights fingerprint)."""
    from genview_mm.models.encoders import CLIPPatchEncoder
    identity = CLIPPatchEncoder.from_pretrained(tiny_clip_path).identity()
    path = str(tmp_path_factory.mktemp('pca') / 'tiny_clip_pca.pth')
    return save_pca(path, identity.name, 32, (8, 8), 32, arch=identity.arch,
                    fingerprint=identity.fingerprint)


@pytest.fixture(scope='session')
def train_photos(tmp_path_factory):
    """16 photos of 40 px in ``src_root/all/`` (2 iterations of the demo configs' batch of 8)
    and a fake views manifest of them (:func:`helpers.photos_with_views`)."""
    return photos_with_views(str(tmp_path_factory.mktemp('train_photos')), 16, 40, folder='all')


def _managed_classes():
    """MMEngine's globally named classes (loggers, message hubs, visualizers and their
    subclasses, e.g. mmpretrain's UniversalVisualizer): each keeps its own instances."""
    from mmengine.utils import ManagerMixin
    found, todo = [], [ManagerMixin]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.fixture(autouse=True)
def _fresh_mmengine_instances():
    """Drop the loggers, message hubs and visualizers a test made. A Runner names them
    ``<config>_<timestamp>`` to the second, so a second in-process run of one config within the
    same second took the first one's logger (its stream the first test's closed capture: a
    'Logging error' traceback in this one's stderr), hub and visualizer (its work dir)."""
    before = {cls: set(cls._instance_dict) for cls in _managed_classes()}
    yield
    for cls in _managed_classes():
        for name in [n for n in cls._instance_dict if n not in before.get(cls, ())]:
            instance = cls._instance_dict.pop(name)
            for handler in list(getattr(instance, 'handlers', ())):
                handler.close()
                instance.removeHandler(handler)
