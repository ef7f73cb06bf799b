"""CLIPPatchEncoder: tokens and embeddings equal to the Hugging Face model's, frozen weights,
CLIP preprocessing (centre crop, normalisation), a clear error for a missing model, and ids of
hub-cache folders."""
import pytest
import torch
from PIL import Image

from genview_mm.models.encoders import CLIPPatchEncoder, encoder_id
from helpers import sample_photos


@pytest.fixture(scope='module')
def encoder(tiny_clip_path):
    return CLIPPatchEncoder.from_pretrained(tiny_clip_path)


def test_attributes_and_frozen(encoder, tiny_clip_path):
    assert (encoder.input_size, encoder.grid, encoder.dim) == (32, (8, 8), 32)
    assert encoder.name == encoder_id(tiny_clip_path)
    assert len(encoder.mean) == 3 and len(encoder.std) == 3
    assert not any(p.requires_grad for p in encoder.parameters())
    encoder.train()
    assert not encoder.training and not encoder.model.training


def test_tokens_match_hf_model(encoder, tiny_clip_path):
    from transformers import CLIPVisionModelWithProjection
    hf = CLIPVisionModelWithProjection.from_pretrained(tiny_clip_path).eval()
    x = encoder.preprocess([Image.fromarray(p) for p in sample_photos(3, 48)])
    assert x.shape == (3, 3, 32, 32)
    tokens, embeds = encoder.encode(x)
    assert tokens.shape == (3, 64, 32)
    with torch.no_grad():
        out = hf(pixel_values=x, output_hidden_states=True)
        ref_tokens = hf.vision_model.post_layernorm(out.last_hidden_state)[:, 1:]
    assert torch.allclose(tokens, ref_tokens, atol=1e-5)
    assert torch.allclose(embeds, out.image_embeds, atol=1e-5)
    assert torch.allclose(encoder(x), tokens) and torch.allclose(encoder.image_embeds(x), embeds)
    # post-LayerNorm tokens: per-token mean ~ LN bias mean, not the raw residual stream
    assert not torch.allclose(tokens, out.last_hidden_state[:, 1:], atol=1e-3)


def test_preprocess_centre_crop_and_normalise(encoder):
    img = Image.new('RGB', (64, 32), (255, 0, 0))
    x = encoder.preprocess([img])
    expect = (1.0 - encoder.mean[0]) / encoder.std[0]
    assert torch.allclose(x[0, 0], torch.full((32, 32), expect), atol=1e-5)


def test_missing_model_path_is_clear(tmp_path):
    with pytest.raises(OSError, match='Cannot load a CLIP vision encoder'):
        CLIPPatchEncoder.from_pretrained(str(tmp_path / 'missing'))


def test_encoder_id_maps_hf_cache(tmp_path):
    snap = tmp_path / 'models--stabilityai--sd-unclip' / 'snapshots' / 'abc' / 'image_encoder'
    snap.mkdir(parents=True)
    assert encoder_id(str(snap.parent), 'image_encoder') == 'stabilityai/sd-unclip/image_encoder'
    assert encoder_id('org/repo', 'image_encoder') == 'org/repo/image_encoder'
