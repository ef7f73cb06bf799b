"""What ``import genview_mm`` costs next to ``import mmpretrain.models``, measured side by side.

    python tools/benchmarks/bench_import.py            # 5 rounds
    python tools/benchmarks/bench_import.py --rounds 9

Each round starts a fresh interpreter per statement, in alternating order (so load on a shared
machine affects both alike), and times the import inside it with ``time.perf_counter``. Prints
the median seconds of each, their ratio, and which optional heavy packages each import loaded
(diffusers is only imported when a generator is built; transformers arrives with
``mmengine.optim``, which every MMPretrain model and transform imports). The baseline turns off
MMPretrain's multimodal models first, as ``genview_mm.compat`` does (else it fails to import
under transformers 5).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
HEAVY = ('diffusers', 'transformers', 'timm', 'mmdet', 'skimage', 'sklearn')
# mmpretrain.models needs its multimodal models off under transformers 5 (genview_mm.compat's
# first fix); the baseline does only that, without genview_mm
STATEMENTS = {'mmpretrain.models': ('import mmpretrain.utils.dependency as d; '
                                    'd.WITH_MULTIMODAL = False; import mmpretrain.models'),
              'genview_mm': 'import genview_mm'}
PROBE = ('import json, sys, time; t = time.perf_counter(); {stmt}; '
         'print(json.dumps([time.perf_counter() - t, [m for m in {heavy!r} '
         'if m in sys.modules]]))')


def time_import(stmt: str) -> tuple:
    """(seconds, heavy packages loaded) of ``stmt`` in a fresh interpreter."""
    out = subprocess.run([sys.executable, '-c', PROBE.format(stmt=stmt, heavy=HEAVY)],
                         cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, 'PYTHONPATH': ROOT})
    seconds, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    return seconds, loaded


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rounds', type=int, default=5, help='fresh interpreters per statement')
    args = ap.parse_args(argv)
    times = {name: [] for name in STATEMENTS}
    loaded = {}
    for r in range(args.rounds):
        order = list(STATEMENTS) if r % 2 == 0 else list(reversed(STATEMENTS))
        for name in order:
            seconds, loaded[name] = time_import(STATEMENTS[name])
            times[name].append(seconds)
    med = {name: statistics.median(v) for name, v in times.items()}
    ratio = med['genview_mm'] / med['mmpretrain.models']
    for name in STATEMENTS:
        print(f'import {name:18} median {med[name]:.2f} s over {args.rounds} rounds; '
              f'loads {", ".join(loaded[name]) or "none of " + ", ".join(HEAVY)}')
    print(f'ratio genview_mm / mmpretrain.models: {ratio:.2f}')
    return dict(median=med, ratio=ratio, loaded=loaded)


if __name__ == '__main__':
    main()
