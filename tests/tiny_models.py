"""Tiny randomly initialised models saved to disk, for tests that load them back through the
real ``from_pretrained(path)`` code (no hub is reachable in tests)."""
import os
import os.path as osp
from typing import List

import numpy as np


def save_tiny_clip_vision(path: str, image_size: int = 32, patch_size: int = 4,
                          hidden_size: int = 32, seed: int = 0) -> str:
    """A 2-layer CLIP vision tower (with projection) and its image processor, saved to ``path``.

    The token grid is ``(image_size // patch_size) ** 2`` (8x8 = 64 by default).
    """
    import torch
    from transformers import (CLIPImageProcessor, CLIPVisionConfig,
                              CLIPVisionModelWithProjection)
    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=hidden_size, intermediate_size=37, projection_dim=32,
                              num_hidden_layers=2, num_attention_heads=4, image_size=image_size,
                              patch_size=patch_size)
    model = CLIPVisionModelWithProjection(config).eval()
    model.save_pretrained(path)
    CLIPImageProcessor(size={'shortest_edge': image_size},
                       crop_size={'height': image_size, 'width': image_size}).save_pretrained(path)
    return path


PHOTO_FILES = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png',
               'motorcycle_right.png', 'hubble_deep_field.jpg', 'retina.jpg', 'ihc.png',
               'color.png', 'logo.png', 'camera.png', 'coins.png', 'moon.png', 'brick.png',
               'grass.png', 'gravel.png', 'page.png', 'horse.png')


def sample_photos(n: int, size: int = 64) -> List[np.ndarray]:
    """``n`` real RGB photos shipped inside scikit-image's wheel, resized to ``size`` x ``size``.

    Beyond the 19 shipped files the photos repeat mirrored/rotated, so all ``n`` are distinct.
    """
    from PIL import Image
    from skimage import data
    photos = []
    for i in range(n):
        pil = Image.open(osp.join(data.data_dir, PHOTO_FILES[i % len(PHOTO_FILES)])).convert('RGB')
        pil = pil.resize((size, size), Image.BILINEAR)
        k = i // len(PHOTO_FILES)
        if k:
            pil = pil.rotate(90 * k)
            if k % 2:
                pil = pil.transpose(Image.FLIP_LEFT_RIGHT)
        photos.append(np.asarray(pil))
    return photos


def write_photos(folder: str, n: int, size: int = 64, ext: str = '.jpg') -> List[str]:
    """Write ``n`` photos as files under ``folder``; return their paths."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, img in enumerate(sample_photos(n, size)):
        p = osp.join(folder, f'img_{i:04d}{ext}')
        Image.fromarray(img).save(p)
        paths.append(p)
    return paths


def write_coco_shapes(folder: str, n: int, size: int = 64, seed: int = 0) -> str:
    """Draw ``n`` images of filled rectangles and ellipses with COCO polygon masks.

    Writes ``folder/images/*.png`` and ``folder/annotations.json`` (categories: rectangle,
    ellipse); returns the annotation path.
    """
    import json

    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(folder, 'images'), exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        img = Image.new('RGB', (size, size), tuple(int(c) for c in rng.integers(0, 80, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 3))):
            w, h = (int(v) for v in rng.integers(size // 4, size // 2, 2))
            x0, y0 = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
            cat = int(rng.integers(1, 3))
            colour = tuple(int(c) for c in rng.integers(150, 256, 3))
            if cat == 1:
                poly = [x0, y0, x0 + w, y0, x0 + w, y0 + h, x0, y0 + h]
            else:
                t = np.linspace(0, 2 * np.pi, 16, endpoint=False)
                xs = x0 + w / 2 + (w / 2) * np.cos(t)
                ys = y0 + h / 2 + (h / 2) * np.sin(t)
                poly = [float(v) for xy in zip(xs, ys) for v in xy]
            draw.polygon(poly, fill=colour)
            annotations.append(dict(id=len(annotations) + 1, image_id=i + 1, category_id=cat,
                                    bbox=[x0, y0, w, h], area=float(w * h), iscrowd=0,
                                    segmentation=[[float(v) for v in poly]]))
        name = f'shape_{i:04d}.png'
        img.save(osp.join(folder, 'images', name))
        images.append(dict(id=i + 1, file_name=name, width=size, height=size))
    ann = osp.join(folder, 'annotations.json')
    with open(ann, 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=[dict(id=1, name='rectangle'), dict(id=2, name='ellipse')]), f)
    return ann


def save_tiny_unclip(path: str, seed: int = 0) -> str:
    """A tiny random-weight ``StableUnCLIPImg2ImgPipeline`` saved with ``save_pretrained``.

    32-px images: a 2-layer CLIP vision encoder (hidden 32, patch 4 -> 8x8 tokens, projection
    32), a 2-layer CLIP text encoder with a 4-token vocabulary, UNet blocks (32, 64) on 16x16
    latents, a 2-block VAE, a DDPM image-noising scheduler and a v-prediction DDIM scheduler.
    Load it back with ``StableUnCLIPImg2ImgPipeline.from_pretrained(path)``.
    """
    import json

    import torch
    from diffusers import (AutoencoderKL, DDIMScheduler, DDPMScheduler,
                           StableUnCLIPImg2ImgPipeline, UNet2DConditionModel)
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import \
        StableUnCLIPImageNormalizer
    from transformers import (CLIPImageProcessor, CLIPTextConfig, CLIPTextModel, CLIPTokenizer,
                              CLIPVisionConfig, CLIPVisionModelWithProjection)
    width = 32
    tok_dir = osp.join(path, '_tokenizer_src')
    os.makedirs(tok_dir, exist_ok=True)
    vocab = {'<|startoftext|>': 0, '<|endoftext|>': 1, 'a</w>': 2, 'b</w>': 3}
    with open(osp.join(tok_dir, 'vocab.json'), 'w') as f:
        json.dump(vocab, f)
    with open(osp.join(tok_dir, 'merges.txt'), 'w') as f:
        f.write('#version: 0.2\n')
    tokenizer = CLIPTokenizer(osp.join(tok_dir, 'vocab.json'), osp.join(tok_dir, 'merges.txt'),
                              model_max_length=77)
    torch.manual_seed(seed)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=width, projection_dim=width, num_hidden_layers=2, num_attention_heads=4,
        image_size=32, intermediate_size=37, patch_size=4))
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=width, projection_dim=width,
        intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=len(vocab)))
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
        down_block_types=('CrossAttnDownBlock2D', 'DownBlock2D'),
        up_block_types=('UpBlock2D', 'CrossAttnUpBlock2D'), block_out_channels=(32, 64),
        attention_head_dim=(2, 4), class_embed_type='projection',
        projection_class_embeddings_input_dim=2 * width, cross_attention_dim=width,
        upcast_attention=True, use_linear_projection=True)
    vae = AutoencoderKL(block_out_channels=(32, 64), latent_channels=4,
                        down_block_types=('DownEncoderBlock2D',) * 2,
                        up_block_types=('UpDecoderBlock2D',) * 2)
    pipe = StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(crop_size=32, size=32),
        image_encoder=image_encoder.eval(),
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=width).eval(),
        image_noising_scheduler=DDPMScheduler(beta_schedule='squaredcos_cap_v2'),
        tokenizer=tokenizer, text_encoder=text_encoder.eval(), unet=unet.eval(),
        scheduler=DDIMScheduler(beta_schedule='scaled_linear', beta_start=0.00085,
                                beta_end=0.012, prediction_type='v_prediction',
                                set_alpha_to_one=False, steps_offset=1),
        vae=vae.eval())
    pipe.save_pretrained(path)
    return path


def write_fake_manifest(folder: str, sources: List[str], src_root: str,
                        levels=(100, 200, 0, 300, 400, 100)) -> str:
    """A generation manifest whose 'generated views' are solid images of value 10*(i+1) (so
    tests can tell them apart), plus one failed row; returns the manifest path."""
    import json

    from PIL import Image
    gen_dir = osp.join(folder, 'images')
    os.makedirs(gen_dir, exist_ok=True)
    rows = []
    for i, src in enumerate(sources):
        key = osp.relpath(src, src_root).replace(os.sep, '/')
        out = osp.join('images', osp.splitext(osp.basename(src))[0] + '.png')
        Image.fromarray(np.full((24, 24, 3), 10 * (i + 1), np.uint8)).save(osp.join(folder, out))
        rows.append(dict(source=osp.abspath(src), key=key, variation=0, output=out,
                         noise_level=levels[i % len(levels)], fg_ratio=0.5, seed=i, generator='t',
                         clip_sim=0.9 - 0.1 * i, status='ok', reason=''))
    rows.append(dict(source='/nowhere/x.jpg', key='x.jpg', variation=0, output=None,
                     noise_level=None, fg_ratio=None, seed=0, generator='t', clip_sim=None,
                     status='failed', reason='unreadable'))
    path = osp.join(folder, 'manifest.jsonl')
    with open(path, 'w') as f:
        f.writelines(json.dumps(r) + '\n' for r in rows)
    return path
