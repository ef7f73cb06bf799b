"""Throughput of AdaptiveNoiseGenerator batched by noise level vs one image per call.

Both paths use the same pipeline, settings (20 steps, guidance 10 by default), images and
seeds in one run; the loop calls ``generate([img])`` once per image, like the official
script. A third column times a batch whose images share one noise level: what
``tools/generate_views.py`` feeds the pipeline with its per-level buckets (one full call).
Without ``--pretrained`` a tiny random-weight pipeline (``save_tiny_unclip``) is built in a
temporary folder and a PCA is fitted for its encoder on the same photos.

    python tools/benchmarks/bench_generator.py                 # tiny pipeline, CPU
    python tools/benchmarks/bench_generator.py --device cuda --batch-sizes 1 4 8 16 \\
        --pretrained stabilityai/stable-diffusion-2-1-unclip --pca fg_pca.pth
"""
import argparse
import os.path as osp
import sys
import tempfile
import time

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--pretrained', default=None, help='pipeline folder/hub id (default: tiny)')
    p.add_argument('--pca', default=None, help='PCA file (required with --pretrained)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--dtype', default=None)
    p.add_argument('--steps', type=int, default=20)
    p.add_argument('--guidance', type=float, default=10.0)
    p.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 4, 8, 16])
    p.add_argument('--repeats', type=int, default=3, help='timed repeats (best is kept)')
    p.add_argument('--image-size', type=int, default=64)
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (default: 1 on CPU: on a shared 2-core box more '
                   'threads only spin against other jobs and make timings meaningless)')
    return p.parse_args(argv)


def best_times(fns, repeats):
    """Best wall time of each function over ``repeats`` rounds, interleaved so that load
    changes on a shared machine hit both paths alike."""
    best = [float('inf')] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main(argv=None):
    args = parse_args(argv)
    import torch
    from PIL import Image

    import genview_mm  # noqa: F401
    from genview_mm.generation import AdaptiveNoiseGenerator
    if args.threads or args.device == 'cpu':
        torch.set_num_threads(args.threads or 1)
    sys.path.insert(0, osp.join(ROOT, 'tests'))
    from tiny_models import sample_photos

    tmp = tempfile.mkdtemp(prefix='bench_gen_')
    images = [Image.fromarray(a) for a in sample_photos(max(args.batch_sizes) * 4,
                                                        args.image_size)]
    keys = [f'img_{i:04d}.jpg' for i in range(len(images))]
    pretrained, pca = args.pretrained, args.pca
    if pretrained is None:
        from genview_mm.foreground import CLIPPatchEncoder
        from genview_mm.foreground.fit_runner import run_fit
        from tiny_models import save_tiny_unclip, write_photos
        pretrained = save_tiny_unclip(osp.join(tmp, 'unclip'))
        enc = CLIPPatchEncoder.from_pretrained(pretrained, subfolder='image_encoder')
        pca = osp.join(tmp, 'pca.pth')
        run_fit(write_photos(osp.join(tmp, 'photos'), 16, args.image_size), enc, pca,
                show_progress=False, sheet_images=2)
    gen = AdaptiveNoiseGenerator(pca=pca, pretrained=pretrained, device=args.device,
                                 torch_dtype=args.dtype, num_inference_steps=args.steps,
                                 guidance_scale=args.guidance, output_size=None)
    gen.generate(images[:2], keys[:2])  # warm-up
    levels_all = gen.analyze(images)['noise_level']
    common = max(set(levels_all), key=levels_all.count)
    same_level = [im for im, lvl in zip(images, levels_all) if lvl == common]
    print(f'device={args.device} torch_threads={torch.get_num_threads()} steps={args.steps} '
          f'guidance={args.guidance} pipeline={gen.name}')
    print(f'{"batch":>5} {"levels":>6} {"batched img/s":>14} {"loop img/s":>11} {"ratio":>6} '
          f'{"1-level img/s":>14} {"ratio":>6}')
    for bs in args.batch_sizes:
        imgs, ks = images[:bs], keys[:bs]
        levels = len(set(gen.analyze(imgs)['noise_level']))
        one = [same_level[i % len(same_level)] for i in range(bs)]
        t_batch, t_loop, t_one = best_times(
            [lambda: gen.generate(imgs, ks),
             lambda: [gen.generate([i], [k]) for i, k in zip(imgs, ks)],
             lambda: gen.generate(one, ks)], args.repeats)
        print(f'{bs:>5} {levels:>6} {bs / t_batch:>14.2f} {bs / t_loop:>11.2f} '
              f'{t_loop / t_batch:>5.2f}x {bs / t_one:>14.2f} {t_loop / t_one:>5.2f}x',
              flush=True)
    print('levels = distinct noise levels in the batch = pipeline calls of the batched path; '
          f'1-level = {bs} images of level {common} in one call (generate_views level buckets)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
