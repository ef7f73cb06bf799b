"""Tiny building blocks for the GenView model tests: a fake patch encoder, the upstream
algorithms' configs at toy size with their GenView variants, a stub scorer and batches."""
import copy
from typing import Dict, Optional

import torch
from torch import nn

from genview_mm.models.encoders import CLIP_MEAN, CLIP_STD

SSL_MEAN = (123.675, 116.28, 103.53)
SSL_STD = (58.395, 57.12, 57.375)
BN = dict(type='BN')
BN1D = dict(type='BN1d')  # necks see (B, C) features


class FakePatchEncoder(nn.Module):
    """A frozen 8x8-patchify encoder (32 px -> 4x4 grid of 16-d tokens) recording its input."""

    def __init__(self, dim: int = 16, input_size: int = 32, patch: int = 8) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Conv2d(3, dim, patch, patch)
        self.input_size, self.dim = input_size, dim
        self.grid = (input_size // patch, input_size // patch)
        self.mean, self.std, self.name = CLIP_MEAN, CLIP_STD, 'fake-patch-encoder'
        self.last_input: Optional[torch.Tensor] = None
        self.requires_grad_(False).eval()

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        self.last_input = pixel_values.detach().clone()
        return self.proj(pixel_values).flatten(2).transpose(1, 2)


def resnet18(stem: int = 8) -> dict:
    return dict(type='ResNet', depth=18, stem_channels=stem, base_channels=stem, norm_cfg=BN,
                zero_init_residual=False)


def nonlinear(cin: int, cout: int, hid: int = 32, avg: bool = True, **kw) -> dict:
    return dict(type='NonLinearNeck', in_channels=cin, hid_channels=hid, out_channels=cout,
                with_avg_pool=avg, norm_cfg=BN1D, **kw)


PREPROC = dict(type='SelfSupDataPreprocessor', mean=SSL_MEAN, std=SSL_STD, to_rgb=True)

# Upstream algorithm configs, tiny (ResNet-18 layout with 8 base channels, 32 px inputs).
TINY_MODELS: Dict[str, dict] = {
    'MoCo': dict(type='MoCo', queue_len=32, feat_dim=16, momentum=0.01, backbone=resnet18(),
                 neck=dict(type='MoCoV2Neck', in_channels=64, hid_channels=32, out_channels=16),
                 head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                           temperature=0.2)),
    'MoCoV3': dict(type='MoCoV3', base_momentum=0.01, backbone=resnet18(),
                   neck=nonlinear(64, 16, with_last_bn_affine=False),
                   head=dict(type='MoCoV3Head', temperature=0.2,
                             predictor=nonlinear(16, 16, avg=False, with_last_bn=False),
                             loss=dict(type='CrossEntropyLoss', loss_weight=0.4))),
    'MoCoV3ViT': dict(type='MoCoV3', base_momentum=0.01,
                      backbone=dict(type='MoCoV3ViT', arch=dict(
                          embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64),
                          img_size=32, patch_size=8, stop_grad_conv1=True),
                      neck=nonlinear(32, 16, avg=False, with_last_bn_affine=False),
                      head=dict(type='MoCoV3Head', temperature=0.2,
                                predictor=nonlinear(16, 16, avg=False, with_last_bn=False),
                                loss=dict(type='CrossEntropyLoss', loss_weight=0.4))),
    'BYOL': dict(type='BYOL', base_momentum=0.01, backbone=resnet18(),
                 neck=nonlinear(64, 16, with_bias=True, with_last_bn=False),
                 head=dict(type='LatentPredictHead', loss=dict(type='CosineSimilarityLoss'),
                           predictor=nonlinear(16, 16, avg=False, with_last_bn=False))),
    'SimSiam': dict(type='SimSiam', backbone=resnet18(),
                    neck=nonlinear(64, 16, num_layers=3, with_last_bn_affine=False),
                    head=dict(type='LatentPredictHead', loss=dict(type='CosineSimilarityLoss'),
                              predictor=nonlinear(16, 16, avg=False, with_last_bn=False,
                                                  with_last_bias=True))),
    'SimCLR': dict(type='SimCLR', backbone=resnet18(), neck=nonlinear(64, 16),
                   head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                             temperature=0.1)),
    'SwAV': dict(type='SwAV', backbone=resnet18(),
                 neck=dict(type='SwAVNeck', in_channels=64, hid_channels=32, out_channels=16,
                           norm_cfg=BN1D),
                 head=dict(type='SwAVHead', loss=dict(
                     type='SwAVLoss', feat_dim=16, epsilon=0.05, temperature=0.1,
                     num_crops=[2, 2], num_prototypes=10))),
}
GENVIEW_TYPES = {'MoCo': 'GenViewMoCo', 'MoCoV3': 'GenViewMoCoV3', 'MoCoV3ViT': 'GenViewMoCoV3',
                 'BYOL': 'GenViewBYOL', 'SimSiam': 'GenViewSimSiam', 'SimCLR': 'GenViewSimCLR',
                 'SwAV': 'GenViewSwAV'}


def tiny_model_cfg(method: str, scorer: Optional[dict] = None) -> dict:
    """The tiny upstream config of ``method``; with ``scorer`` its GenView variant."""
    cfg = copy.deepcopy(TINY_MODELS[method])
    cfg['data_preprocessor'] = dict(PREPROC)
    if scorer is not None:
        cfg['type'] = GENVIEW_TYPES[method]
        cfg['scorer'] = scorer
    return cfg


class StubScorer(nn.Module):
    """Scores that the weight rule turns into preset pair weights (mean 1): ``q = log w``, so
    ``N * softmax(q) = w`` (to test how algorithms map weights to loss rows)."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        assert abs(float(weights.mean()) - 1.0) < 1e-6, 'preset weights must have mean 1'
        self.weights = weights

    def forward(self, view1, view2, data_preprocessor=None):
        from genview_mm.models.scorers import PairScores
        z = torch.zeros(view1.size(0))
        return PairScores(z, z, self.weights.log())


def tiny_batch(method: str, n: int = 4, seed: int = 0) -> dict:
    """A collated batch as the data loader gives it (uint8 views, one DataSample per image)."""
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    sizes = [32, 32] + ([16, 16] if method == 'SwAV' else [])
    views = [torch.randint(0, 256, (n, 3, s, s), generator=g, dtype=torch.uint8) for s in sizes]
    return dict(inputs=views, data_samples=[DataSample() for _ in range(n)])
