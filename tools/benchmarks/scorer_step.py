"""Model pieces of ``bench_scorer.py``: SSL models of the real configs (or a tiny one), the pair
scorers with random weights of the real architectures, and one training step timed or counted.

The GenView pair scorer (arXiv:2403.12003, Sec. 3.3) runs a frozen encoder on both views of every
pair at each step; this measures what that adds to a step of the upstream algorithm.
"""
import os.path as osp
import statistics
import time
from typing import Dict, List, Optional, Tuple

import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: the real pretraining configs (per-GPU batch, optimizer, AMP and model as trained)
CONFIGS = {'MoCo': 'configs/genview_mocov2_r50_in1k.py',
           'MoCoV3': 'configs/genview_mocov3_r50_in1k.py'}
#: transformers' CLIP ViT-B/32 vision tower (openai/clip-vit-base-patch32), spelled out
VIT_B32 = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
               num_attention_heads=12, image_size=224, patch_size=32, projection_dim=512)
TINY_CLIP = dict(hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                 num_attention_heads=4, image_size=64, patch_size=8, projection_dim=512)
#: scorer encoders by name: ``timm`` = TimmPatchEncoder arguments, ``clip`` = CLIPVisionConfig
ENCODERS = {
    # the paper's: OpenCLIP ConvNeXt-Base-W laion2B-s13B-b82K-augreg, 7x7x1024 tokens at 224 px
    'convnext': dict(timm=dict(model_name='convnext_base.clip_laion2b_augreg', input_size=224)),
    'vit-b32': dict(clip=VIT_B32),  # configs/_base_/scorers/clip_vit_b32.py
    'tiny-clip': dict(clip=TINY_CLIP),
}


def tiny_setup(method: str, batch: int) -> dict:
    """ResNet-18 (width 32) MoCo v2 / v3 at 64 px with SGD, for a quick CPU run."""
    backbone = dict(type='ResNet', depth=18, stem_channels=32, base_channels=32,
                    norm_cfg=dict(type='BN'))
    pre = dict(type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53],
               std=[58.395, 57.12, 57.375], to_rgb=True)
    if method == 'MoCo':
        model = dict(type='MoCo', queue_len=batch * 16, feat_dim=128, backbone=backbone,
                     neck=dict(type='MoCoV2Neck', in_channels=256, hid_channels=256,
                               out_channels=128),
                     head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                               temperature=0.2))
    else:
        pred = dict(type='NonLinearNeck', in_channels=256, hid_channels=1024, out_channels=256,
                    norm_cfg=dict(type='BN1d'), with_avg_pool=False, with_last_bn=False)
        model = dict(type='MoCoV3', backbone=backbone,
                     neck=dict(type='NonLinearNeck', in_channels=256, hid_channels=1024,
                               out_channels=256, norm_cfg=dict(type='BN1d'),
                               with_last_bn_affine=False),
                     head=dict(type='MoCoV3Head', predictor=pred, temperature=0.2,
                               loss=dict(type='CrossEntropyLoss', loss_weight=0.4)))
    optim = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.03, momentum=0.9))
    return dict(model=dict(model, data_preprocessor=pre), optim_wrapper=optim, batch=batch,
                size=64, cudnn_benchmark=False)


def real_setup(method: str, batch: Optional[int] = None) -> dict:
    """Model, optimizer wrapper, per-GPU batch and image size of the method's GenView config,
    as the upstream algorithm (``scorer`` removed, SyncBN -> BN: one process)."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, CONFIGS[method]))
    model = cfg.model.to_dict()
    model.pop('scorer', None)
    model['type'] = model['type'].replace('GenView', '')
    model['data_preprocessor'] = cfg.data_preprocessor.to_dict()
    return dict(model=_no_syncbn(model), optim_wrapper=cfg.optim_wrapper.to_dict(),
                batch=batch or cfg.train_dataloader.batch_size, size=224,
                cudnn_benchmark=bool(cfg.env_cfg.get('cudnn_benchmark', False)))


def _no_syncbn(cfg):
    """``cfg`` with every ``SyncBN`` norm config turned into ``BN``."""
    if isinstance(cfg, dict):
        if cfg.get('type') == 'SyncBN':
            return dict(cfg, type='BN')
        return {k: _no_syncbn(v) for k, v in cfg.items()}
    return cfg


def build_encoder(name: str) -> torch.nn.Module:
    """The scorer encoder ``name`` of :data:`ENCODERS`, randomly initialised (no hub here; the
    step time does not depend on the weights)."""
    from mmpretrain.registry import MODELS
    spec = ENCODERS[name]
    if 'timm' in spec:
        return MODELS.build(dict(type='TimmPatchEncoder', pretrained=False, **spec['timm']))
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**spec['clip']))
    return MODELS.build(dict(type='CLIPPatchEncoder', model=clip, name=f'random-{name}'))


def random_pca(encoder: torch.nn.Module, path: str) -> str:
    """A PCA file for ``encoder`` with a random unit direction (names the encoder; no
    fingerprint), written to ``path``."""
    from genview_mm.foreground import ForegroundPCA
    direction = torch.nn.functional.normalize(torch.randn(encoder.dim), dim=0)
    ForegroundPCA(direction, torch.zeros(encoder.dim), 0.0, encoder.name, encoder.grid,
                  encoder.input_size, encoder_arch=encoder.arch).save(path)
    return path


def build_runs(setup: dict, scorers: List[str], device: str, amp: bool, folder: str,
               impls: Tuple[str, ...] = ('optimised',),
               options: Optional[dict] = None) -> Dict[str, tuple]:
    """``{'baseline': (model, optim_wrapper), 'genview[NAME]': ...}``: the upstream model and
    its GenView variant with each scorer, same config and initial weights; with ``'official'``
    in ``impls`` also ``genview[NAME-official]``, the official-style scorer (``options``: the
    optimised scorer's arguments, e.g. ``compile=True``)."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    from genview_mm.models.scorers import OfficialStyleScorer, PairQualityScorer
    init_default_scope('mmpretrain')  # as the runner does: LARS is mmpretrain's
    optim_cfg = dict(setup['optim_wrapper'])
    if not amp:
        optim_cfg.pop('loss_scale', None)
        optim_cfg['type'] = 'OptimWrapper'
    variants = {'baseline': setup['model']}
    kinds = {'optimised': ('', PairQualityScorer),
             'official': ('-official', OfficialStyleScorer)}
    for name in scorers:
        for impl in impls:
            suffix, cls = kinds[impl]
            enc = build_encoder(name).to(device)  # not a submodule: model.to() leaves it
            scorer = cls(random_pca(enc, osp.join(folder, f'{name}.pth')), encoder=enc,
                         **((options or {}) if impl == 'optimised' else _amp_only(options)))
            variants[f'genview[{name}{suffix}]'] = dict(setup['model'], scorer=scorer,
                                                        type='GenView' + setup['model']['type'])
    runs = {}
    for key, cfg in variants.items():
        torch.manual_seed(0)
        model = MODELS.build(cfg).to(device).train()
        runs[key] = (model, build_optim_wrapper(model, optim_cfg))
    return runs


def _amp_only(options: Optional[dict]) -> dict:
    """The autocast settings of ``options`` (the official-style arm shares them)."""
    return {k: v for k, v in (options or {}).items() if k in ('autocast', 'autocast_dtype')}


def fake_batch(batch: int, size: int, device: str) -> dict:
    """Two uint8 views and empty data samples, as the data loader hands them over."""
    from mmpretrain.structures import DataSample
    views = [torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
             for _ in range(2)]
    return dict(inputs=views, data_samples=[DataSample() for _ in range(batch)])


#: ``wall``: elapsed time; ``process``: CPU seconds of this process, all threads (on a shared
#: CPU machine, with one thread, what other jobs do barely changes it)
CLOCKS = {'wall': time.perf_counter, 'process': time.process_time}


def step_time(model, optim, data, device: str, clock: str = 'wall') -> Tuple[float, float]:
    """Seconds of one ``train_step`` on ``clock`` and the peak GPU memory in GiB (0 on CPU)."""
    cuda = device.startswith('cuda')
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = CLOCKS[clock]()
    model.train_step(data, optim)
    if cuda:
        torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0
    return CLOCKS[clock]() - t0, peak


def interleaved_times(runs: Dict[str, tuple], data: dict, device: str, warmup: int,
                      steps: int, clock: str = 'wall'
                      ) -> Tuple[Dict[str, List[float]], Dict[str, float]]:
    """Step times of every run, one step of each in turn (machine load hits all alike)."""
    times = {k: [] for k in runs}
    peaks = {k: 0.0 for k in runs}
    for i in range(warmup + steps):
        for k, (model, optim) in runs.items():
            t, peak = step_time(model, optim, data, device, clock)
            peaks[k] = max(peaks[k], peak)
            if i >= warmup:
                times[k].append(t)
    return times, peaks


def step_flops(model, optim, data) -> int:
    """FLOPs of one ``train_step`` (forward, backward and the scorer; torch's counter)."""
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        model.train_step(data, optim)
    return counter.get_total_flops()


def ratio_lines(values: Dict[str, float], unit: str, fmt: str = '.1f') -> List[str]:
    """One line per GenView run: its value, the baseline's and the ratio."""
    base = values['baseline']
    return [f'{key}: {unit} baseline={base:{fmt}} genview={v:{fmt}} overhead ratio='
            f'{v / base:.3f} ({100 * (v / base - 1):+.1f}%)'
            for key, v in values.items() if key != 'baseline']


def summary(times: Dict[str, List[float]]) -> List[str]:
    """Ratio lines of the median and of the minimum step time."""
    lines = []
    for name, stat in (('median', statistics.median), ('min', min)):
        n = len(next(iter(times.values())))
        lines += ratio_lines({k: stat(v) * 1e3 for k, v in times.items()},
                             f'ms/step ({name} of {n})')
    return lines
