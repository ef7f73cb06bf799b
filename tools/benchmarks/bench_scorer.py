"""Training-step cost of GenView's pair scorer: the upstream step vs the GenView step, in one run.

    # CPU: ResNet-18 (width 32) MoCo v2 at 64 px, batch 16, a small random CLIP scorer (default)
    python tools/benchmarks/bench_scorer.py --preset cpu
    # GPU: the real config of the method (MoCo v2: ResNet-50, batch 32, fp32, SGD; MoCo v3:
    # batch 512, AMP, LARS; both 224 px), with the paper's ConvNeXt-Base-W scorer and CLIP
    # ViT-B/32 (random weights of the real architectures: timings do not depend on them)
    python tools/benchmarks/bench_scorer.py --preset gpu --method MoCoV3
    # the same real models on a CPU, at a CPU-sized batch; CPU seconds of one thread are
    # barely disturbed by other jobs on a shared machine
    python tools/benchmarks/bench_scorer.py --preset gpu --device cpu --batch 4 --threads 1 \
        --clock process
    # FLOPs of the same steps (no timing)
    python tools/benchmarks/bench_scorer.py --preset gpu --method MoCoV3 --flops

The baseline is the upstream algorithm (``MoCo`` / ``MoCoV3``); each ``genview[NAME]`` run is
its ``GenView*`` variant with scorer NAME, from the same config and initial weights. After
warm-up, steps go round-robin (baseline, genview[a], genview[b], baseline, ...) so that load on
a shared machine affects all alike. Prints ms/step (median and min) and each overhead ratio
GenView / baseline; on a GPU also the peak memory of each step. Not counted: data loading,
DDP and SyncBN (one process).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

SCORERS = ('convnext', 'vit-b32', 'tiny-clip')
DEFAULT_SCORERS = {'cpu': ['tiny-clip'], 'gpu': ['convnext', 'vit-b32']}


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--preset', choices=['cpu', 'gpu'], default='cpu',
                    help='cpu: tiny ResNet-18 model; gpu: the real config of --method')
    ap.add_argument('--method', choices=['MoCo', 'MoCoV3'], default='MoCo',
                    help='MoCo (v2) or MoCoV3')
    ap.add_argument('--scorer', nargs='+', choices=SCORERS, dest='scorers',
                    help='scorer(s) to time against the baseline; convnext is the paper\'s '
                    '(default: tiny-clip for --preset cpu, convnext vit-b32 for gpu)')
    ap.add_argument('--batch', type=int, help='override the per-GPU batch size')
    ap.add_argument('--steps', type=int, default=6, help='timed steps per model')
    ap.add_argument('--warmup', type=int, default=2, help='untimed steps per model first')
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
    if args.clock == 'process' and args.device != 'cpu':
        ap.error('--clock process needs --device cpu (GPU work is not process CPU time)')
    args.scorers = args.scorers or DEFAULT_SCORERS[args.preset]
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    import logging
    import tempfile

    import scorer_step as bench
    import torch
    from mmengine.logging import MessageHub, MMLogger

    import genview_mm  # noqa: F401  (compat fixes and registration first)
    # no per-parameter lines from the optimizer constructor (LARS skips the frozen momentum
    # encoder's parameters with a warning each)
    MMLogger.get_current_instance().setLevel(logging.ERROR)
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.threads:
        torch.set_num_threads(args.threads)
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
        runs = bench.build_runs(setup, args.scorers, device, amp, tmp)
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


if __name__ == '__main__':
    main()
