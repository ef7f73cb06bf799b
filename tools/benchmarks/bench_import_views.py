"""Time and peak memory of tools/import_views.py on a released-style tree of tiny files.

Creates N source files and N views (train/<class>/<class>_<i>.JPEG and the same under
train_variations/) in F class folders, optionally the five official noise-level lists (absolute
paths), then runs the real tool in a child process and reports its wall time and peak RSS, next
to the peak RSS of a child that only imports the tool's package (the fixed cost of Python, NumPy
and genview_mm). With --index it also loads the written manifest with ManifestIndex (what every
training process does) and reports that too.

    python tools/benchmarks/bench_import_views.py [--num 100000] [--folders 1000] [--lists]
"""
import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
import tempfile
import time

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LEVELS = (0, 100, 200, 300, 400)


def make_tree(root: str, num: int, folders: int, lists: bool) -> None:
    """Empty source files and one-byte views (an empty view is not imported), streamed."""
    per = -(-num // folders)
    files = [open(osp.join(root, f'fg_ratios_{lv}.txt'), 'w') for lv in LEVELS] if lists else []
    for k in range(folders):
        cls = f'n{k:08d}'
        for top in ('train', 'train_variations'):
            os.makedirs(osp.join(root, top, cls))
        for i in range(k * per, min(num, (k + 1) * per)):
            name = f'{cls}_{i}.JPEG'
            open(osp.join(root, 'train', cls, name), 'wb').close()
            with open(osp.join(root, 'train_variations', cls, name), 'wb') as f:
                f.write(b'x')
            if files:
                level = i % len(LEVELS)
                files[level].write(f'{root}/train/{cls}/{name} {LEVELS[level]}\n')
    for f in files:
        f.close()


def run_child(args) -> tuple:
    """(wall seconds, peak RSS in MiB, stdout) of one child process."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    start = time.time()
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, env=env,
                            cwd=REPO, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, ):
        raise RuntimeError(f'{args} failed ({proc.returncode}):\n{out}')
    return time.time() - start, usage.ru_maxrss / 1024, out  # ru_maxrss is in KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--num', type=int, default=100000, help='source images (and views)')
    p.add_argument('--folders', type=int, default=1000)
    p.add_argument('--lists', action='store_true', help='also write and read fg_ratios lists')
    p.add_argument('--index', action='store_true', help='also time ManifestIndex on the result')
    p.add_argument('--dir', default=None, help='work folder (default: a temporary one, removed)')
    args = p.parse_args()
    root = args.dir or tempfile.mkdtemp(prefix='bench_import_views_')
    try:
        start = time.time()
        make_tree(root, args.num, args.folders, args.lists)
        print(f'created {2 * args.num} empty files in {2 * args.folders} folders in '
              f'{time.time() - start:.1f} s')
        _, base, _ = run_child(['-c', "import sys; sys.path.insert(0, 'tools'); "
                                "import import_views; import_views.load_package()"])
        manifest = osp.join(root, 'out', 'manifest.jsonl')
        cmd = ['tools/import_views.py', osp.join(root, 'train_variations'), '--source-root',
               osp.join(root, 'train'), '--out', manifest, '--no-progress']
        if args.lists:
            cmd += ['--fg-ratios'] + [osp.join(root, f'fg_ratios_{lv}.txt') for lv in LEVELS]
        secs, peak, out = run_child(cmd)
        print(out.strip())
        print(f'import: {args.num} images, {secs:.1f} s ({args.num / secs:.0f} images/s), peak '
              f'RSS {peak:.0f} MiB (a child that only imports the package: {base:.0f} MiB), '
              f'manifest {osp.getsize(manifest) / 2**20:.0f} MiB')
        if args.index:
            code = ('import sys; from genview_mm.datasets import ManifestIndex; '
                    'print(ManifestIndex(sys.argv[1]).num_rows)')
            secs, peak, _ = run_child(['-c', code, manifest])
            import_secs, base, _ = run_child(['-c', 'import genview_mm.datasets'])
            print(f'ManifestIndex: {secs:.1f} s, peak RSS {peak:.0f} MiB (a child that only '
                  f'imports genview_mm.datasets: {import_secs:.1f} s, {base:.0f} MiB)')
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == '__main__':
    main()
