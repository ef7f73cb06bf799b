"""Samples/s of the GenViewPairDataset pipeline vs upstream MultiView, in one run.

Both decode the same originals (~500x375 JPEG, like ImageNet) and apply the same MoCo v2 view
pipeline (224 px); GenViewPairDataset also decodes a 512x512 generated JPEG per sample (prob 1).
Rounds alternate between the two so machine noise hits both alike.

    python tools/benchmarks/bench_pair_dataset.py [--num 64] [--rounds 3]
"""
import argparse
import os
import os.path as osp
import tempfile
import time

VIEW = [
    dict(type='RandomResizedCrop', scale=224, crop_ratio_range=(0.2, 1.), backend='pillow'),
    dict(type='RandomApply', prob=0.8, transforms=[
        dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)]),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]


def make_data(root: str, num: int):
    """``num`` ~500x375 JPEG originals in ``root`` and a manifest of 512-px generated views."""
    from PIL import Image

    from genview_mm.demo.photos import sample_photos
    from genview_mm.structures.manifest import ManifestRow, write_manifest
    sources, rows = [], []
    os.makedirs(osp.join(root, 'gen'), exist_ok=True)
    for i, img in enumerate(sample_photos(num, size=512)):
        src = osp.join(root, f'src_{i:04d}.jpg')
        Image.fromarray(img).resize((500, 375)).save(src, quality=90)
        out = f'img_{i:04d}.jpg'
        Image.fromarray(img[:, ::-1]).save(osp.join(root, 'gen', out), quality=90)
        rows.append(ManifestRow(src, osp.basename(src), 0, out, 100, 0.3, i, 'bench', 0.9))
        sources.append(src)
    write_manifest(osp.join(root, 'gen', 'manifest.jsonl'), rows)
    return sources, osp.join(root, 'gen', 'manifest.jsonl')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--num', type=int, default=64)
    parser.add_argument('--rounds', type=int, default=3)
    args = parser.parse_args()
    import numpy as np  # heavy imports after parsing: --help answers without torch
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    import genview_mm  # noqa: F401
    init_default_scope('mmpretrain')
    with tempfile.TemporaryDirectory() as root:
        sources, manifest = make_data(root, args.num)
        pipelines = {
            'MultiView': Compose([dict(type='LoadImageFromFile'),
                                  dict(type='MultiView', num_views=2, transforms=[VIEW]),
                                  dict(type='PackInputs')]),
            'GenViewPairDataset': Compose([
                dict(type='GenViewPairDataset', manifest=manifest, num_views=2,
                     transforms=[VIEW]),
                dict(type='PackInputs')]),
        }
        times = {k: [] for k in pipelines}
        np.random.seed(0)
        for _ in range(args.rounds):
            for name, pipe in pipelines.items():
                start = time.perf_counter()
                for i, src in enumerate(sources):
                    out = pipe(dict(img_path=src, sample_idx=i))
                    assert len(out['inputs']) == 2
                times[name].append(time.perf_counter() - start)
    rate = {k: args.num / np.median(v) for k, v in times.items()}
    for k, v in rate.items():
        print(f'{k:>20}: {v:7.1f} samples/s (median of {args.rounds} rounds of {args.num})')
    ratio = rate['GenViewPairDataset'] / rate['MultiView']
    print(f'ratio GenViewPairDataset / MultiView: {ratio:.3f} (target >= 0.75)')


if __name__ == '__main__':
    main()
