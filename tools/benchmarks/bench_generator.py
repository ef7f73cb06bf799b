"""Throughput of AdaptiveNoiseGenerator: batched calls vs one image per call, and the runner's
analysis handed to ``generate`` vs done twice.

All paths use the same pipeline, settings (20 steps, guidance 10 by default), images and
seeds in one run. ``--mode batching``: the loop calls ``generate([img])`` once per image, like
the official script; ``mixed`` (the default) makes one pipeline call for the whole batch, each
image at its own noise level; ``by level`` makes one call per noise level in the batch.
``--mode analysis``: what the runner does per batch, ``analyze`` (to bucket by noise level)
then ``generate``: before, ``generate`` analysed the images again (two CLIP passes per source
image); now it takes the analysis (one pass).
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
    p.add_argument('--mode', choices=['batching', 'analysis', 'all'], default='all')
    p.add_argument('--threads', type=int, default=None,
                   help='torch CPU threads (default: torch\'s own, all cores); use 1 on a box '
                   'shared with other jobs, where more threads only spin against them')
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


def bench_batching(gen, images, keys, args) -> None:
    print(f'{"batch":>5} {"levels":>6} {"loop img/s":>11} {"mixed img/s":>12} {"ratio":>6} '
          f'{"by level img/s":>15} {"ratio":>6}')
    for bs in args.batch_sizes:
        imgs, ks = images[:bs], keys[:bs]
        levels = len(set(gen.analyze(imgs)['noise_level']))
        t_mixed, t_loop, t_level = best_times(
            [lambda: gen.generate(imgs, ks),
             lambda: [gen.generate([i], [k]) for i, k in zip(imgs, ks)],
             lambda: gen.generate(imgs, ks, batching='level')], args.repeats)
        print(f'{bs:>5} {levels:>6} {bs / t_loop:>11.2f} {bs / t_mixed:>12.2f} '
              f'{t_loop / t_mixed:>5.2f}x {bs / t_level:>15.2f} {t_loop / t_level:>5.2f}x',
              flush=True)
    print('levels = distinct noise levels in the batch (= pipeline calls of "by level"; '
          '"mixed" makes one call); ratio = loop time / batched time')


def bench_analysis(gen, images, keys, args) -> None:
    print(f'{"batch":>5} {"analyze s":>10} {"twice s":>8} {"once s":>8} {"saved (meas.)":>14} '
          f'{"saved (analyze/twice)":>22}')
    for bs in args.batch_sizes:
        imgs, ks = images[:bs], keys[:bs]
        t_an, t_twice, t_once = best_times(
            [lambda: gen.analyze(imgs),
             lambda: (gen.analyze(imgs), gen.generate(imgs, ks)),
             lambda: gen.generate(imgs, ks, analysis=gen.analyze(imgs))], args.repeats)
        print(f'{bs:>5} {t_an:>10.4f} {t_twice:>8.3f} {t_once:>8.3f} '
              f'{100 * (1 - t_once / t_twice):>13.1f}% {100 * t_an / t_twice:>21.2f}%',
              flush=True)
    print('twice = analyze, then generate analysing again (before); once = generate takes the '
          'analysis (now); saved (meas.) = 1 - once / twice (noisy: two timings); '
          'saved (analyze/twice) = the one CLIP pass removed, as a share of the batch time')


def main(argv=None):
    args = parse_args(argv)
    import torch
    from PIL import Image

    import genview_mm  # noqa: F401
    from genview_mm.generation import AdaptiveNoiseGenerator
    if args.threads:
        torch.set_num_threads(args.threads)
    from genview_mm.demo.photos import sample_photos

    tmp = tempfile.mkdtemp(prefix='bench_gen_')
    images = [Image.fromarray(a) for a in sample_photos(max(args.batch_sizes) * 4,
                                                        args.image_size)]
    keys = [f'img_{i:04d}.jpg' for i in range(len(images))]
    pretrained, pca = args.pretrained, args.pca
    if pretrained is None:
        from genview_mm.apis.pca_fit import run_fit
        from genview_mm.demo.photos import write_photos
        from genview_mm.demo.tiny_models import save_tiny_unclip
        from genview_mm.models.encoders import CLIPPatchEncoder
        pretrained = save_tiny_unclip(osp.join(tmp, 'unclip'))
        enc = CLIPPatchEncoder.from_pretrained(pretrained, subfolder='image_encoder')
        pca = osp.join(tmp, 'pca.pth')
        run_fit(write_photos(osp.join(tmp, 'photos'), 16, args.image_size), enc, pca,
                show_progress=False, sheet_images=2)
    gen = AdaptiveNoiseGenerator(pca=pca, pretrained=pretrained, device=args.device,
                                 torch_dtype=args.dtype, num_inference_steps=args.steps,
                                 guidance_scale=args.guidance, output_size=None)
    gen.generate(images[:2], keys[:2])  # warm-up
    print(f'device={args.device} torch_threads={torch.get_num_threads()} steps={args.steps} '
          f'guidance={args.guidance} pipeline={gen.name}')
    if args.mode in ('batching', 'all'):
        bench_batching(gen, images, keys, args)
    if args.mode in ('analysis', 'all'):
        bench_analysis(gen, images, keys, args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
