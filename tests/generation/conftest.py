import os
import os.path as osp

import pytest


@pytest.fixture(scope='session')
def tiny_unclip_path(tmp_path_factory) -> str:
    """A tiny random-weight StableUnCLIPImg2ImgPipeline saved to disk."""
    from tiny_models import save_tiny_unclip
    return save_tiny_unclip(str(tmp_path_factory.mktemp('tiny_unclip')))


@pytest.fixture(scope='session')
def photo_dir(tmp_path_factory) -> str:
    """10 real photos (48 px) in two class folders: a/img_000*.jpg, b/img_000*.jpg."""
    from tiny_models import write_photos
    root = tmp_path_factory.mktemp('photos')
    write_photos(str(root / 'a'), 5, 48)
    for i, p in enumerate(write_photos(str(tmp_path_factory.mktemp('scratch')), 10, 48)[5:]):
        os.makedirs(root / 'b', exist_ok=True)
        os.replace(p, root / 'b' / f'img_{i:04d}.jpg')
    return str(root)


@pytest.fixture(scope='session')
def tiny_unclip_pca(tiny_unclip_path, photo_dir, tmp_path_factory) -> str:
    """Foreground PCA fitted for the tiny pipeline's own image encoder."""
    from genview_mm.models.encoders import CLIPPatchEncoder
    from genview_mm.foreground.fit_runner import run_fit
    from genview_mm.generation.sources import list_folder
    enc = CLIPPatchEncoder.from_pretrained(tiny_unclip_path, subfolder='image_encoder')
    out = str(tmp_path_factory.mktemp('pca') / 'fg_pca.pth')
    run_fit([it.path for it in list_folder(photo_dir)], enc, out, batch_size=4,
            show_progress=False, sheet_images=4)
    assert osp.isfile(out)
    return out


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models on a shared 2-core machine: several threads only spin against each other."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
