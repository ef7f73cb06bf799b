"""Fixtures of the generation tests: the tiny unCLIP pipeline, its PCA file, photos, and
tool runs in this process without launcher variables."""
import os
import os.path as osp

import pytest

from helpers import DIST_VARS, load_tool, save_tiny_unclip, write_photos


@pytest.fixture(scope='session')
def tiny_unclip_path(tmp_path_factory) -> str:
    """A tiny random-weight StableUnCLIPImg2ImgPipeline saved to disk."""
    return save_tiny_unclip(str(tmp_path_factory.mktemp('tiny_unclip')))


@pytest.fixture(scope='session')
def photo_dir(tmp_path_factory) -> str:
    """10 real photos (48 px) in two class folders: a/img_000*.jpg, b/img_000*.jpg."""
    root = tmp_path_factory.mktemp('photos')
    write_photos(str(root / 'a'), 5, 48)
    for i, p in enumerate(write_photos(str(tmp_path_factory.mktemp('scratch')), 10, 48)[5:]):
        os.makedirs(root / 'b', exist_ok=True)
        os.replace(p, root / 'b' / f'img_{i:04d}.jpg')
    return str(root)


@pytest.fixture(scope='session')
def tiny_unclip_pca(tiny_unclip_path, photo_dir, tmp_path_factory) -> str:
    """Foreground PCA fitted for the tiny pipeline's own image encoder."""
    from genview_mm.apis.pca_fit import run_fit
    from genview_mm.datasets.image_sources import list_folder
    from genview_mm.models.encoders import CLIPPatchEncoder
    enc = CLIPPatchEncoder.from_pretrained(tiny_unclip_path, subfolder='image_encoder')
    out = str(tmp_path_factory.mktemp('pca') / 'fg_pca.pth')
    run_fit([it.path for it in list_folder(photo_dir)], enc, out, batch_size=4,
            show_progress=False, sheet_images=4)
    assert osp.isfile(out)
    return out


@pytest.fixture
def no_dist_env(monkeypatch):
    """No launcher variables (RANK, WORLD_SIZE, ...) for a tool run in this process."""
    for key in DIST_VARS:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def gen_main(no_dist_env):
    """``main(argv)`` of tools/generate_views.py, run in this process (saves a ~7 s
    interpreter start)."""
    return load_tool('generate_views').main


@pytest.fixture
def merge_main():
    """``main(argv)`` of tools/merge_manifests.py, run in this process."""
    return load_tool('merge_manifests').main

