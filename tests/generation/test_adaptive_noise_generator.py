"""AdaptiveNoiseGenerator (arXiv:2403.12003, Sec. 3.2): the noise level from each image's
foreground ratio, order and metadata, batching modes that give the same images, seeds and
variations, half precision, the pipeline's own conditioning, and one encoding per image."""
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from genview_mm.datasets.image_sources import list_folder
from genview_mm.foreground import ForegroundPCA, ForegroundPCAError, check_pca_encoder
from genview_mm.generation import AdaptiveNoiseGenerator, image_seed, noise_level_from_ratio
from genview_mm.models.encoders import CLIPPatchEncoder

STEPS = 3


@pytest.fixture(scope='module')
def photos(photo_dir):
    items = list_folder(photo_dir)
    return [Image.open(it.path).convert('RGB') for it in items], [it.key for it in items]


@pytest.fixture(scope='module')
def gen(tiny_unclip_path, tiny_unclip_pca):
    from mmpretrain.registry import MODELS
    return MODELS.build(dict(type='AdaptiveNoiseGenerator', pca=tiny_unclip_pca,
                             pretrained=tiny_unclip_path, device='cpu',
                             num_inference_steps=STEPS, output_size=32))


def arrays(views):
    return {(v.key, v.variation): np.asarray(v.image).astype(np.int16) for v in views}


def test_defaults_and_lazy_loading(tiny_unclip_pca):
    g = AdaptiveNoiseGenerator(pca=tiny_unclip_pca, pretrained='/does/not/matter')
    assert (g.num_inference_steps, g.guidance_scale, g.output_size, g.prompt) == (20, 10.0,
                                                                                   512, '')
    assert g._pipe is None  # nothing loaded until used
    assert g.noise_levels == (0, 100, 200, 300, 400)


def test_order_and_metadata(gen, photos, tiny_unclip_path, tiny_unclip_pca):
    images, keys = photos
    views = gen.generate(images, keys)
    assert [v.key for v in views] == keys
    enc = CLIPPatchEncoder.from_pretrained(tiny_unclip_path, subfolder='image_encoder')
    pca = ForegroundPCA.load(tiny_unclip_pca)
    check_pca_encoder(pca, enc)
    pixels = gen.pipeline.feature_extractor(images=images, return_tensors='pt').pixel_values
    ratios = pca.foreground_ratio(enc(pixels)).tolist()
    # the encoder loaded from the folder preprocesses with the same processor
    torch.testing.assert_close(enc.preprocess(images), pixels, atol=0, rtol=0)
    for v, p in zip(views, ratios):
        assert v.fg_ratio == pytest.approx(p, abs=1e-6)
        assert v.noise_level == noise_level_from_ratio(p)
        assert v.seed == image_seed(v.key, 0, 0)
        assert v.image.size == (32, 32) and -1.0 <= v.clip_sim <= 1.0
    assert len({v.noise_level for v in views}) >= 2  # the batch really mixes levels
    assert gen.encoder.model is gen.pipeline.image_encoder  # no second encoder


def test_pipeline_calls_per_batching_mode(gen, photos, monkeypatch):
    images, keys = photos
    calls = []
    run = gen._run
    monkeypatch.setattr(gen, '_run',
                        lambda e, lvls, s, **kw: calls.append(tuple(lvls)) or run(e, lvls, s,
                                                                                   **kw))
    views = gen.generate(images, keys)  # mixed: one call, each sample at its own level
    levels = [v.noise_level for v in views]
    assert len(set(levels)) > 1 and calls == [tuple(levels)]
    calls.clear()
    gen.generate(images, keys, batching='level')  # one call per noise level
    assert sorted(calls) == sorted((lvl, ) * levels.count(lvl) for lvl in set(levels))
    calls.clear()
    gen.generate(images[:4], keys[:4], batching='none')
    assert [len(c) for c in calls] == [1, 1, 1, 1]
    with pytest.raises(ValueError, match='batching'):
        gen.generate(images[:1], keys[:1], batching='bad')


def test_mixed_batch_equals_per_level_and_per_image_calls(gen, photos):
    images, keys = photos
    mixed = arrays(gen.generate(images, keys))
    for mode in ('level', 'none'):
        other = arrays(gen.generate(images, keys, batching=mode))
        assert other.keys() == mixed.keys()
        for k, arr in other.items():
            assert np.abs(arr - mixed[k]).max() <= 2, (mode, k)  # uint8 rounding at most


def test_output_independent_of_batch(gen, photos):
    images, keys = photos
    full = arrays(gen.generate(images[:5], keys[:5]))
    alone = arrays(gen.generate([images[3]], [keys[3]]))
    shuffled = arrays(gen.generate([images[4], images[0], images[2]],
                                   [keys[4], keys[0], keys[2]]))
    for part in (alone, shuffled):
        for k, arr in part.items():
            assert np.abs(arr - full[k]).max() <= 2, k  # uint8 rounding at most
    assert np.abs(full[(keys[0], 0)] - full[(keys[1], 0)]).mean() > 1  # not all the same


def test_seed_and_variations(tiny_unclip_path, tiny_unclip_pca, photos):
    images, keys = photos
    g = AdaptiveNoiseGenerator(pca=tiny_unclip_pca, pretrained=tiny_unclip_path, device='cpu',
                               num_inference_steps=STEPS, output_size=None, num_variations=2,
                               base_seed=5)
    views = g.generate(images[:2], keys[:2])
    assert [(v.key, v.variation) for v in views] == [(keys[0], 0), (keys[0], 1), (keys[1], 0),
                                                     (keys[1], 1)]
    assert views[0].seed == image_seed(keys[0], 5, 0) != views[1].seed
    a, b = np.asarray(views[0].image, np.int16), np.asarray(views[1].image, np.int16)
    assert a.shape == (32, 32, 3) and np.abs(a - b).mean() > 1


def test_injected_pipeline(tiny_unclip_path, tiny_unclip_pca, photos):
    from diffusers import StableUnCLIPImg2ImgPipeline
    pipe = StableUnCLIPImg2ImgPipeline.from_pretrained(tiny_unclip_path)
    g = AdaptiveNoiseGenerator(pca=tiny_unclip_pca, pipeline=pipe, device='cpu',
                               num_inference_steps=1, output_size=16)
    assert g.pipeline is pipe and g.name == tiny_unclip_path
    views = g.generate(photos[0][:1], photos[1][:1])
    assert views[0].image.size == (16, 16)


def test_clear_errors(tiny_unclip_path, tiny_unclip_pca, tiny_clip_path, tmp_path):
    with pytest.raises(FileNotFoundError, match='unCLIP pipeline folder not found'):
        AdaptiveNoiseGenerator(pca=tiny_unclip_pca, pretrained=str(tmp_path / 'nope')).pipeline
    ckpt = tmp_path / 'sd21-unclip-h.ckpt'  # the repository's single file: said to be missing
    ckpt.write_bytes(b'0')
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"{str(ckpt)!r} is a file (a single-file checkpoint such as sd21-unclip-h.ckpt?), "
            'not a diffusers pipeline folder. Pass a folder')):
        AdaptiveNoiseGenerator(pca=tiny_unclip_pca, pretrained=str(ckpt)).pipeline
    # a folder that is not an unCLIP pipeline: named before diffusers' 'no file named
    # model.safetensors' (Stable Diffusion 2.1 itself has no image_encoder)
    not_unclip = shutil.copytree(tiny_unclip_path, str(tmp_path / 'sd21'),
                                 ignore=shutil.ignore_patterns('image_encoder'))
    with pytest.raises(OSError, match=r"'.*sd21' holds a StableUnCLIPImg2ImgPipeline without "
                                      r'image_encoder: StableUnCLIPImg2ImgPipeline needs them'):
        AdaptiveNoiseGenerator(pca=tiny_unclip_pca, pretrained=not_unclip).pipeline
    with pytest.raises(OSError, match=r"'.*' is not a saved diffusers pipeline \(.*"
                                      r'model_index.json: No such file or directory\)'):
        AdaptiveNoiseGenerator(pca=tiny_unclip_pca, pretrained=str(tmp_path)).pipeline
    with pytest.raises(ValueError, match=r'integers in 0\.\.999'):
        AdaptiveNoiseGenerator(pca=tiny_unclip_pca, noise_levels=(0, 100, 200, 300, 1000))
    for size in (36, 0):  # diffusers refused it at the first call: every image failed
        with pytest.raises(ValueError, match=f'height must be a positive multiple of 8, got '
                                             f'{size}'):
            AdaptiveNoiseGenerator(pca=tiny_unclip_pca, height=size, width=size)
    other = ForegroundPCA(direction=torch.ones(32) / 32 ** 0.5, mean=torch.zeros(32), alpha=0.0,
                          encoder=CLIPPatchEncoder.from_pretrained(tiny_clip_path).name,
                          grid=(8, 8), input_size=32)
    other.save(str(tmp_path / 'other.pth'))
    g = AdaptiveNoiseGenerator(pca=str(tmp_path / 'other.pth'), pretrained=tiny_unclip_path,
                               device='cpu')
    with pytest.raises(ForegroundPCAError, match='was fitted for.*the generator encoder is'):
        g.pca
    g = AdaptiveNoiseGenerator(pca=other, pretrained=tiny_unclip_path, device='cpu')
    with pytest.raises(ForegroundPCAError) as given:  # named, not printed (~500 characters)
        g.pca
    assert str(given.value).startswith("'the given ForegroundPCA' was fitted for"), given.value
    path = tmp_path / 'other.pth'  # a pathlib.Path, which ForegroundPCA.load reads: its path
    g = AdaptiveNoiseGenerator(pca=path, pretrained=tiny_unclip_path, device='cpu')
    with pytest.raises(ForegroundPCAError) as given:
        g.pca
    assert str(given.value).startswith(f"'{path}' was fitted for"), given.value


def test_runner_makes_one_mixed_level_call_per_batch(gen, photo_dir, tmp_path, monkeypatch):
    """Each loaded batch is one pipeline call, its images at their own noise levels (per-level
    buckets made one partial call per level), and the views equal those made one image a call."""
    from genview_mm.apis.generation.runner import generate_views
    from genview_mm.apis.generation.shards import output_relpath
    items = list_folder(photo_dir)
    calls = []
    run = gen._run
    monkeypatch.setattr(gen, '_run', lambda e, lvl, s, **kw: calls.append(
        (tuple(sorted(set(lvl))), len(s))) or run(e, lvl, s, **kw))
    generate_views(items, gen, str(tmp_path / 'batched'), batch_size=3, show_progress=False)
    assert [n for _, n in calls] == [3, 3, 3, 1]
    assert any(len(lvl) > 1 for lvl, _ in calls)  # a call holds several noise levels
    generate_views(items, gen, str(tmp_path / 'alone'), batch_size=1, show_progress=False)
    assert len(calls) == 4 + 10
    for it in items:
        name = output_relpath(it.key, 0, 1, '.jpg')
        a = np.asarray(Image.open(tmp_path / 'batched' / name), np.int16)
        b = np.asarray(Image.open(tmp_path / 'alone' / name), np.int16)
        assert np.abs(a - b).max() <= 3  # same seed -> same image (JPEG/rounding noise only)


def test_half_precision_plumbing(tiny_unclip_path, tiny_unclip_pca, photos, gen):
    """float16 (the GPU default) end to end; torch runs these fp16 ops on CPU too."""
    images, keys = photos
    g = AdaptiveNoiseGenerator(pca=tiny_unclip_pca, pretrained=tiny_unclip_path, device='cpu',
                               torch_dtype='float16', num_inference_steps=1, output_size=32)
    views = g.generate(images[:3], keys[:3])
    assert g.pipeline.unet.dtype == torch.float16 and g.encoder.dtype == torch.float16
    ref = gen.analyze(images[:3])
    for v, p in zip(views, ref['fg_ratio']):
        assert abs(v.fg_ratio - p) <= 2 / 64 and v.image.size == (32, 32)
        assert -1.0 <= v.clip_sim <= 1.0


def test_conditioning_is_the_pipelines_own(gen, photos):
    """Pixels from pipe.feature_extractor (which truncates the resized long side: 47x31 ->
    int(32 * 47 / 31) = 48, where rounding gives 49), embeddings from pipe.image_encoder."""
    img = photos[0][0].resize((47, 31))
    pipe = gen.pipeline
    pixels = pipe.feature_extractor(images=[img], return_tensors='pt').pixel_values
    with torch.no_grad():
        embeds = pipe.image_encoder(pixels).image_embeds
    assert torch.equal(gen.analyze([img])['embeds'], embeds)
    assert torch.equal(gen.preprocess([img]), pixels)
    # the patch encoder preprocesses with the pipeline's processor too, and the fallback for
    # encoders without one truncates the same way
    assert torch.equal(gen.encoder.preprocess([img]), pixels)
    from genview_mm.models.encoders import clip_preprocess
    fallback = clip_preprocess([img], 32, gen.encoder.mean, gen.encoder.std)
    assert fallback.shape == pixels.shape
    torch.testing.assert_close(fallback, pixels, atol=0.02, rtol=0)


def test_each_image_is_encoded_once(gen, photos, photo_dir, tmp_path, monkeypatch):
    """The runner's analysis (on the prefetched pixels) is handed to generate: each source
    image goes through the CLIP encoder once, each generated one once (for clip_sim)."""
    from genview_mm.apis.generation.runner import generate_views
    images, keys = photos
    direct = gen.generate(images[:4], keys[:4])
    reused = gen.generate(images[:4], keys[:4], analysis=gen.analyze(images[:4]))
    for a, b in zip(direct, reused):  # the same pixels for the same seeds
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
        assert (a.noise_level, a.fg_ratio, a.clip_sim) == (b.noise_level, b.fg_ratio, b.clip_sim)
    encoded = []
    encode = gen.encoder.encode
    monkeypatch.setattr(gen.encoder, 'encode',
                        lambda x: encoded.append(x.shape[0]) or encode(x))
    stats = generate_views(list_folder(photo_dir), gen, str(tmp_path / 'o'), batch_size=3,
                           show_progress=False)
    assert stats['ok'] == 10
    assert sum(encoded) == 2 * 10  # 10 sources + 10 outputs, not 3 * 10
    with pytest.raises(ValueError, match='analysis describes 4 images, got 3'):
        gen.generate(images[:3], keys[:3], analysis=gen.analyze(images[:4]))


def test_bad_pixels_non_finite_features_and_repeated_keys_are_refused(gen, photos, monkeypatch):
    """Raw uint8 pixels or pixels of another batch were analysed as if preprocessed; NaN
    features read as no foreground (level 0, garbage views); two images under one key got one
    seed. Each is now a ValueError naming what is wrong."""
    images, keys = photos
    pixels = gen.preprocess(images[:2])
    with pytest.raises(ValueError, match=r'pixels must be float \(N, 3, S, S\) for the 2 images'):
        gen.analyze(images[:2], (pixels * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r'for the 3 images .*got \(2, 3, '):
        gen.analyze(images[:3], pixels)
    encode = gen.encoder.encode

    def overflow(x):
        tokens, embeds = encode(x)
        return tokens, torch.cat([embeds[:1], torch.full_like(embeds[1:], float('nan'))])
    monkeypatch.setattr(gen.encoder, 'encode', overflow)
    with pytest.raises(ValueError, match=r"non-finite values for images \[1\] of the batch \(in "
                       r"float16, an overflow: pass torch_dtype='bfloat16' or 'float32', the "
                       r"tool's --dtype; else damaged pixels\)"):
        gen.analyze(images[:2], pixels)
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"duplicate keys in one call .*\['a/x.jpg'\]"):
        gen.generate(images[:3], ['a/x.jpg', 'b.jpg', 'a/x.jpg'])


def test_a_similarity_that_is_not_finite_is_recorded_as_unknown(gen, monkeypatch):
    """A generated view whose CLIP embedding overflows (fp16) had NaN written as its
    similarity, which min_clip_sim kept without counting it as unknown."""
    monkeypatch.setattr(gen.encoder, 'image_embeds',
                        lambda pixels: torch.tensor([[1.0, 0.0], [float('nan'), 1.0]]))
    sims = gen._similarity_pixels(torch.zeros(2, 3, 8, 8), torch.tensor([[1.0, 0.0]] * 2))
    assert sims == [pytest.approx(1.0), None]


@pytest.mark.parametrize('bad,row', [([0, -1], 1), ([0, 1000], 1), ([0, 150.7], 1),
                                     ([-1, 0], 0)])
def test_every_level_of_an_analysis_passed_in_is_checked(gen, photos, bad, row):
    """diffusers checks the first row's level only: -1 in a later row indexed the scheduler's
    last step and was recorded as the view's level; 1000 and 150.7 gave an IndexError."""
    images, keys = photos
    info = gen.analyze(images[:2])
    with pytest.raises(ValueError, match=re.escape(
            f'noise levels must be integers in 0..999 (the unCLIP noising scheduler has 1000 '
            f'steps), got {bad[row]!r} for image {keys[row]!r}')):
        gen.generate(images[:2], keys[:2], analysis=dict(info, noise_level=bad))


def test_a_16_bit_image_is_read_as_training_reads_it(gen, photos):
    """PIL's RGB conversion clips 16-bit samples: a 16-bit greyscale image was analysed as
    white (foreground ratio 1.0, the top noise level). It is scaled to 8 bits as OpenCV does."""
    grey = photos[0][0].convert('L')
    sixteen = Image.fromarray(np.asarray(grey).astype(np.uint16) * 257)
    assert sixteen.mode == 'I;16'
    wide = Image.fromarray(np.asarray(grey).astype(np.int32) * 257, 'I')
    ref = gen.analyze([grey])
    for image in (sixteen, wide):
        info = gen.analyze([image])
        assert info['noise_level'] == ref['noise_level'], image.mode
        assert abs(float(info['fg_ratio'][0]) - float(ref['fg_ratio'][0])) < 1e-6, image.mode
    small = Image.fromarray(np.asarray(grey).astype(np.int32), 'I')  # 0..255 in 'I': as it is
    assert float(gen.analyze([small])['fg_ratio'][0]) == pytest.approx(float(ref['fg_ratio'][0]))


def test_an_opened_file_is_read_as_the_tool_and_training_read_it(gen, photos, tmp_path):
    """``gen.analyze(Image.open(path))`` ignored the EXIF orientation (the tool and training
    turn the image) and gave a transparent PNG to the CLIP processor, which lays it on white
    where OpenCV drops the alpha: another foreground ratio and noise level than the tool's."""
    from genview_mm.datasets.image_sources import load_image
    base = photos[0][0].resize((48, 32))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    base.save(tmp_path / 'exif.jpg', quality=95, exif=exif)
    rgba = np.asarray(base.convert('RGBA')).copy()
    rgba[:, :24] = 0  # the left half transparent black
    Image.fromarray(rgba, 'RGBA').save(tmp_path / 'rgba.png')
    for name in ('exif.jpg', 'rgba.png'):
        decoded, why = load_image(str(tmp_path / name))
        assert why is None
        with Image.open(tmp_path / name) as opened:
            assert opened.mode != 'RGB' or opened.getexif().get(0x0112) == 6
            got = gen.analyze([opened])
        ref = gen.analyze([decoded])
        assert float(got['fg_ratio'][0]) == pytest.approx(float(ref['fg_ratio'][0])), name
        assert got['noise_level'] == ref['noise_level'], name
        assert torch.allclose(gen.preprocess([opened]), gen.preprocess([decoded])), name


def test_constructor_values_are_checked_before_any_load(tiny_unclip_pca):
    """num_inference_steps=0 failed in diffusers after the load and the analysis; an
    output_size of -4 or a tuple only after a whole diffusion; num_variations=2.5 at generate;
    a float base_seed was truncated (1.7 seeded as 1)."""
    for option, value, shown in (('num_inference_steps', 0, 'an integer >= 1, got 0'),
                                 ('output_size', -4, 'an integer >= 1, got -4'),
                                 ('output_size', (16, 24), 'an integer >= 1, got (16, 24)'),
                                 ('num_variations', 2.5, 'an integer >= 1, got 2.5'),
                                 ('num_variations', 0, 'an integer >= 1, got 0'),
                                 ('base_seed', 1.7, 'an integer, got 1.7')):
        with pytest.raises(ValueError, match=re.escape(f'{option} must be {shown}')):
            AdaptiveNoiseGenerator(pca=tiny_unclip_pca, **{option: value})
    g = AdaptiveNoiseGenerator(pca=tiny_unclip_pca, output_size=None, base_seed=np.int64(3),
                               max_batch_size=4)
    assert g.output_size is None and g.max_batch_size == 4
    with pytest.raises(AttributeError):  # the splitter is built once: setting it did nothing
        g.max_batch_size = 2


def test_keys_that_read_alike_are_refused_and_a_callers_patch_is_kept(gen, photos):
    """Keys 1 and '1' passed the duplicate check and got one seed (the seed reads the key as
    text). A mixed-level call removed a noise_image_embeddings the caller had set on the
    pipeline, putting the class method back."""
    images, keys = photos
    with pytest.raises(ValueError, match=r"duplicate keys in one call .*\['1'\]"):
        gen.generate(images[:2], [1, '1'])
    pipe = gen.pipeline
    calls = []
    original = pipe.noise_image_embeddings

    def own(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)
    pipe.noise_image_embeddings = own
    try:
        info = gen.analyze(images[:2])
        gen.generate(images[:2], keys[:2], analysis=dict(info, noise_level=[0, 100]))
        assert vars(pipe).get('noise_image_embeddings') is own and calls
    finally:
        del pipe.noise_image_embeddings


def test_a_pipelines_image_encoder_given_itself_reads_its_feature_extractor(
        tiny_unclip_path, monkeypatch, tmp_path):
    """pipe/image_encoder given as the folder found no processor (only pipe/image_encoder/
    feature_extractor was looked at), so it preprocessed with CLIP's defaults while the same
    encoder spelled (pipe, subfolder='image_encoder') used the pipeline's: one name, two
    preprocessings. A pipeline root without subfolder was transformers' 'model_type' error,
    and the PCA tools missed a pipeline given as '~/...'."""
    import argparse
    import os
    import os.path as osp
    as_sub = CLIPPatchEncoder.from_pretrained(tiny_unclip_path, subfolder='image_encoder')
    direct = CLIPPatchEncoder.from_pretrained(osp.join(tiny_unclip_path, 'image_encoder'))
    assert direct.processor is not None and direct.name == as_sub.name
    image = Image.new('RGB', (40, 24), (90, 140, 200))
    assert torch.equal(direct.preprocess([image]), as_sub.preprocess([image]))
    with pytest.raises(ValueError, match="it is a diffusers pipeline folder: pass "
                       "subfolder='image_encoder'"):
        CLIPPatchEncoder.from_pretrained(tiny_unclip_path)
    from genview_mm.apis.pca_encoder import build_encoder_from_args
    monkeypatch.setenv('HOME', str(tmp_path))
    os.symlink(tiny_unclip_path, str(tmp_path / 'pipe'))
    encoder = build_encoder_from_args(argparse.Namespace(
        encoder='~/pipe', subfolder=None, timm_model=None, fp16=False, device='cpu'))
    assert encoder.name.endswith('image_encoder')


def test_a_relative_folder_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    """'models/unclip/sd21' (a relative path without './') was taken for a hub id: a download
    error (offline: 'cannot reach the hub') for a folder that was simply not there. A hub id
    is 'owner/name': more than one '/' (or none) names a folder."""
    from genview_mm.generation.pipeline_loader import check_unclip_source
    monkeypatch.chdir(tmp_path)
    for name in ('models/unclip/sd21', 'sd21'):
        with pytest.raises(FileNotFoundError, match=re.escape(
                f'unCLIP pipeline folder not found: {name!r}')):
            check_unclip_source(name)
    assert check_unclip_source('stabilityai/stable-diffusion-2-1-unclip') is None  # a hub id
