import os
import os.path as osp

import pytest


def _write_photos(folder, n, size=48):
    """``n`` distinct real photos: the 4 first scikit-image photos of tiny_models.sample_photos
    (its list breaks past 4: skimage has no 'motorcycle_left'), cropped/flipped/rotated."""
    from PIL import Image
    from tiny_models import sample_photos
    base = [Image.fromarray(a) for a in sample_photos(4, 2 * size)]
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        img = base[i % 4]
        k = i // 4
        off = (k % 3) * size // 4
        img = img.crop((off, off, off + 3 * size // 2, off + 3 * size // 2)).resize((size, size))
        if k % 2:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        img = img.rotate(90 * (k // 3 % 4))
        paths.append(osp.join(folder, f'img_{i:04d}.jpg'))
        img.save(paths[-1])
    return paths


@pytest.fixture(scope='session')
def tiny_unclip_path(tmp_path_factory) -> str:
    """A tiny random-weight StableUnCLIPImg2ImgPipeline saved to disk."""
    from tiny_models import save_tiny_unclip
    return save_tiny_unclip(str(tmp_path_factory.mktemp('tiny_unclip')))


@pytest.fixture(scope='session')
def photo_dir(tmp_path_factory) -> str:
    """10 real photos (48 px) in two class folders: a/img_000*.jpg, b/img_000*.jpg."""
    root = tmp_path_factory.mktemp('photos')
    _write_photos(str(root / 'a'), 5, 48)
    for i, p in enumerate(_write_photos(str(tmp_path_factory.mktemp('scratch')), 10, 48)[5:]):
        os.makedirs(root / 'b', exist_ok=True)
        os.replace(p, root / 'b' / f'img_{i:04d}.jpg')
    return str(root)


@pytest.fixture(scope='session')
def tiny_unclip_pca(tiny_unclip_path, photo_dir, tmp_path_factory) -> str:
    """Foreground PCA fitted for the tiny pipeline's own image encoder."""
    from genview_mm.foreground import CLIPPatchEncoder
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
