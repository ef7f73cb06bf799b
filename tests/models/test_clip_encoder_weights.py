"""The patch encoders refuse what would give wrong tokens silently: CLIPPatchEncoder a folder
whose weights do not fit its config (transformers filled the missing ones with random values and
only logged it: a ViT folder, renamed keys), TimmPatchEncoder a model whose feature map is not
(B, C, h, w)."""
import os
import os.path as osp
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import CLIPVisionConfig, CLIPVisionModel

from genview_mm.models.encoders.clip_encoder import CLIPPatchEncoder
from helpers import run_tool, write_photos


def test_weights_that_do_not_fit_are_refused(tiny_clip_path, tmp_path):
    folder = shutil.copytree(tiny_clip_path, str(tmp_path / 'renamed'))
    name = next(f for f in os.listdir(folder) if f.endswith('.safetensors'))
    weights = load_file(osp.join(folder, name))
    key = next(k for k in weights if 'patch_embedding' in k)
    weights[key.replace('patch_embedding', 'patch_embed')] = weights.pop(key)
    save_file(weights, osp.join(folder, name), metadata={'format': 'pt'})
    with pytest.raises(ValueError, match=r"is not a CLIP vision encoder whose weights fit its "
                       r"config: 1 weights missing \(e\.g\. vision_model\.embeddings\."
                       r"patch_embedding\.weight\)"):
        CLIPPatchEncoder(pretrained=folder)


def test_a_vision_model_without_projection_has_no_random_projection(tiny_clip_path, tmp_path):
    """Only the projection missing (a CLIPVisionModel folder): the tokens are the file's, and
    no random projection enters the embeddings (or the weights' fingerprint)."""
    config = CLIPVisionConfig.from_pretrained(tiny_clip_path)
    torch.manual_seed(0)
    CLIPVisionModel(config).save_pretrained(str(tmp_path / 'plain'))
    one, two = (CLIPPatchEncoder(pretrained=str(tmp_path / 'plain')) for _ in range(2))
    assert one.model.visual_projection is None
    assert not any(k.startswith('visual_projection') for k in one.model.state_dict())
    pixels = torch.rand(1, 3, config.image_size, config.image_size)
    assert torch.equal(one.image_embeds(pixels), two.image_embeds(pixels))
    assert one.image_embeds(pixels).shape == (1, config.hidden_size)
    # the preflight's identity of the folder, read without loading it, is the encoder's: it
    # was None (the projection it sampled is not in the file), so a copy of the folder was
    # compared by name and refused with a refit advice that the runtime check contradicted
    from genview_mm.models.encoders.clip_folder import clip_folder_identity
    assert clip_folder_identity(str(tmp_path / 'plain'), one.name) == one.identity()
    full = CLIPPatchEncoder(pretrained=tiny_clip_path)
    assert clip_folder_identity(tiny_clip_path, full.name) == full.identity()


@pytest.mark.parametrize('model_name', ['swin_tiny_patch4_window7_224', 'vit_tiny_patch16_224'])
def test_a_timm_model_without_a_channels_first_map_is_refused(model_name):
    """Swin's (B, h, w, C) map was read as (B, C, h, w): 7-wide tokens, no error; a ViT's
    (B, N, C) gave an IndexError."""
    from genview_mm.models.encoders.timm_encoder import TimmPatchEncoder
    with pytest.raises(ValueError, match=f'TimmPatchEncoder needs a model whose forward_features '
                       rf'gives a \(B, C, h, w\) map, as ConvNeXt does; {model_name} gives shape'):
        TimmPatchEncoder(model_name, pretrained=False)


def test_a_whole_clip_model_with_its_own_projection_size_loads(tmp_path, monkeypatch):
    """A CLIPModel folder whose projection_dim is not 512 failed (its vision_config says 512);
    a '~/...' folder, which the preflight reads, did not load at all."""
    from transformers import CLIPConfig, CLIPModel
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                 num_attention_heads=2)
    config = CLIPConfig(text_config=small, vision_config=dict(small, image_size=32,
                                                              patch_size=4), projection_dim=16)
    torch.manual_seed(0)
    whole = CLIPModel(config)
    whole.save_pretrained(str(tmp_path / 'clip'))
    monkeypatch.setenv('HOME', str(tmp_path))
    enc = CLIPPatchEncoder(pretrained='~/clip')
    assert torch.equal(enc.model.visual_projection.weight, whole.visual_projection.weight)
    assert enc.image_embeds(torch.rand(1, 3, 32, 32)).shape == (1, 16)


def test_timm_weights_missing_offline_say_what_to_do(monkeypatch):
    """Offline and not cached: the error was huggingface_hub's ('check your connection')."""
    from genview_mm.models.encoders.timm_encoder import TimmPatchEncoder
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    with pytest.raises(OSError, match=r'hf download timm/convnext_atto\.d2_in1k; .*'
                       r'checkpoint_path=FILE \(tools: --timm-checkpoint FILE\)'):
        TimmPatchEncoder('convnext_atto.d2_in1k')


def test_a_cut_weights_file_is_one_error_naming_the_model(tiny_clip_path, tmp_path):
    """A model.safetensors cut short (a download or copy stopped half-way) raised safetensors'
    SafetensorError, neither OSError nor ValueError: the PCA tools and the scorer ended in a
    traceback. The same for timm weights cut short in the Hugging Face cache."""
    folder = shutil.copytree(tiny_clip_path, str(tmp_path / 'cut'))
    weights = osp.join(folder, 'model.safetensors')
    with open(weights, 'r+b') as f:
        f.truncate(os.path.getsize(weights) // 2)
    with pytest.raises(ValueError) as info:
        CLIPPatchEncoder(pretrained=folder)
    assert str(info.value).startswith(f"Cannot load a CLIP vision encoder from {folder!r}: its "
                                      'weights file is damaged or incomplete (')
    assert str(info.value).endswith('); download or copy the model again')
    import timm
    repo = tmp_path / 'hf' / 'hub' / 'models--timm--convnext_atto.d2_in1k'
    (repo / 'snapshots' / 'abc').mkdir(parents=True)
    (repo / 'refs').mkdir()
    (repo / 'refs' / 'main').write_text('abc')
    cached = str(repo / 'snapshots' / 'abc' / 'model.safetensors')
    save_file(timm.create_model('convnext_atto', pretrained=False).state_dict(), cached)
    with open(cached, 'r+b') as f:
        f.truncate(os.path.getsize(cached) // 2)
    write_photos(str(tmp_path / 'images'), 2, 64)
    proc = run_tool('fit_foreground_pca.py', tmp_path / 'images', '--timm-model',
                    'convnext_atto.d2_in1k', '--input-size', '64', '--out', tmp_path / 'o.pth',
                    env=dict(HF_HOME=str(tmp_path / 'hf')), returncode=None)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.splitlines()[-1].endswith(
        'TimmPatchEncoder: the pretrained weights of convnext_atto.d2_in1k in the Hugging Face '
        'cache are damaged or incomplete (Error while deserializing header: incomplete metadata, '
        'file not fully covered): download them again (hf download timm/convnext_atto.d2_in1k '
        '--force-download), or give the local file: checkpoint_path=FILE (tools: '
        '--timm-checkpoint FILE)'), proc.stderr[-3000:]
    assert not (tmp_path / 'o.pth').exists()

def test_a_damaged_preprocessor_config_is_refused_not_replaced(tiny_clip_path, tmp_path):
    """A preprocessor_config.json cut short was skipped like an absent one: the encoder took
    the built-in CLIP preprocessing instead of the folder's (its size, mean and std), so a PCA
    fit and its use could see other pixels, without a word. An absent file still falls back."""
    folder = shutil.copytree(tiny_clip_path, str(tmp_path / 'cut'))
    config = osp.join(folder, 'preprocessor_config.json')
    assert CLIPPatchEncoder(pretrained=folder).processor is not None
    with open(config) as f:
        text = f.read()
    with open(config, 'w') as f:
        f.write(text[:len(text) // 2])
    with pytest.raises(ValueError, match=f'^{config} cannot be read') as info:
        CLIPPatchEncoder(pretrained=folder)
    assert str(info.value).endswith('copy the model folder again, or delete that file to use '
                                    "CLIP's own preprocessing")
    os.remove(config)
    assert CLIPPatchEncoder(pretrained=folder).processor is None


def test_a_mean_and_std_given_reach_the_folders_processor(tiny_clip_path):
    """The folder's image processor normalised with its own mean/std while the encoder
    reported the ones given: the PCA fit (through the processor) and the scorer (through
    encoder.mean/std) normalised apart."""
    from PIL import Image
    plain = CLIPPatchEncoder.from_pretrained(tiny_clip_path)
    assert plain.processor is not None
    given = CLIPPatchEncoder(pretrained=tiny_clip_path, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    pixels = given.preprocess([Image.new('RGB', (40, 40), (128, 128, 128))])
    torch.testing.assert_close(pixels[0, :, 5, 5], torch.full((3, ), 128 / 255), atol=1e-3,
                               rtol=0)
    assert given.mean == (0.0, 0.0, 0.0) and list(plain.processor.image_mean) != [0.0] * 3


def test_a_model_saved_in_fp16_is_loaded_in_float32(tiny_clip_path, tmp_path):
    """transformers 5 loads the dtype the weights were saved in: a CLIP saved in fp16 was a
    half-precision scorer, and on CPU its first call failed (float pixels, half weights)."""
    config = CLIPVisionConfig.from_pretrained(tiny_clip_path)
    torch.manual_seed(0)
    CLIPVisionModel(config).half().save_pretrained(str(tmp_path / 'fp16'))
    enc = CLIPPatchEncoder(pretrained=str(tmp_path / 'fp16'))
    assert {p.dtype for p in enc.model.parameters()} == {torch.float32}
    pixels = torch.rand(1, 3, config.image_size, config.image_size)
    assert enc.image_embeds(pixels).dtype == torch.float32
    half = CLIPPatchEncoder(pretrained=str(tmp_path / 'fp16'), torch_dtype=torch.float16)
    assert {p.dtype for p in half.model.parameters()} == {torch.float16}
    from genview_mm.models.encoders.clip_folder import clip_folder_identity
    assert clip_folder_identity(str(tmp_path / 'fp16'), enc.name) == enc.identity()


@pytest.mark.parametrize('version, name', [('4.55.4', 'torch_dtype'), ('5.23.0', 'dtype')])
def test_the_dtype_is_passed_under_the_name_transformers_takes(tiny_clip_path, monkeypatch,
                                                               version, name):
    """setup.py allows transformers 4.40: before 4.56 ``from_pretrained`` takes
    ``torch_dtype``, and ``dtype`` reached the model's __init__ (a TypeError). Since the
    float32 default, every load passed ``dtype``, so no CLIP loaded under those versions."""
    import transformers
    from transformers import CLIPVisionModelWithProjection
    given = []
    real = CLIPVisionModelWithProjection.from_pretrained.__func__

    def spy(cls, path, *args, **kwargs):
        given.append({k: v for k, v in kwargs.items() if k in ('dtype', 'torch_dtype')})
        kwargs['dtype'] = kwargs.pop(name)  # the installed transformers' own name
        return real(cls, path, *args, **kwargs)
    monkeypatch.setattr(transformers, '__version__', version)
    monkeypatch.setattr(CLIPVisionModelWithProjection, 'from_pretrained', classmethod(spy))
    CLIPPatchEncoder(pretrained=tiny_clip_path)
    CLIPPatchEncoder(pretrained=tiny_clip_path, torch_dtype=torch.float16)
    assert given == [{name: torch.float32}, {name: torch.float16}]
