"""Tiny randomly initialised CLIP / Stable unCLIP models, saved to disk.

They are loaded back through the real ``from_pretrained(path)`` code, so the tests and the demo
(``tools/run_demo.sh``) exercise the same loading, encoding and generation paths as real weights
without a model hub. Their outputs are noise: they show the pipeline works, not what it learns.
"""
import os
import os.path as osp


def save_tiny_clip_vision(path: str, image_size: int = 32, patch_size: int = 4,
                          hidden_size: int = 32, seed: int = 0) -> str:
    """A 2-layer CLIP vision tower (with projection) and its image processor, saved to ``path``.

    The token grid is ``(image_size // patch_size) ** 2`` (8x8 = 64 by default).
    """
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection
    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=hidden_size, intermediate_size=37, projection_dim=32,
                              num_hidden_layers=2, num_attention_heads=4, image_size=image_size,
                              patch_size=patch_size)
    model = CLIPVisionModelWithProjection(config).eval()
    model.save_pretrained(path)
    CLIPImageProcessor(size={'shortest_edge': image_size},
                       crop_size={'height': image_size, 'width': image_size}).save_pretrained(path)
    return path


def save_tiny_unclip(path: str, seed: int = 0) -> str:
    """A tiny random-weight ``StableUnCLIPImg2ImgPipeline`` saved with ``save_pretrained``.

    32-px images: a 2-layer CLIP vision encoder (hidden 32, patch 4 -> 8x8 tokens, projection
    32), a 2-layer CLIP text encoder with a 4-token vocabulary, UNet blocks (32, 64) on 16x16
    latents, a 2-block VAE, a DDPM image-noising scheduler and a v-prediction DDIM scheduler.
    Load it back with ``StableUnCLIPImg2ImgPipeline.from_pretrained(path)``.
    """
    import json

    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableUnCLIPImg2ImgPipeline,
        UNet2DConditionModel,
    )
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import (
        StableUnCLIPImageNormalizer,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )
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
