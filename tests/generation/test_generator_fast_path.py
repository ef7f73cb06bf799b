"""The generator's GPU fast path, each option against the plain path on the tiny pipeline (CPU):
tensor outputs resized and quantised on the device, the prompt encoded once, channels_last and
fused QKV, compile at a fixed padded batch, and the call size halved on out-of-memory. Seeds are
per image throughout, so every option gives each image the plain path's pixels (to the stated
tolerance) whatever batch it is in."""
import glob
import logging
import os.path as osp

import numpy as np
import pytest
import torch
from PIL import Image

from genview_mm.generation import AdaptiveNoiseGenerator, image_seed
from genview_mm.generation.device_images import MAX_RESIZE_DIFF

STEPS = 2


@pytest.fixture(scope='module')
def photos(photo_dir):
    paths = sorted(glob.glob(osp.join(photo_dir, '*', '*.jpg')))
    return ([Image.open(p).convert('RGB') for p in paths],
            [osp.relpath(p, photo_dir) for p in paths])


def make(path, pca, **kw):
    kw.setdefault('output_size', 32)
    return AdaptiveNoiseGenerator(pca=pca, pretrained=path, device='cpu',
                                  num_inference_steps=STEPS, **kw)


@pytest.fixture(scope='module')
def plain(tiny_unclip_path, tiny_unclip_pca):
    """The plain path: no cached prompt, PIL output."""
    return make(tiny_unclip_path, tiny_unclip_pca, cache_prompt_embeds=False)


def pixels(views):
    return {(v.key, v.variation): np.asarray(v.image).astype(np.int16) for v in views}


def max_diff(a, b):
    assert a.keys() == b.keys()
    return max(int(np.abs(a[k] - b[k]).max()) for k in a)


@pytest.mark.parametrize('size,hw', [(None, None), (32, None), (20, None), (48, None),
                                     (20, (48, 32)), (20, (32, 48))])
def test_tensor_output_equals_pil_output(tiny_unclip_path, tiny_unclip_pca, photos, size, hw):
    """Native size (32): exactly the PIL path's pixels and clip_sim; resized (down to 20, up to
    48): within MAX_RESIZE_DIFF of PIL's bicubic, clip_sim within 1e-3; also when generated at
    height x width (hw) and resized square (the order of the passes: test_device_images)."""
    images, keys = photos
    height, width = hw or (None, None)
    gen = make(tiny_unclip_path, tiny_unclip_pca, output_size=size, height=height, width=width)
    pil = gen.generate(images[:4], keys[:4])
    ten = gen.generate(images[:4], keys[:4], output='tensor')
    side = size or 32
    for v in ten:
        assert isinstance(v.image, torch.Tensor) and v.image.dtype == torch.uint8
        assert tuple(v.image.shape) == (side, side, 3) and v.image.device.type == 'cpu'
    assert [(v.key, v.seed, v.noise_level, v.fg_ratio) for v in ten] == \
        [(v.key, v.seed, v.noise_level, v.fg_ratio) for v in pil]
    diff = max_diff(pixels(pil), pixels(ten))
    assert diff == 0 if (side, hw) == (32, None) else diff <= MAX_RESIZE_DIFF
    for a, b in zip(pil, ten):
        assert a.clip_sim == b.clip_sim if (side, hw) == (32, None) else \
            abs(a.clip_sim - b.clip_sim) < 1e-3
    with pytest.raises(ValueError, match="output must be 'pil', 'tensor' or 'auto', got 'numpy'"):
        gen.generate(images[:1], keys[:1], output='numpy')
    # 'auto', as the class takes it (refused by generate before): PIL on this CPU generator
    assert isinstance(gen.generate(images[:1], keys[:1], output='auto')[0].image, Image.Image)


def test_tensor_output_as_generator_default(tiny_unclip_path, tiny_unclip_pca, photos):
    gen = make(tiny_unclip_path, tiny_unclip_pca, output='tensor')
    views = gen.generate(photos[0][:2], photos[1][:2])
    assert all(isinstance(v.image, torch.Tensor) for v in views)
    assert isinstance(gen.generate(photos[0][:1], photos[1][:1], output='pil')[0].image,
                      Image.Image)


def test_prompt_encoded_once_same_pixels(tiny_unclip_path, tiny_unclip_pca, photos, plain):
    images, keys = photos
    gen = make(tiny_unclip_path, tiny_unclip_pca)
    assert gen.cache_prompt_embeds  # the default
    calls = []
    for g in (gen, plain):
        g.pipeline.text_encoder.register_forward_hook(
            lambda m, i, o, g=g: calls.append((g, i[0].shape[0])))
    cached = gen.generate(images[:3], keys[:3]) + gen.generate(images[3:6], keys[3:6])
    uncached = plain.generate(images[:3], keys[:3]) + plain.generate(images[3:6], keys[3:6])
    assert max_diff(pixels(cached), pixels(uncached)) == 0
    # once for the generator's life (prompt and negative prompt, one row each) against twice
    # (prompt, negative prompt) per call, a row per sample
    assert [n for g, n in calls if g is gen] == [1, 1]
    assert [n for g, n in calls if g is plain] == [3, 3, 3, 3]
    # a prompt changed on the generator is encoded anew (the first one's embeddings were kept)
    gen.prompt = plain.prompt = 'a photo'
    try:
        assert max_diff(pixels(gen.generate(images[:2], keys[:2])),
                        pixels(plain.generate(images[:2], keys[:2]))) == 0
    finally:
        plain.prompt = ''  # a fixture shared with later tests
    assert [n for g, n in calls if g is gen] == [1, 1, 1, 1]


def test_channels_last_and_fused_qkv(tiny_unclip_path, tiny_unclip_pca, photos, plain):
    """Same pixels as the plain layout within 1 level (float reassociation)."""
    from diffusers.models.attention_processor import FusedAttnProcessor2_0
    images, keys = photos
    gen = make(tiny_unclip_path, tiny_unclip_pca, channels_last=True, fuse_qkv=True)
    fast = pixels(gen.generate(images[:4], keys[:4]))
    assert max_diff(fast, pixels(plain.generate(images[:4], keys[:4]))) <= 1
    unet = gen.pipeline.unet
    assert unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert gen.pipeline.vae.decoder.conv_in.weight.is_contiguous(
        memory_format=torch.channels_last)
    for model in (unet, gen.pipeline.vae):
        procs = list(model.attn_processors.values())
        assert procs and all(isinstance(p, FusedAttnProcessor2_0) for p in procs)
    # on CPU both stay off unless asked
    default = make(tiny_unclip_path, tiny_unclip_pca)
    assert (default.channels_last, default.fuse_qkv) == (False, False)


def test_compile_pads_tail_to_fixed_batch(tiny_unclip_path, tiny_unclip_pca, photos, plain,
                                          monkeypatch):
    """compile=True compiles the UNet and the VAE decoder once (recorded here) and pads every
    call to max_batch_size: 6 images in calls of 4 -> 4 + (2 real + 2 padding); the padded rows
    leave the real rows' pixels as they are."""
    import genview_mm.generation.generator as module
    compiled = []
    monkeypatch.setattr(module, 'compile_models',
                        lambda pipe, mode, backend: compiled.append((mode, backend)))
    images, keys = photos
    gen = make(tiny_unclip_path, tiny_unclip_pca, compile=True, max_batch_size=4)
    sizes = []
    run = gen._run
    monkeypatch.setattr(gen, '_run', lambda e, lv, s, **kw: sizes.append(
        (len(s), s.count(0))) or run(e, lv, s, **kw))
    views = gen.generate(images[:6], keys[:6])
    assert compiled == [(None, 'inductor')]
    assert sizes == [(4, 0), (4, 2)]  # the tail padded with two seed-0 rows
    assert [v.key for v in views] == keys[:6]
    assert [v.seed for v in views] == [image_seed(k) for k in keys[:6]]
    assert max_diff(pixels(views), pixels(plain.generate(images[:6], keys[:6]))) <= 1
    with pytest.raises(ValueError, match='compile=True needs max_batch_size'):
        make(tiny_unclip_path, tiny_unclip_pca, compile=True)


@pytest.mark.slow
def test_compile_really_compiles(tiny_unclip_path, tiny_unclip_pca, photos, plain):
    """torch.compile (the 'eager' backend: dynamo's graph capture without code generation, so
    no C++ toolchain is needed) of the UNet and VAE decoder gives the plain pixels."""
    images, keys = photos
    gen = make(tiny_unclip_path, tiny_unclip_pca, compile=True, max_batch_size=4,
               compile_backend='eager', output='tensor', output_size=None)
    assert gen.pipeline.unet._compiled_call_impl is not None
    assert gen.pipeline.vae.decoder._compiled_call_impl is not None
    views = gen.generate(images[:5], keys[:5])
    ref = make(tiny_unclip_path, tiny_unclip_pca, output_size=None, cache_prompt_embeds=False)
    assert max_diff(pixels(views), pixels(ref.generate(images[:5], keys[:5]))) <= 1


@pytest.mark.parametrize('error', [torch.OutOfMemoryError('CUDA out of memory (injected)'),
                                   RuntimeError('CUDA out of memory. Tried to allocate 2 GiB')])
def test_every_sample_is_kept_after_a_halving(error):
    """10 samples in calls of 4, out of memory above 2: every later chunk lost its second half
    (the loop stepped by the old limit), so views went to the wrong images; a library's plain
    RuntimeError('... out of memory') was not halved at all."""
    from genview_mm.generation.mixed_levels import CallBatches
    calls = []

    def call(embeds, levels, seeds):
        calls.append(len(seeds))
        if len(seeds) > 2:
            raise error
        return list(seeds)
    assert CallBatches(4).run(call, torch.zeros(10, 2), [0] * 10, list(range(10))) == list(
        range(10))
    assert calls == [4, 2, 2, 2, 2, 2]

    def broken(embeds, levels, seeds):
        raise RuntimeError('mat1 and mat2 shapes cannot be multiplied')
    with pytest.raises(RuntimeError, match='shapes'):  # not memory: no halving, no retry
        CallBatches(4).run(broken, torch.zeros(4, 2), [0] * 4, list(range(4)))


def test_the_smaller_call_runs_without_the_failed_one_and_halves_up():
    """The retry ran inside the ``except``: the error's traceback kept the failed call's tensors
    (on a GPU, its activations) alive beside the smaller call, which could run out of memory
    again; and halving rounded down, 7 -> 3 -> 1 where calls of 2 fit."""
    import weakref

    from genview_mm.generation.mixed_levels import CallBatches
    calls, held = [], []

    def call(embeds, levels, seeds):
        activations = torch.ones(len(seeds), 8)  # what the failed call still held
        assert all(ref() is None for ref in held), 'a failed call\'s tensors are alive'
        calls.append(len(seeds))
        if len(seeds) > 2:
            held.append(weakref.ref(activations))
            raise torch.OutOfMemoryError('CUDA out of memory (injected)')
        return list(seeds)
    batches = CallBatches(7)
    assert batches.run(call, torch.zeros(7, 2), [0] * 7, list(range(7))) == list(range(7))
    assert calls == [7, 4, 2, 2, 2, 1] and batches.limit == 2 and len(held) == 2


def test_out_of_memory_halves_the_call_and_says_so_once(tiny_unclip_path, tiny_unclip_pca,
                                                        photos, plain, monkeypatch, caplog):
    images, keys = photos
    gen = make(tiny_unclip_path, tiny_unclip_pca, max_batch_size=4)
    sizes = []
    run = gen._run

    def flaky(e, lv, s, **kw):  # the first call of 4 samples runs out of memory
        sizes.append(len(s))
        if len(s) == 4 and sizes.count(4) == 1:
            raise torch.OutOfMemoryError('CUDA out of memory (injected)')
        return run(e, lv, s, **kw)
    monkeypatch.setattr(gen, '_run', flaky)
    with caplog.at_level(logging.WARNING, logger='genview_mm.generation.mixed_levels'):
        views = gen.generate(images[:6], keys[:6]) + gen.generate(images[6:10], keys[6:10])
    assert sizes == [4, 2, 2, 2, 2, 2]  # halved for the rest of the run, never to 1
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ['CUDA out of memory in a pipeline call of 4 samples: continuing with '
                        'calls of 2 (start there: --max-pipeline-batch 2, max_batch_size=2 in '
                        'Python)']
    assert max_diff(pixels(views), pixels(plain.generate(images[:10], keys[:10]))) <= 1
    one = make(tiny_unclip_path, tiny_unclip_pca, max_batch_size=1)
    monkeypatch.setattr(one, '_run', lambda *a, **kw: (_ for _ in ()).throw(
        torch.OutOfMemoryError('CUDA out of memory (injected)')))
    with pytest.raises(torch.OutOfMemoryError):  # nothing left to halve: the caller decides
        one.generate(images[:1], keys[:1])


@pytest.mark.parametrize('size', [None, 20, 48])
def test_pil_host_work_off_the_calling_thread(tiny_unclip_path, tiny_unclip_pca, photos, size):
    """The PIL output's resize and CLIP pixels run on the ``host_threads`` pool, not the
    thread that runs the models, and give the serial path's views exactly: pixels, clip_sim
    (the encoder sees the same batch), order."""
    import threading
    images, keys = photos
    serial = make(tiny_unclip_path, tiny_unclip_pca, output_size=size, host_threads=0,
                  num_variations=2)
    pooled = make(tiny_unclip_path, tiny_unclip_pca, output_size=size, host_threads=3,
                  num_variations=2)
    assert make(tiny_unclip_path, tiny_unclip_pca).host_threads == 4  # the default
    ran_on = []
    finish = pooled._finish_pil
    pooled._finish_pil = lambda im: (ran_on.append(threading.current_thread().name),
                                     finish(im))[1]
    a, b = serial.generate(images[:5], keys[:5]), pooled.generate(images[:5], keys[:5])
    assert len(ran_on) == 10 and all(n.startswith('view-host') for n in ran_on)
    assert [(v.key, v.variation, v.seed) for v in a] == [(v.key, v.variation, v.seed) for v in b]
    assert max_diff(pixels(a), pixels(b)) == 0
    assert {v.image.size for v in b} == {(size or 32,) * 2}
    assert [v.clip_sim for v in a] == [v.clip_sim for v in b]
    # as before the pool: the outputs' CLIP pixels of one batched preprocess call
    src = serial.analyze(images[:5])['embeds'].repeat_interleave(2, 0)
    batched = serial._similarity_pixels(serial.preprocess([v.image for v in a]), src)
    assert batched == [v.clip_sim for v in b]
    with pytest.raises(ValueError, match='host_threads must be an integer >= 0'):
        make(tiny_unclip_path, tiny_unclip_pca, host_threads=-1)
    import copy
    assert pooled._host_pool is not None
    twin = copy.deepcopy(pooled)  # the pool cannot be copied: the copy makes its own
    assert twin._host_pool is None and pooled._host_pool is not None
    assert [v.clip_sim for v in twin.generate(images[:2], keys[:2])] == \
        [v.clip_sim for v in pooled.generate(images[:2], keys[:2])]
