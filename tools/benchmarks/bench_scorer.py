"""Training-step time of an SSL algorithm with vs without the GenView pair scorer, in one run.

    # CPU: ResNet-18 (width 32) MoCo v2 at 64 px, a small random CLIP with an 8x8 grid (default)
    python tools/benchmarks/bench_scorer.py --preset cpu
    # GPU: ResNet-50, batch 32, 224 px, AMP, CLIP ViT-B/32 (a local folder or hub id; a
    # randomly initialised ViT-B/32 of the same shape when none is given)
    python tools/benchmarks/bench_scorer.py --preset gpu [--encoder openai/clip-vit-base-patch32]
    # FLOPs of the same two steps (no timing), e.g. for the GPU preset on a CPU machine
    python tools/benchmarks/bench_scorer.py --preset gpu --flops --batch 2

Both models share one config (the GenView one adds only ``scorer``); steps are interleaved
(baseline, GenView, baseline, ...) after warm-up so that machine load affects both alike.
Prints ms/step of each and the overhead ratio GenView / baseline.
"""
import argparse
import os.path as osp
import statistics
import tempfile
import time

import torch

import genview_mm  # noqa: F401  (compat fixes and registration first)

PRESETS = {
    'cpu': dict(depth=18, width=32, size=64, batch=16, clip=dict(
        hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
        image_size=64, patch_size=8), amp=False),
    'gpu': dict(depth=50, width=64, size=224, batch=32, clip=dict(
        hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        image_size=224, patch_size=32), amp=True),
}


def model_cfg(p: dict, method: str) -> dict:
    """MoCo v2 / MoCo v3 config of the preset's ResNet (BN; SyncBN needs several GPUs)."""
    out = p['width'] * 8 * (4 if p['depth'] >= 50 else 1)
    backbone = dict(type='ResNet', depth=p['depth'], stem_channels=p['width'],
                    base_channels=p['width'], norm_cfg=dict(type='BN'))
    pre = dict(type='SelfSupDataPreprocessor', mean=[123.675, 116.28, 103.53],
               std=[58.395, 57.12, 57.375], to_rgb=True)
    if method == 'MoCo':
        return dict(type='MoCo', queue_len=p['batch'] * 16, feat_dim=128, backbone=backbone,
                    data_preprocessor=pre,
                    neck=dict(type='MoCoV2Neck', in_channels=out, hid_channels=out,
                              out_channels=128),
                    head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                              temperature=0.2))
    neck = dict(type='NonLinearNeck', in_channels=out, hid_channels=1024, out_channels=256,
                norm_cfg=dict(type='BN1d'), with_last_bn_affine=False)
    pred = dict(type='NonLinearNeck', in_channels=256, hid_channels=1024, out_channels=256,
                norm_cfg=dict(type='BN1d'), with_avg_pool=False, with_last_bn=False)
    return dict(type='MoCoV3', backbone=backbone, neck=neck, data_preprocessor=pre,
                head=dict(type='MoCoV3Head', predictor=pred, temperature=0.2,
                          loss=dict(type='CrossEntropyLoss', loss_weight=0.4)))


def make_encoder(p: dict, folder: str) -> str:
    """A randomly initialised CLIP vision tower of the preset's shape, saved to ``folder``."""
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection
    torch.manual_seed(0)
    config = CLIPVisionConfig(projection_dim=512, **p['clip'])
    CLIPVisionModelWithProjection(config).save_pretrained(folder)
    size = p['clip']['image_size']
    CLIPImageProcessor(size={'shortest_edge': size},
                       crop_size={'height': size, 'width': size}).save_pretrained(folder)
    return folder


def make_pca(encoder: str, folder: str) -> str:
    """A PCA file with a random direction for ``encoder`` (timing does not depend on it)."""
    from genview_mm.foreground import ForegroundPCA
    from genview_mm.models.encoders import CLIPPatchEncoder
    enc = CLIPPatchEncoder.from_pretrained(encoder)
    d = torch.nn.functional.normalize(torch.randn(enc.dim), dim=0)
    path = osp.join(folder, 'pca.pth')
    ForegroundPCA(d, torch.zeros(enc.dim), 0.0, enc.name, enc.grid, enc.input_size).save(path)
    return path


def build(cfg: dict, device: str, amp: bool):
    from mmengine.optim import AmpOptimWrapper, OptimWrapper
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(cfg).to(device).train()
    optim = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9)
    return model, (AmpOptimWrapper(optimizer=optim) if amp else OptimWrapper(optim))


def batch(p: dict, device: str) -> dict:
    from mmpretrain.structures import DataSample
    views = [torch.randint(0, 256, (p['batch'], 3, p['size'], p['size']), dtype=torch.uint8,
                           device=device) for _ in range(2)]
    return dict(inputs=views, data_samples=[DataSample() for _ in range(p['batch'])])


def step_time(model, optim, data, device: str) -> float:
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.train_step(data, optim)
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def step_flops(model, optim, data) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        model.train_step(data, optim)
    return counter.get_total_flops()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--preset', choices=list(PRESETS), default='cpu')
    ap.add_argument('--method', choices=['MoCo', 'MoCoV3'], default='MoCo')
    ap.add_argument('--encoder', help='CLIP id/folder (default: random one of preset shape)')
    ap.add_argument('--pca', help='PCA file for --encoder (default: random direction)')
    ap.add_argument('--batch', type=int, help='override the preset batch size')
    ap.add_argument('--steps', type=int, default=6, help='timed steps per model')
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    ap.add_argument('--flops', action='store_true', help='count FLOPs instead of timing')
    args = ap.parse_args()
    p = dict(PRESETS[args.preset])
    p['batch'] = args.batch or p['batch']
    amp = p['amp'] and args.device.startswith('cuda')
    from mmengine.logging import MessageHub  # MoCo v3's cosine momentum reads the run length
    MessageHub.get_current_instance().update_info('max_iters', 10 * (args.warmup + args.steps))
    with tempfile.TemporaryDirectory() as tmp:
        encoder = args.encoder or make_encoder(p, osp.join(tmp, 'clip'))
        pca = args.pca or make_pca(encoder, tmp)
        base_cfg = model_cfg(p, args.method)
        gv_cfg = dict(base_cfg, type='GenView' + args.method,
                      scorer=dict(type='PairQualityScorer', encoder=encoder, pca_path=pca))
        runs = {'baseline': build(base_cfg, args.device, amp),
                'genview': build(gv_cfg, args.device, amp)}
        data = batch(p, args.device)
        print(f'preset={args.preset} method={args.method} batch={p["batch"]} size={p["size"]} '
              f'device={args.device} amp={amp} threads={torch.get_num_threads()}')
        if args.flops:
            f = {k: step_flops(m, o, data) for k, (m, o) in runs.items()}
            print(f'GFLOPs/step baseline={f["baseline"] / 1e9:.2f} '
                  f'genview={f["genview"] / 1e9:.2f} ratio={f["genview"] / f["baseline"]:.3f}')
            return
        times = {k: [] for k in runs}
        for i in range(args.warmup + args.steps):
            for k, (m, o) in runs.items():
                t = step_time(m, o, data, args.device)
                if i >= args.warmup:
                    times[k].append(t)
    for name, stat in (('median', statistics.median), ('min', min)):
        t = {k: stat(v) * 1e3 for k, v in times.items()}
        print(f'ms/step ({name} of {args.steps}) baseline={t["baseline"]:.1f} '
              f'genview={t["genview"]:.1f} overhead ratio={t["genview"] / t["baseline"]:.3f} '
              f'(+{100 * (t["genview"] / t["baseline"] - 1):.1f}%)')


if __name__ == '__main__':
    main()
