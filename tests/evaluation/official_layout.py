"""Stand-ins for the official GenView model-zoo checkpoints, in their layout.

What the official files are (read from github.com/xiaojieli0903/genview, HEAD 38a6a78): MMEngine
runner checkpoints written by the authors' MMPretrain 1.0 fork (torch 2.0.1, numpy 1.x, MMEngine
>= 0.8). ``state_dict`` holds the self-supervised model's own modules, whose names the fork shares
with upstream MMPretrain 1.2.0 (same ``ResNet``, ``VisionTransformer``/``MoCoV3ViT``, necks,
heads and EMA wrappers): ``backbone.*``, ``neck.*``, ``head.*``, the momentum encoder
(``encoder_k.module.{0,1}.*`` for MoCo v2, ``momentum_encoder.module.{0,1}.*`` for MoCo v3,
``target_net.module.{0,1}.*`` for BYOL, each with its ``steps`` counter; none for SimSiam and
SwAV) and, because the fork keeps the frozen open_clip ConvNeXt scorer as ``self.clip_model``,
the whole CLIP model as ``clip_model.*``. ``meta`` carries the pretraining config text, whose
``data_preprocessor`` uses CLIP's mean/std. Everything is pickled numpy-1 style
(see ``tests/numpy1_checkpoints.py``). The stand-ins are built here from upstream MMPretrain's
classes with the real backbones (ResNet-50, ViT-S/16; ViT-B/16 optionally with fewer layers) and
small necks and heads (their sizes do not matter to the transfer).
"""
from collections import OrderedDict
from typing import Dict, Optional

import torch

from numpy1_checkpoints import runner_checkpoint, save_numpy1

CLIP_MEAN = [255 * 0.48145466, 255 * 0.4578275, 255 * 0.40821073]
CLIP_STD = [255 * 0.26862954, 255 * 0.2613025, 255 * 0.27577711]  # as the official configs
R50 = dict(type='ResNet', depth=50, norm_cfg=dict(type='BN'), zero_init_residual=False)


def _mlp(i: int, o: int = 16, h: int = 32, n: int = 2, pool: bool = False, **kw) -> dict:
    return dict(type='NonLinearNeck', in_channels=i, hid_channels=h, out_channels=o,
                num_layers=n, with_avg_pool=pool, **kw)


def _mocov3(backbone: dict, width: int) -> dict:
    mlp_kw = dict(with_bias=False, with_last_bn=True, with_last_bn_affine=False,
                  with_last_bias=False)
    return dict(type='MoCoV3', base_momentum=0.01, backbone=backbone,
                neck=_mlp(width, n=3, pool=width == 2048, **mlp_kw),
                head=dict(type='MoCoV3Head', predictor=_mlp(16, **mlp_kw), temperature=0.2,
                          loss=dict(type='CrossEntropyLoss', loss_weight=0.4)))


def _vit(arch) -> dict:
    return dict(type='MoCoV3ViT', arch=arch, img_size=224, patch_size=16, stop_grad_conv1=True)


VIT_B_2_LAYERS = dict(embed_dims=768, num_layers=2, num_heads=12, feedforward_channels=3072)

# official file name -> (upstream model config, momentum-encoder key, our linear-probe config)
OFFICIAL = {
    'mocov2_resnet50_8xb32-coslr-200e_in1k_genview.pth': (dict(
        type='MoCo', queue_len=16, feat_dim=16, momentum=0.001, backbone=R50,
        neck=dict(type='MoCoV2Neck', in_channels=2048, hid_channels=32, out_channels=16,
                  with_avg_pool=True),
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'), temperature=0.2)),
        'encoder_k', 'genview_mocov2_r50_linear-steplr-100e_in1k.py'),
    'swav_resnet50_8xb32-mcrop-coslr-200e_in1k_genview.pth': (dict(
        type='SwAV', backbone=R50,
        neck=dict(type='SwAVNeck', in_channels=2048, hid_channels=32, out_channels=16,
                  with_avg_pool=True),
        head=dict(type='SwAVHead', loss=dict(type='SwAVLoss', feat_dim=16, num_prototypes=30,
                                             num_crops=[2, 6]))),
        None, 'genview_swav_r50_linear-lars-coslr-90e_in1k.py'),
    'simsiam_resnet50_8xb32-coslr-200e_in1k_genview.pth': (dict(
        type='SimSiam', backbone=R50, neck=_mlp(2048, n=3, pool=True, with_last_bn_affine=False),
        head=dict(type='LatentPredictHead', loss=dict(type='CosineSimilarityLoss'),
                  predictor=_mlp(16, with_last_bn=False, with_last_bias=True))),
        None, 'genview_simsiam_r50_linear-lars-coslr-90e_in1k.py'),
    'byol_resnet50_16xb256-coslr-200e_in1k_genview.pth': (dict(
        type='BYOL', base_momentum=0.01, backbone=R50,
        neck=_mlp(2048, pool=True, with_bias=True, with_last_bn=False),
        head=dict(type='LatentPredictHead', loss=dict(type='CosineSimilarityLoss'),
                  predictor=_mlp(16, with_bias=True, with_last_bn=False))),
        'target_net', 'genview_byol_r50_linear-lars-coslr-90e_in1k.py'),
    'mocov3_resnet50_8xb512-amp-coslr-100e_in1k_genview.pth': (
        _mocov3(R50, 2048), 'momentum_encoder', 'genview_mocov3_r50_linear-coslr-90e_in1k.py'),
    'mocov3_vit-small-p16_16xb256-amp-coslr-300e_in1k_genview.pth': (
        _mocov3(_vit('mocov3-small'), 384), 'momentum_encoder',
        'genview_mocov3_vit-small-p16_linear-coslr-90e_in1k.py'),
    'mocov3_vit-base-p16_16xb256-amp-coslr-300e_in1k_genview.pth': (
        _mocov3(_vit(VIT_B_2_LAYERS), 768), 'momentum_encoder',
        'genview_mocov3_vit-base-p16_linear-coslr-90e_in1k.py'),
}


def clip_model_standin(seed: int = 0) -> 'OrderedDict[str, torch.Tensor]':
    """A few ``clip_model.*`` tensors named like open_clip's ``convnext_base_w`` CLIP
    (timm trunk + projection head, text transformer), with tiny shapes."""
    g = torch.Generator().manual_seed(seed)
    shapes = {
        'visual.trunk.stem.0.weight': (8, 3, 4, 4), 'visual.trunk.stem.1.weight': (8, ),
        'visual.trunk.stages.0.blocks.0.gamma': (8, ),
        'visual.trunk.stages.0.blocks.0.conv_dw.weight': (8, 1, 7, 7),
        'visual.trunk.stages.0.blocks.0.mlp.fc1.weight': (32, 8),
        'visual.trunk.stages.1.downsample.1.weight': (16, 8, 2, 2),
        'visual.trunk.head.norm.weight': (16, ), 'visual.head.proj.weight': (8, 16),
        'positional_embedding': (77, 8), 'text_projection': (8, 8), 'logit_scale': (),
        'token_embedding.weight': (64, 8), 'ln_final.weight': (8, ),
        'transformer.resblocks.0.attn.in_proj_weight': (24, 8),
    }
    return OrderedDict(('clip_model.' + k, torch.randn(s, generator=g)) for k, s in shapes.items())


def official_cfg_text(model_type: str) -> str:
    """The part of ``meta['cfg']`` (MMEngine pretty text) that matters here."""
    return (f"model = dict(\n    type='{model_type}',\n    use_clip_mask=True,\n"
            "    clip_model_name='convnext_base_w',\n    adjust_loss=True)\n"
            f"data_preprocessor = dict(\n    type='SelfSupDataPreprocessor',\n"
            f"    mean={CLIP_MEAN!r},\n    std={CLIP_STD!r},\n    to_rgb=True)\n")


def build_standin(name: str, seed: int = 0, model_cfg: Optional[dict] = None) -> dict:
    """The official checkpoint ``name`` as a dict (perturbed weights: every tensor distinct)."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    cfg = model_cfg or OFFICIAL[name][0]
    torch.manual_seed(seed)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    state = OrderedDict()
    for k, v in model.state_dict().items():  # the momentum copy gets its own noise
        state[k] = v + torch.randn_like(v) * 0.05 if v.is_floating_point() else v.clone()
    state.update(clip_model_standin(seed))
    return runner_checkpoint(state, cfg_text=official_cfg_text(cfg['type']), epoch=300,
                             iteration=1500)


def save_standin(name: str, folder: str, seed: int = 0) -> Dict[str, object]:
    """Write the stand-in for ``name`` into ``folder`` (numpy-1 pickling); return path and dict."""
    ckpt = build_standin(name, seed)
    path = f'{folder}/{name}'
    save_numpy1(ckpt, path)
    return dict(path=path, ckpt=ckpt)
