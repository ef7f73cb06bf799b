"""View generation, the official way (arm O) against the project's runner (arm P), side by side
in one process on the same source JPEGs, seeds and noise levels.

Arm O: per image, PIL open, one pipeline call (``output_type='pil'``), resize to the output size
(bicubic), JPEG save. Arm P: ``generate_views`` (the runner) with the generator's fast path,
from source file to JPEG plus manifest row. Printed per arm: images/s, ms per image, MFU (FLOPs
of one call counted with torch's FlopCounterMode, against ``--peak-tflops``), peak memory (on
CUDA less the other arm's weights); then the ratio P/O, the PSNR of P to O (images generated at
the same level by both), P's levels, calls and padded rows; then host time per image on the main
thread outside the synchronised model calls, in a second pass (``host_ms``: the thread's CPU
time, the host work it does; ``host_wall_ms``: wall time, waits for the prefetch thread and the
writers included); then the PSNR of O in fp16 to O in fp32 (TF32 off) beside P to O on the same
images. Each line as soon as it is measured.

    python tools/benchmarks/bench_generator.py --preset tiny            # CPU, tiny pipeline
    python tools/benchmarks/bench_generator.py --preset real-size --device cuda --compile
    python tools/benchmarks/bench_generator.py --preset real-size --dry-run   # shapes only

``real-size`` is Stable unCLIP 2.1 built from its published configs (sd21_unclip_config.json)
with random weights; 64 images by default (measured on an H200, 2026-12-04: 321 s for the whole
run, compile 96 s of it; docs/benchmarks.md). ``tiny`` is the tiny random pipeline of the tests.
"""
import argparse
import os.path as osp
import shutil
import sys
import tempfile
import time
from collections import Counter

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from device_peak import H100_PEAK_TFLOPS  # noqa: E402  (the MFU reference on CUDA)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--preset', choices=['tiny', 'real-size'], default='tiny')
    p.add_argument('--dry-run', action='store_true',
                   help='build the preset on the meta device, print its sizes and exit')
    p.add_argument('--device', default='cpu')
    p.add_argument('--dtype', default=None, help='arms dtype (default: float16 on CUDA, '
                   'float32 on CPU); the PSNR reference runs arm O in the other of fp16/fp32')
    p.add_argument('--images', type=int, default=None, help='source images (tiny: 16, '
                   'real-size: 64)')
    p.add_argument('--batch-size', type=int, default=None, help='arm P batch (tiny: 8, '
                   'real-size: 16)')
    p.add_argument('--steps', type=int, default=20)
    p.add_argument('--guidance', type=float, default=10.0)
    p.add_argument('--output-size', type=int, default=512)
    p.add_argument('--source-size', type=int, default=None, help='source JPEG size (tiny: '
                   '64, real-size: 384)')
    p.add_argument('--compile', action='store_true', help='arm P with torch.compile')
    p.add_argument('--output', choices=['auto', 'pil', 'tensor'], default='auto',
                   help="arm P's generator output (auto: the generator's own choice, tensor on "
                   'CUDA and PIL on a CPU, as a run of tools/generate_views.py gets)')
    p.add_argument('--psnr-images', type=int, default=4, help='images of the fp16/fp32 run')
    p.add_argument('--host-images', type=int, default=None,
                   help='images of the host-time pass (tiny: all, real-size: 16)')
    p.add_argument('--peak-tflops', type=float, default=None,
                   help=f'device peak (default: {H100_PEAK_TFLOPS} on CUDA, the H100/'
                   'H200 dense fp16 value; on CPU the measured matmul rate in the arms\' dtype)')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    args = p.parse_args(argv)
    counts = ('images', 'host_images', 'batch_size', 'source_size', 'steps', 'psnr_images',
              'threads', 'output_size')  # 0 threads or a peak of 0 was taken as the default
    bad = [f'--{k.replace("_", "-")} {getattr(args, k)}' for k in counts
           if getattr(args, k, None) is not None and getattr(args, k) < 1]
    if bad:
        p.error(f'must be at least 1: {", ".join(bad)}')
    if args.peak_tflops is not None and not args.peak_tflops > 0:
        p.error(f'--peak-tflops must be > 0, got {args.peak_tflops}')
    import torch

    from genview_mm.generation.pipeline_loader import resolve_dtype
    try:  # the generator's own reading of --dtype (the arms' dtype)
        dtype = resolve_dtype(args.dtype, torch.device('cuda' if args.device.startswith('cuda')
                                                       else 'cpu'))
    except ValueError as exc:
        p.error(f'--dtype: {exc}')
    if args.device.startswith('cuda') and args.peak_tflops is None and \
            dtype not in (torch.float16, torch.bfloat16):  # an fp32 MFU against fp16's peak
        p.error(f'--dtype {args.dtype} on CUDA: pass --peak-tflops, the device\'s peak for it '
                f'(the default {H100_PEAK_TFLOPS} is the dense fp16/bf16 one)')
    real = args.preset == 'real-size'
    args.images = args.images or (64 if real else 16)
    args.host_images = args.host_images or (16 if real else args.images)
    args.batch_size = args.batch_size or (16 if real else 8)
    args.source_size = args.source_size or (384 if real else 64)
    if not args.dry_run:
        from genview_mm.utils.dist import resolve_device
        try:
            resolve_device(args.device)
        except ValueError as exc:
            p.error(str(exc))
    return args


def _csv(values) -> str:
    return ','.join(str(v) for v in values)


def dry_run(args) -> int:
    from unclip_real_size import build_real_size, param_count
    if args.preset != 'real-size':
        print('--dry-run builds the real-size preset: add --preset real-size', file=sys.stderr)
        return 2
    pipe = build_real_size('meta')
    u, v, ie, te = pipe.unet, pipe.vae, pipe.image_encoder, pipe.text_encoder
    print(f'unet blocks={_csv(u.config.block_out_channels)} '
          f'cross_attention_dim={u.config.cross_attention_dim} '
          f'class_embed_input={u.config.projection_class_embeddings_input_dim} '
          f'sample_size={u.config.sample_size} params={param_count(u)}')
    print(f'vae blocks={_csv(v.config.block_out_channels)} '
          f'scaling_factor={v.config.scaling_factor} params={param_count(v)}')
    print(f'image_encoder hidden={ie.config.hidden_size} layers={ie.config.num_hidden_layers} '
          f'patch={ie.config.patch_size} projection={ie.config.projection_dim} '
          f'params={param_count(ie)}')
    print(f'text_encoder hidden={te.config.hidden_size} layers={te.config.num_hidden_layers} '
          f'params={param_count(te)}')
    print(f'generated size={u.config.sample_size * pipe.vae_scale_factor}')
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.dry_run:
        return dry_run(args)
    tmp = tempfile.mkdtemp(prefix='bench_gen_')  # sources, views: removed whatever happens
    try:
        return measure(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(args, tmp: str) -> int:
    """Both arms, the host-time pass and the PSNR reference; each line printed as soon as it is
    measured (a run cut short by a timeout keeps what it had); work files in ``tmp``."""
    import torch
    from diffusers.utils import logging as diffusers_logging
    if args.threads:
        torch.set_num_threads(args.threads)
    diffusers_logging.set_verbosity_error()  # dtype-cast notes of the copied pipelines
    diffusers_logging.disable_progress_bar()
    from bench_setup import prepare
    from generator_arms import (
        HostClock,
        constant_images,
        cpu_matmul_tflops,
        mean_psnr,
        official_arm,
        peak_memory_mib,
        pipeline_bytes,
        project_arm,
        project_levels,
        reset_peak_memory,
    )
    device = torch.device(args.device)
    s = prepare(args, tmp, device)  # pipelines, generator, sources, levels, seeds, FLOPs
    peak = args.peak_tflops or (H100_PEAK_TFLOPS if device.type == 'cuda'
                                else cpu_matmul_tflops(dtype=getattr(torch, s.dtype)))
    print(f'preset={args.preset} device={device} dtype={s.dtype} images={len(s.keys)} '
          f'batch={args.batch_size} steps={args.steps} output={s.output} '
          f'compile={args.compile} compile_s={s.compile_s:.1f} weight_scale={s.weight_scale:g} '
          f'gflop_per_image={s.flops / 1e9:.3f} peak_tflops={peak:.3f}', flush=True)
    # both pipelines stay on the device: each arm's peak leaves out the other's weights
    other_mib = {'O': pipeline_bytes(s.pipe_p) / 2 ** 20, 'P': pipeline_bytes(s.pipe_o) / 2 ** 20}
    results = {}
    for arm in ('O', 'P'):
        reset_peak_memory(device)
        out = osp.join(tmp, arm)
        t0 = time.perf_counter()
        if arm == 'O':
            official_arm(s.pipe_o, s.paths, s.keys, s.levels, s.seeds, out, args.steps,
                         args.guidance, args.output_size)
        else:
            run, calls = s.gen._run, []  # samples of each pipeline call, padding included

            def counted(e, lv, sd, **kw):  # a call that ran out of memory is not counted
                out = run(e, lv, sd, **kw)
                calls.append(len(sd))
                return out
            s.gen._run = counted
            try:
                stats = project_arm(s.gen, s.items, out, args.batch_size)
            finally:
                del s.gen._run  # the method again
            if stats['ok'] != len(s.keys):
                raise RuntimeError(f'arm P wrote {stats["ok"]} of {len(s.keys)} views: '
                                   f'{stats.get("reasons")}')
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        wall = time.perf_counter() - t0
        mem = peak_memory_mib(device) - (other_mib[arm] if device.type == 'cuda' else 0)
        r = results[arm] = dict(images_per_s=len(s.keys) / wall)
        print(f'arm={arm} images_per_s={r["images_per_s"]:.3f} '
              f'ms_per_image={1e3 * wall / len(s.keys):.1f} '
              f'mfu_pct={100 * s.flops * r["images_per_s"] / (peak * 1e12):.2f} '
              f'peak_mem_mib={mem:.0f}', flush=True)
    ratio = results['P']['images_per_s'] / results['O']['images_per_s']
    got = project_levels(osp.join(tmp, 'P'))  # the levels P generated at, from its rows
    same = [k for k in s.keys if got.get(k) == s.levels[k]]  # a level flipped at a bin edge
    pairs = s.psnr_pairs(osp.join(tmp, 'O'), osp.join(tmp, 'P'), same)
    hist = sorted(Counter(got.values()).items())
    print(f'ratio_p_over_o={ratio:.2f} psnr_p_to_o_db={mean_psnr(pairs):.2f} '
          f'level_mismatches={len(s.keys) - len(same)} '
          f'constant_outputs_o={constant_images([o for o, _ in pairs])} '
          f'constant_outputs_p={constant_images([p for _, p in pairs])} '
          f'p_levels={",".join(f"{lv}:{n}" for lv, n in hist)} p_pipeline_calls={len(calls)} '
          f'p_padded_rows={sum(calls) - len(got)}',
          flush=True)
    for arm in ('O', 'P'):
        host, host_wall = s.host_pass(arm, HostClock(device))
        print(f'host arm={arm} host_ms_per_image={host:.2f} '
              f'host_wall_ms_per_image={host_wall:.2f}', flush=True)
    ref_db, n = s.psnr_reference()
    first = [k for k in s.keys[:n] if k in same]
    half = {'bfloat16': 'bf16'}.get(s.dtype, 'fp16')  # the reference's other half: fp32
    print(f'psnr_o_{half}_to_o_fp32_db={ref_db:.2f} psnr_p_to_o_same_images_db='
          f'{mean_psnr(s.psnr_pairs(osp.join(tmp, "O"), osp.join(tmp, "P"), first)):.2f} '
          f'psnr_images={n}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
