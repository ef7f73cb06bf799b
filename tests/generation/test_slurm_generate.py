"""tools/slurm_generate.sh against a stand-in ``sbatch`` (runs each array task in turn) and a
stand-in Python (records what it was asked to run): the submissions, and each task's command."""
import os
import os.path as osp
import stat
import sys

import pytest

from helpers import TOOLS, run_tool

FAKE_SBATCH = r'''#!/usr/bin/env bash
echo "sbatch $*" >> "$FAKE_LOG"
array=""
while [ $# -gt 0 ]; do
  case "$1" in
    --array=*) array="${1#--array=}";;
    -p) shift;;
    -*) ;;
    *) break;;
  esac
  shift
done
script="$1"; shift
if [ -n "$array" ]; then
  range="${array%%\%*}"
  for i in $(seq "${range%-*}" "${range#*-}"); do SLURM_ARRAY_TASK_ID=$i bash "$script" "$@"; done
  echo "77;cluster"
else
  bash "$script" "$@"
  echo 78
fi
'''
FAKE_PYTHON = r'''#!/usr/bin/env bash
{ printf 'python RANK=%s WORLD_SIZE=%s' "${RANK:-}" "${WORLD_SIZE:-}"; printf ' [%s]' "$@"; echo; \
} >> "$FAKE_LOG"
'''


def args(*words):
    return ' '.join(f'[{w}]' for w in words)


def script(path, text):
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return path


def test_job_array_submission(tmp_path):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    script(bin_dir / 'sbatch', FAKE_SBATCH)
    log = tmp_path / 'calls.log'
    env = dict(PATH=f'{bin_dir}:{os.environ["PATH"]}', FAKE_LOG=str(log),
               PYTHON=script(str(tmp_path / 'python'), FAKE_PYTHON), NTASKS='2',
               MAX_RUNNING='1')
    out = str(tmp_path / 'views dir')  # a space: arguments must stay whole
    res = run_tool('slurm_generate.sh', 'gpu', 'gv', 'train.txt', out, '--pca', 'p.pth',
                   '--data-root', 'data/in', '--batch-size', '16', env=env, timeout=60)
    assert 'submitted generation array job 77 (tasks 0-1) and merge job 78' in res.stdout
    check, *calls = log.read_text().splitlines()
    assert check == 'python RANK= WORLD_SIZE= ' + args(
        f'{TOOLS}/generate_views.py', 'train.txt', '--out-dir', out, '--pca', 'p.pth',
        '--data-root', 'data/in', '--batch-size', '16', '--rank', '0', '--world-size', '2',
        '--check-args')
    assert calls[0].startswith('sbatch --parsable -p gpu --job-name=gv --array=0-1%1 --requeue')
    task = args('-u', f'{TOOLS}/generate_views.py', '--lock-wait', '120', 'train.txt',
                '--out-dir', out, '--pca', 'p.pth', '--data-root', 'data/in', '--batch-size',
                '16')
    assert calls[1] == f'python RANK=0 WORLD_SIZE=2 {task} ' + args('--rank', '0',
                                                                    '--world-size', '2')
    assert calls[2] == f'python RANK=1 WORLD_SIZE=2 {task} ' + args('--rank', '1',
                                                                    '--world-size', '2')
    # a task that failed left the merge pending forever: Slurm now cancels it
    assert calls[3].startswith('sbatch --parsable -p gpu --job-name=gv-merge '
                               '--dependency=afterok:77 --kill-on-invalid-dep=yes ')
    assert calls[4] == 'python RANK= WORLD_SIZE= ' + args(
        '-u', f'{TOOLS}/merge_manifests.py', out, '--source', 'train.txt', '--data-root',
        'data/in', '--check-files')
    assert osp.isdir(osp.join(out, 'slurm'))
    log.write_text('')  # the --flag=value spelling reaches the merge too (it was dropped)
    run_tool('slurm_generate.sh', 'gpu', 'gv', 'cfg.py', out, '--pca', 'p.pth',
             '--dataset-key=val_dataloader.dataset', '--num-variations=2', env=env, timeout=60)
    assert log.read_text().splitlines()[5] == 'python RANK= WORLD_SIZE= ' + args(
        '-u', f'{TOOLS}/merge_manifests.py', out, '--source', 'cfg.py',
        '--dataset-key=val_dataloader.dataset', '--num-variations=2', '--check-files')
    assert ' --ntasks=1 --gres=gpu:1 --cpus-per-task=8 ' in log.read_text().splitlines()[1]
    usage = run_tool('slurm_generate.sh', 'gpu', env=env, timeout=60, returncode=2)
    assert 'usage:' in usage.stderr


def submit_host(tmp_path, **extra):
    """A login node in ``tmp_path``: the stand-in sbatch (logging to the returned file), this
    interpreter, a source folder ``src`` with an image (--check-args refuses one without) and a
    PCA file ``p.pth``; (environment, log)."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    script(bin_dir / 'sbatch', FAKE_SBATCH)
    log = tmp_path / 'calls.log'
    (tmp_path / 'src').mkdir()
    (tmp_path / 'src' / 'img.jpg').write_bytes(b'a photo')
    (tmp_path / 'p.pth').write_bytes(b'pca')
    return dict(PATH=f'{bin_dir}:{os.environ["PATH"]}', FAKE_LOG=str(log), PYTHON=sys.executable,
                **extra), log


@pytest.mark.parametrize('options, ntasks, said', [
    (['--batch-size', '4'], '2', 'the following arguments are required: --pca'),
    (['--pca', 'p.pth', '--overwrite'], '2', '--overwrite with 2 workers (a job array or '
     'torchrun) would let one delete what another already wrote: delete --out-dir once before '
     'launching instead'),
    (['--pca', 'p.pth', '--data-root'], '2', 'argument --data-root: expected one argument'),
    (['--pca', 'gone.pth'], '2', "--pca 'gone.pth' does not exist: fit one with "
     'tools/fit_foreground_pca.py'),
], ids=['no-pca', 'overwrite', 'data-root-without-value', 'pca-not-there'])
def test_bad_arguments_are_refused_before_anything_is_submitted(tmp_path, options, ntasks,
                                                               said):
    """Nothing was checked before sbatch: without --pca (or with --overwrite, refused by each
    task) the script said 'submitted' and exited 0, every array task then failed and the merge
    job waited forever on afterok; a --data-root without its value ended in 'unbound
    variable'. The tasks' arguments are checked first now (exit 2, one line, no job)."""
    env, log = submit_host(tmp_path, NTASKS=ntasks)
    run = run_tool('slurm_generate.sh', 'gpu', 'gv', 'src', 'views', *options, env=env,
                   cwd=str(tmp_path), timeout=120, returncode=2)
    assert run.stderr.splitlines()[-1] == f'generate_views.py: error: {said}'
    assert not log.exists() and not (tmp_path / 'views').exists()


def test_an_empty_out_dir_or_a_task_without_its_environment_is_one_line(tmp_path):
    """OUT_DIR '' (an unset variable) passed the check, then ``mkdir -p "$OUT_DIR/slurm"`` made
    /slurm and every task wrote into its working folder; an array task submitted with
    SBATCH_ARGS=--export=NONE ended in 'GENVIEW_NTASKS: unbound variable'."""
    env, log = submit_host(tmp_path)
    run = run_tool('slurm_generate.sh', 'gpu', 'gv', 'src', '', '--pca', 'p.pth', env=env,
                   cwd=str(tmp_path), timeout=120, returncode=2)
    assert run.stderr.splitlines()[-1] == ('generate_views.py: error: --out-dir is empty: pass '
                                           'the folder for the views')
    assert not log.exists() and sorted(os.listdir(tmp_path)) == ['bin', 'p.pth', 'src']
    for branch in ('--array-task', '--merge-task'):
        run = run_tool('slurm_generate.sh', branch, 'src', '--out-dir', 'views',
                       env=dict(SLURM_ARRAY_TASK_ID='0', PYTHON='', GENVIEW_ROOT=''),
                       cwd=str(tmp_path), timeout=60, returncode=2)
        assert run.stderr.strip() == (
            'slurm_generate.sh: the job has no PYTHON, GENVIEW_ROOT' + (
                ', GENVIEW_NTASKS' if branch == '--array-task' else '') +
            ' from its submission: keep the environment (SBATCH_ARGS without --export=NONE; '
            '--export=ALL) and submit again')
