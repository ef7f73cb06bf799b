"""tools/fit_foreground_pca.py: a fit through the real tool (broken and tiny images skipped)
that reaches its foreground fraction, and a diffusers unCLIP folder as the encoder."""
import os.path as osp

import pytest
from PIL import Image

from genview_mm.foreground import ForegroundPCA, check_pca_encoder
from genview_mm.models.encoders import CLIPPatchEncoder
from helpers import load_tool, run_tool, save_tiny_unclip, write_photos


@pytest.mark.slow
def test_fit_tool_end_to_end(tiny_clip_path, tmp_path):
    photos = write_photos(str(tmp_path / 'imgs' / 'cls'), 12, 48)
    Image.new('RGB', (4, 4)).save(tmp_path / 'imgs' / 'cls' / 'tiny.png')
    (tmp_path / 'imgs' / 'cls' / 'broken.jpg').write_bytes(b'not an image')
    out = str(tmp_path / 'pca' / 'fg.pth')
    run_tool('fit_foreground_pca.py', tmp_path / 'imgs', '--out', out, '--encoder', tiny_clip_path,
             '--num-images', '10', '--batch-size', '4', '--num-workers', '0', '--device', 'cpu',
             '--fg-fraction', '0.3', timeout=300)
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
    from genview_mm.apis.pca_fit import sample_paths
    from genview_mm.datasets.image_sources import list_folder
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


def test_fit_tool_finds_pipeline_image_encoder(tmp_path):
    """A local diffusers unCLIP folder as --encoder: its image_encoder/ is used (in-process)."""
    from genview_mm.models.encoders import encoder_id
    unclip = save_tiny_unclip(str(tmp_path / 'unclip'))
    write_photos(str(tmp_path / 'imgs'), 6, 40)
    out = str(tmp_path / 'fg.pth')
    fit = load_tool('fit_foreground_pca').main
    assert fit([str(tmp_path / 'imgs'), '--out', out, '--encoder', unclip, '--num-images', '4',
                '--num-workers', '0', '--device', 'cpu', '--sheet-images', '2']) == 0
    pca = ForegroundPCA.load(out)
    assert pca.encoder == encoder_id(unclip, 'image_encoder') and pca.dim == 32
    assert pca.num_images == 4 and osp.isfile(str(tmp_path / 'fg.png'))


@pytest.mark.parametrize('extra,shown', [
    (['--timm-checkpoint', 'w.pth'], '--timm-checkpoint and --input-size go with --timm-model'),
    (['--timm-model', 'convnext_atto', '--timm-checkpoint', 'nowhere.pth'],
     "--timm-checkpoint 'nowhere.pth' is not a file"),
    (['--timm-model', 'convnext_atto', '--input-size', '20'], '--input-size must be >= 32, got 20'),
    # the CLIP was ignored: the timm model was fitted (or its download tried) in its place
    (['--timm-model', 'convnext_atto', '--encoder', 'clip'], 'give one of them'),
    (['--timm-model', 'convnext_atto', '--subfolder', 'image_encoder'], 'give one of them'),
    # ignored: the histogram rule fits its own threshold
    (['--threshold-rule', 'histogram', '--fg-fraction', '0.3'],
     "--fg-fraction is the quantile rule's: --threshold-rule histogram fits its own threshold"),
    # -3 meant 'all but 3' (a Python slice), 0 an empty sheet while the log named it saved
    (['--sheet-images', '-3'], 'argument --sheet-images: must be >= 1, got -3'),
    (['--sheet-images', '0'], 'argument --sheet-images: must be >= 1, got 0'),
])
def test_option_values_are_usage_errors(extra, shown, tmp_path, capsys):
    """--timm-* ignored without --timm-model (the CLIP encoder was fitted instead), a bare
    FileNotFoundError, a convolution traceback; a --sheet-images below 1 taken as a slice: now
    usage errors before anything loads."""
    (tmp_path / 'imgs').mkdir()
    with pytest.raises(SystemExit) as exc:
        load_tool('fit_foreground_pca').main([str(tmp_path / 'imgs'), '--out',
                                              str(tmp_path / 'o.pth'), *extra])
    assert exc.value.code == 2 and shown in capsys.readouterr().err


def test_unreadable_images_and_unknown_models_are_one_line(tiny_clip_path, tmp_path, capsys):
    """Every image unreadable (exit 1), or a model timm does not know (exit 2, a usage error
    as in import_official_pca.py): one line each (they were tracebacks)."""
    (tmp_path / 'imgs').mkdir()
    for i in range(3):
        (tmp_path / 'imgs' / f'{i}.jpg').write_text('not an image')
    tool = load_tool('fit_foreground_pca').main
    args = [str(tmp_path / 'imgs'), '--out', str(tmp_path / 'o.pth'), '--num-workers', '0',
            '--device', 'cpu']
    assert tool(args + ['--encoder', tiny_clip_path]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ('fit_foreground_pca.py: error: no images to fit the foreground PCA on: '
                       'none of them could be read; check them (the warnings above name them) '
                       'or give another source')
    assert tool(args + ['--timm-model', 'not_a_model', '--input-size', '64']) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('fit_foreground_pca.py: error: ') and 'not_a_model' in err[-1]
    assert not osp.exists(tmp_path / 'o.pth')


def test_a_bad_device_is_a_usage_error_before_the_images_are_listed(tmp_path, capsys,
                                                                    monkeypatch):
    """--device the node lacks: one line, exit 2, before the (long) listing of the source; it
    was exit 1 after listing and sampling it."""
    import torch

    import genview_mm.datasets.image_sources as sources
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    listed = []
    monkeypatch.setattr(sources, 'list_images', lambda *a: listed.append(a) or [])
    tool = load_tool('fit_foreground_pca').main
    assert tool([str(tmp_path), '--out', str(tmp_path / 'o.pth'), '--device', 'cuda:1']) == 2
    assert capsys.readouterr().err.strip() == ('fit_foreground_pca.py: error: --device cuda:1: '
                                               'no CUDA device here (pass --device cpu or run '
                                               'on a GPU node)')
    assert listed == [] and not osp.exists(tmp_path / 'o.pth')


def test_a_source_without_images_is_a_usage_error(tmp_path, capsys):
    """An empty source: one line in the tool's form, exit 2 (it was a bare 'error: ...' from
    SystemExit, exit 1, unlike every other message of the tool)."""
    (tmp_path / 'imgs').mkdir()
    tool = load_tool('fit_foreground_pca').main
    assert tool([str(tmp_path / 'imgs'), '--out', str(tmp_path / 'o.pth'),
                 '--device', 'cpu']) == 2
    assert capsys.readouterr().err.strip() == (
        f"fit_foreground_pca.py: error: no images found in '{tmp_path / 'imgs'}'")
    assert not osp.exists(tmp_path / 'o.pth')


def test_a_source_that_cannot_be_listed_is_one_line(tmp_path, capsys):
    """A single image, a config without train_dataloader or one that does not parse: the
    library's messages came out as tracebacks (the listing sat outside the tool's errors)."""
    photo = write_photos(str(tmp_path / 'imgs'), 1, size=16)[0]
    (tmp_path / 'other.py').write_text('x = 1\n')
    (tmp_path / 'broken.py').write_text('x = (\n')
    tool = load_tool('fit_foreground_pca').main
    for source, said in ((photo, 'is not a text list of image paths'),
                         (str(tmp_path / 'other.py'), "has no 'train_dataloader'"),
                         (str(tmp_path / 'broken.py'), 'broken.py')):
        assert tool([source, '--out', str(tmp_path / 'o.pth'), '--device', 'cpu']) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith('fit_foreground_pca.py: error: ') and \
            said in err[0], err
    assert not osp.exists(tmp_path / 'o.pth')


def test_options_a_folder_source_ignores_are_refused(tmp_path, capsys):
    """--data-root and --dataset-key were ignored with a folder source: a user who meant
    another dataset's images got the fit of this folder's."""
    write_photos(str(tmp_path / 'imgs'), 2, size=16)
    (tmp_path / 'other').mkdir()
    tool = load_tool('fit_foreground_pca').main
    for extra, said in ((['--data-root', str(tmp_path / 'other')],
                         '--data-root applies to a list file or a config, but '),
                        (['--dataset-key', 'val_dataloader.dataset'],
                         '--dataset-key applies to an MMPretrain config (.py) source, but ')):
        assert tool([str(tmp_path / 'imgs'), '--out', str(tmp_path / 'o.pth'), '--device', 'cpu',
                     *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f'fit_foreground_pca.py: error: {said}'), err
    assert not osp.exists(tmp_path / 'o.pth') and not osp.exists(tmp_path / 'o.png')



def test_a_refit_never_leaves_the_earlier_sheet(tiny_clip_path, tmp_path, caplog,
                                                monkeypatch):
    """The sheet was drawn from the first --sheet-images paths only: when those were
    unreadable, no sheet was written and the earlier fit's stayed beside the new file, while
    the log said 'and contact sheet'. The first readable images are drawn; with none, the old
    sheet is gone and the log says so."""
    from genview_mm.apis import pca_fit
    good = write_photos(str(tmp_path / 'imgs'), 4, 48)
    broken = str(tmp_path / 'imgs' / '000_broken.jpg')
    with open(broken, 'wb') as f:
        f.write(b'not an image')
    enc = CLIPPatchEncoder.from_pretrained(tiny_clip_path)
    out, sheet = str(tmp_path / 'fg.pth'), tmp_path / 'fg.png'
    pca_fit.run_fit(good, enc, out, batch_size=4, show_progress=False, sign_rule='+1')
    first = sheet.read_bytes()
    pca_fit.run_fit([broken] + good, enc, out, batch_size=4, show_progress=False,
                    sheet_images=1, sign_rule='-1')
    assert sheet.read_bytes() != first  # this fit's masks, over the first readable image
    monkeypatch.setattr(pca_fit, 'draw_sheet', lambda *args: None)  # nothing readable now
    with caplog.at_level('INFO'):
        pca_fit.run_fit(good, enc, out, batch_size=4, show_progress=False, sign_rule='+1')
    assert not sheet.exists()
    assert 'no contact sheet: none of the images could be read for it' in caplog.text
    assert 'and contact sheet' not in caplog.text
    # a refit drawing its sheet elsewhere (--sheet): the earlier fit's beside the file is gone
    monkeypatch.undo()
    pca_fit.run_fit(good, enc, out, batch_size=4, show_progress=False, sign_rule='+1')
    assert sheet.exists()
    pca_fit.run_fit(good, enc, out, batch_size=4, show_progress=False, sign_rule='-1',
                    sheet=str(tmp_path / 'elsewhere.png'))
    assert not sheet.exists() and (tmp_path / 'elsewhere.png').exists()
    sheet.write_bytes(b'my own picture')  # a file not drawn here stays
    pca_fit.run_fit(good, enc, out, batch_size=4, show_progress=False, sign_rule='+1',
                    sheet=str(tmp_path / 'elsewhere.png'))
    assert sheet.read_bytes() == b'my own picture'


def test_a_failed_save_keeps_the_earlier_fit_and_its_sheet(tiny_clip_path, tmp_path,
                                                           monkeypatch):
    """The earlier sheet was removed before the save: a save that failed (a full disk) left
    the earlier PCA file without its sheet."""
    from genview_mm.apis import pca_fit
    from genview_mm.foreground import ForegroundPCA
    good = write_photos(str(tmp_path / 'imgs'), 4, 48)
    enc = CLIPPatchEncoder.from_pretrained(tiny_clip_path)
    out, sheet = tmp_path / 'fg.pth', tmp_path / 'fg.png'
    pca_fit.run_fit(good, enc, str(out), batch_size=4, show_progress=False, sign_rule='+1')
    before = out.read_bytes(), sheet.read_bytes()

    def full_disk(self, path):
        raise OSError(28, 'No space left on device', path)
    monkeypatch.setattr(ForegroundPCA, 'save', full_disk)
    with pytest.raises(OSError, match='No space left on device'):
        pca_fit.run_fit(good, enc, str(out), batch_size=4, show_progress=False,
                        sign_rule='-1')
    assert (out.read_bytes(), sheet.read_bytes()) == before


def test_the_encoder_is_fitted_in_float32_unless_fp16_is_given(tmp_path):
    """transformers 5 loads a model in the dtype it was saved in: a CLIP (or a pipeline's
    image_encoder) saved in float16 was encoded in half precision without --fp16, where the
    fit's own advice for an overflow is 'fit in float32'."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from genview_mm.apis.pca_encoder import build_encoder_from_args
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                              num_attention_heads=4, image_size=32, patch_size=8,
                              projection_dim=16)
    folder = str(tmp_path / 'clip_fp16')
    CLIPVisionModelWithProjection(config).half().save_pretrained(folder)
    (tmp_path / 'imgs').mkdir()
    tool = load_tool('fit_foreground_pca')
    args = [str(tmp_path / 'imgs'), '--out', str(tmp_path / 'o.pth'), '--encoder', folder,
            '--device', 'cpu']
    assert build_encoder_from_args(tool.parse_args(args)).dtype == torch.float32
    assert build_encoder_from_args(tool.parse_args(args + ['--fp16'])).dtype == torch.float16
