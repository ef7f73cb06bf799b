r"""Cost of GenView's pair scorer, alone (``--mode scorer``) or in a training step (``--mode step``,
the default: the upstream step vs the GenView steps, in one run).

    # the scorer alone: official path (O) vs the optimised scorer (P) at 32 and 512 pairs, the
    # real ConvNeXt-Base-W with random weights: pairs/s, ratio P/O, MFU, errors vs float32
    python tools/benchmarks/bench_scorer.py --mode scorer --preset gpu
    # the same at CPU size (ConvNeXt-Atto at 224 px, 2 and 8 pairs, bf16 autocast)
    python tools/benchmarks/bench_scorer.py --mode scorer --preset cpu --threads 1 --clock process
    # the opt-in torch.compile of the scorer: its speed and its errors beside O's
    python tools/benchmarks/bench_scorer.py --mode scorer --preset gpu --set compile=True
    # steps on CPU: ResNet-18 (width 32) MoCo v2 at 64 px, batch 16, a small random CLIP scorer
    python tools/benchmarks/bench_scorer.py --preset cpu
    # steps on a GPU: the real config of the method (MoCo v2: ResNet-50, batch 32, fp32, SGD;
    # MoCo v3: batch 512, AMP, LARS; both 224 px), with the paper's ConvNeXt-Base-W scorer and
    # CLIP ViT-B/32 (random weights of the real architectures: timings do not depend on them)
    python tools/benchmarks/bench_scorer.py --preset gpu --method MoCoV3
    # the same real models on a CPU, at a CPU-sized batch; CPU seconds of one thread are
    # barely disturbed by other jobs on a shared machine
    python tools/benchmarks/bench_scorer.py --preset gpu --device cpu --batch 4 --threads 1 \
        --clock process
    # FLOPs of the same steps (no timing)
    python tools/benchmarks/bench_scorer.py --preset gpu --method MoCoV3 --flops

In step mode the baseline is the upstream algorithm (``MoCo`` / ``MoCoV3``); ``genview[NAME]`` is
its ``GenView*`` variant with the project's scorer NAME and ``genview[NAME-official]`` the same
with the scorer run the official way (two eager calls, float32 weights, NCHW), all from the same
config and initial weights. After warm-up, steps go round-robin (baseline, genview[a], ...) so
that load on a shared machine affects all alike. Prints ms/step (median and min) and each overhead
ratio GenView / baseline; on a GPU also the peak memory of each step. Not counted: data loading,
DDP and SyncBN (one process).
"""
import argparse
import ast
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from device_peak import H100_PEAK_TFLOPS  # noqa: E402  (the MFU reference on CUDA)

SCORERS = ('convnext', 'vit-b32', 'tiny-clip')
DEFAULT_SCORERS = {'cpu': ['tiny-clip'], 'gpu': ['convnext', 'vit-b32']}


def scorer_option(text: str) -> tuple:
    """``KEY=VALUE`` -> (key, Python literal or string), for ``--set``."""
    key, sep, value = text.partition('=')
    if not sep or not key:
        raise argparse.ArgumentTypeError(f'expected KEY=VALUE, got {text!r}')
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--mode', choices=['step', 'scorer'], default='step',
                    help='step: training steps with and without the scorer; scorer: the scorer '
                    'alone, official path against the optimised one')
    ap.add_argument('--preset', choices=['cpu', 'gpu'], default='cpu',
                    help='cpu: tiny models; gpu: the real config of --method / the real scorer')
    ap.add_argument('--method', choices=['MoCo', 'MoCoV3'], default='MoCo',
                    help='MoCo (v2) or MoCoV3')
    ap.add_argument('--scorer', nargs='+', choices=SCORERS, dest='scorers',
                    help='step mode: scorer(s) to time against the baseline; convnext is the '
                    'paper\'s (default: tiny-clip for --preset cpu, convnext vit-b32 for gpu)')
    ap.add_argument('--impl', nargs='+', choices=['official', 'optimised'],
                    default=['official', 'optimised'],
                    help='step mode: the GenView arms of each scorer (official-style, optimised)')
    ap.add_argument('--set', nargs='+', type=scorer_option, default=[], metavar='KEY=VALUE',
                    help='PairQualityScorer arguments of the optimised arm, e.g. compile=True')
    ap.add_argument('--batch', type=int, help='step mode: override the per-GPU batch size')
    ap.add_argument('--steps', type=int, default=6, help='step mode: timed steps per model')
    ap.add_argument('--warmup', type=int, default=2, help='untimed steps (calls) per arm first')
    ap.add_argument('--pairs', nargs='+', type=int,
                    help='scorer mode: pairs per call (default: 32 512 gpu, 2 8 cpu)')
    ap.add_argument('--scorer-model', help='scorer mode: timm model (default: '
                    'convnext_base.clip_laion2b_augreg for gpu, convnext_atto for cpu)')
    ap.add_argument('--size', type=int, help='scorer mode: input side (default 224)')
    ap.add_argument('--amp-dtype', choices=['float16', 'bfloat16'],
                    help='scorer mode: autocast dtype of O and P (float16 on CUDA, else bfloat16)')
    ap.add_argument('--blocks', type=int, default=5, help='scorer mode: timed blocks per arm')
    ap.add_argument('--reps', type=int, default=3, help='scorer mode: calls per timed block')
    ap.add_argument('--peak-tflops', type=float, help='device peak for the MFU (default on '
                    f'CUDA: {H100_PEAK_TFLOPS}, H100/H200 dense fp16/bf16)')
    ap.add_argument('--device', help='cuda when available, else cpu')
    ap.add_argument('--threads', type=int, help='torch CPU threads (default: torch\'s own)')
    ap.add_argument('--cudnn-benchmark', action='store_true',
                    help='let cuDNN pick conv algorithms (the configs\' env_cfg leaves it off)')
    ap.add_argument('--clock', choices=['wall', 'process'], default='wall',
                    help='wall: elapsed time; process: CPU seconds of this process (CPU only; '
                    'with --threads 1 it hardly depends on other jobs on the machine)')
    ap.add_argument('--flops', action='store_true', help='count FLOPs instead of timing')
    args = ap.parse_args(argv)
    if args.batch is not None and args.batch < 2:
        ap.error('--batch must be at least 2 (BatchNorm in the necks)')
    if args.steps < 1 or args.warmup < 0:
        ap.error('--steps must be >= 1 and --warmup >= 0')
    if args.blocks < 1 or args.reps < 1 or any(n < 1 for n in args.pairs or []):
        ap.error('--blocks, --reps and --pairs must be at least 1')
    if args.clock == 'process' and args.device is None:
        args.device = 'cpu'  # the documented CPU commands, on a machine with a GPU too
    if args.clock == 'process' and args.device != 'cpu':
        ap.error('--clock process needs --device cpu (GPU work is not process CPU time)')
    from genview_mm.utils.dist import resolve_device
    try:
        args.device = resolve_device(args.device)
    except ValueError as exc:
        ap.error(str(exc))
    args.scorers = args.scorers or DEFAULT_SCORERS[args.preset]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    import logging

    import torch
    from mmengine.logging import MMLogger

    import genview_mm  # noqa: F401  (compat fixes and registration first)
    # no per-parameter lines from the optimizer constructor (LARS skips the frozen momentum
    # encoder's parameters with a warning each)
    MMLogger.get_current_instance().setLevel(
        logging.ERROR if args.mode == 'step' else logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    (main_scorer if args.mode == 'scorer' else main_step)(args, args.device)


def main_step(args: argparse.Namespace, device: str) -> None:
    """``--mode step``: upstream and GenView training steps, alternating."""
    import tempfile

    import scorer_step as bench
    import torch
    from mmengine.logging import MessageHub
    setup = (bench.tiny_setup(args.method, args.batch or 16) if args.preset == 'cpu' else
             bench.real_setup(args.method, args.batch))
    queue = setup['model'].get('queue_len')
    if queue and queue % setup['batch']:
        raise SystemExit(f'MoCo v2\'s queue ({queue}) must be a multiple of the batch size; '
                         f'--batch {setup["batch"]} is not a divisor (use 2, 4, 8, ...)')
    amp = setup['optim_wrapper']['type'] == 'AmpOptimWrapper' and device.startswith('cuda')
    torch.backends.cudnn.benchmark = args.cudnn_benchmark or setup['cudnn_benchmark']
    # MoCo v3's cosine momentum reads the run length
    MessageHub.get_current_instance().update_info('max_iters', 10 * (args.warmup + args.steps))
    with tempfile.TemporaryDirectory() as tmp:
        runs = bench.build_runs(setup, args.scorers, device, amp, tmp, tuple(args.impl),
                                dict(args.set))
    data = bench.fake_batch(setup['batch'], setup['size'], device)
    optim = setup['optim_wrapper']['optimizer']['type']
    print(f'preset={args.preset} method={setup["model"]["type"]} batch={setup["batch"]} '
          f'size={setup["size"]} device={device} amp={amp} optim={optim} '
          f'cudnn_benchmark={torch.backends.cudnn.benchmark} threads={torch.get_num_threads()} '
          f'clock={args.clock} torch={torch.__version__}'
          + (f' gpu={torch.cuda.get_device_name()}' if device.startswith('cuda') else ''))
    if args.flops:
        flops = {k: bench.step_flops(m, o, data) / 1e9 for k, (m, o) in runs.items()}
        print('\n'.join(bench.ratio_lines(flops, 'GFLOPs/step', '.6g')))
        return
    times, peaks = bench.interleaved_times(runs, data, device, args.warmup, args.steps,
                                           args.clock)
    print('\n'.join(bench.summary(times)))
    if device.startswith('cuda'):
        print('peak GiB/step ' + ' '.join(f'{k}={v:.2f}' for k, v in peaks.items()))
    for key, (model, _) in runs.items():
        settings = model.scorer.speed_settings() if key != 'baseline' else None
        if settings is not None and not key.endswith('-official]'):
            print(f'{key} scorer: ' + ' '.join(f'{k}={v}' for k, v in settings.items()))


def main_scorer(args: argparse.Namespace, device: str) -> None:
    """``--mode scorer``: O against P at each batch size, with errors against float32."""
    import tempfile

    import scorer_speed as speed
    import torch
    cuda = device.startswith('cuda')
    preset = speed.PRESETS[args.preset]
    model, size = args.scorer_model or preset['model'], args.size or preset['size']
    amp = getattr(torch, args.amp_dtype or ('float16' if cuda else 'bfloat16'))
    # on CUDA the scorer's defaults ('auto'); elsewhere the same switches, asked for
    options = {} if cuda else dict(autocast=True, channels_last=True)
    options.update(dict(args.set))
    peak = args.peak_tflops or (H100_PEAK_TFLOPS if cuda else None)
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    encoder = speed.build_encoder(model, size, device)
    flops = speed.flops_per_image(encoder, device)
    print(f'mode=scorer model={model} size={size} device={device} amp={amp} '
          f'GFLOP/image={flops / 1e9:.4g} peak_tflops={peak} clock={args.clock} '
          f'threads={torch.get_num_threads()} torch={torch.__version__}'
          + (f' gpu={torch.cuda.get_device_name()}' if cuda else ''))
    for pairs in args.pairs or preset['pairs']:
        with tempfile.TemporaryDirectory() as tmp:
            arms = speed.build_arms(encoder, tmp, amp, options)
        views = speed.fake_views(pairs, size, device)
        result = speed.measure(arms, views, device, args.clock, args.warmup, args.blocks,
                               args.reps)
        plan = arms['scorer'].speed_settings()
        print(f'pairs={pairs} P: ' + ' '.join(f'{k}={v}' for k, v in plan.items()))
        print('\n'.join(speed.report(pairs, result, args.reps, flops, peak)))


if __name__ == '__main__':
    main()
