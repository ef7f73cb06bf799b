import os
import os.path as osp
import subprocess
import sys

from PIL import Image

from genview_mm.foreground import ForegroundPCA, check_pca_encoder
from genview_mm.models.encoders import CLIPPatchEncoder
from tiny_models import write_photos


def test_fit_tool_end_to_end(tiny_clip_path, tmp_path, repo_root):
    photos = write_photos(str(tmp_path / 'imgs' / 'cls'), 12, 48)
    Image.new('RGB', (4, 4)).save(tmp_path / 'imgs' / 'cls' / 'tiny.png')
    (tmp_path / 'imgs' / 'cls' / 'broken.jpg').write_bytes(b'not an image')
    out = str(tmp_path / 'pca' / 'fg.pth')
    cmd = [sys.executable, osp.join(repo_root, 'tools', 'fit_foreground_pca.py'),
           str(tmp_path / 'imgs'), '--out', out, '--encoder', tiny_clip_path,
           '--num-images', '10', '--batch-size', '4', '--num-workers', '0', '--device', 'cpu',
           '--fg-fraction', '0.3']
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert res.returncode == 0, res.stderr[-3000:]
    enc = CLIPPatchEncoder.from_pretrained(tiny_clip_path)
    pca = ForegroundPCA.load(out)
    check_pca_encoder(pca, enc)
    assert pca.num_images <= 10 and pca.num_images >= 8  # broken file skipped if sampled
    assert (pca.grid, pca.input_size, pca.threshold_rule) == ((8, 8), 32, 'quantile')
    # the file records the fraction of fitted tokens above alpha: the target up to one token
    assert abs(pca.fg_fraction - 0.3) <= 1.0 / (64 * pca.num_images) + 1e-9
    assert abs(float(pca.direction.norm()) - 1) < 1e-5
    sheet = Image.open(out.replace('.pth', '.png'))
    assert sheet.size[0] > 128 and sheet.size[1] >= 128
    # the threshold gives the target fraction on the fitted sample (same seeded sample)
    from genview_mm.foreground.fit_runner import sample_paths
    from genview_mm.generation.sources import list_folder
    imgs = []
    for p in sample_paths([it.path for it in list_folder(str(tmp_path / 'imgs'))], 10, 0):
        try:
            imgs.append(Image.open(p).convert('RGB'))
        except OSError:
            continue
    assert len(imgs) == pca.num_images
    ratio = float(pca.foreground_ratio(enc(enc.preprocess(imgs))).mean())
    assert abs(ratio - 0.3) <= 1.0 / (64 * len(imgs)) + 1e-6
    assert len(photos) == 12


def test_fit_tool_finds_pipeline_image_encoder(tmp_path, repo_root):
    """A local diffusers unCLIP folder as --encoder: its image_encoder/ is used (in-process)."""
    import importlib.util

    from genview_mm.models.encoders import encoder_id
    from tiny_models import save_tiny_unclip
    unclip = save_tiny_unclip(str(tmp_path / 'unclip'))
    write_photos(str(tmp_path / 'imgs'), 6, 40)
    spec = importlib.util.spec_from_file_location(
        'fit_tool', osp.join(repo_root, 'tools', 'fit_foreground_pca.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'fg.pth')
    assert tool.main([str(tmp_path / 'imgs'), '--out', out, '--encoder', unclip, '--num-images',
                      '4', '--num-workers', '0', '--device', 'cpu', '--sheet-images', '2']) == 0
    pca = ForegroundPCA.load(out)
    assert pca.encoder == encoder_id(unclip, 'image_encoder') and pca.dim == 32
    assert pca.num_images == 4 and osp.isfile(str(tmp_path / 'fg.png'))
