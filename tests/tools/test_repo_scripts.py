"""The repository's own scripts: tools/run_tests.sh runs what it is given; setup.py keeps
genview_mm/.mim/{configs,tools} as links to configs/ and tools/ (a build never leaves a stale
copy in the source tree); tools/bootstrap_env.sh notices a copy there instead of saying
"up to date"; the launchers refuse a bad number of processes before they start anything."""
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT, TOOLS, run_cmd
from launchers import executable, recorded, scratch_tools

pytestmark = pytest.mark.slow


def test_run_tests_sh_runs_the_path_it_is_given(tmp_path):
    (tmp_path / 'tools').mkdir()
    for name in ('run_tests.sh', '_signals.sh'):
        shutil.copy(osp.join(TOOLS, name), tmp_path / 'tools')
    executable(str(tmp_path / 'tools' / 'bootstrap_env.sh'), '#!/usr/bin/env bash\nexit 0\n')
    (tmp_path / 'venv' / 'bin').mkdir(parents=True)
    executable(str(tmp_path / 'venv' / 'bin' / 'python'),
               f'#!/usr/bin/env bash\nexec {sys.executable} "$@"\n')
    (tmp_path / 'pytest.ini').write_text('[pytest]\ntestpaths = tests\n')
    (tmp_path / 'tests').mkdir()
    (tmp_path / 'tests' / 'test_a.py').write_text('def test_a():\n    assert 1 + 1 == 2\n')
    (tmp_path / 'tests' / 'test_b.py').write_text('def test_b():\n    assert False\n')
    env = dict(GENVIEW_VENV=str(tmp_path / 'venv'))
    script = str(tmp_path / 'tools' / 'run_tests.sh')
    one = run_cmd(['bash', script, 'tests/test_a.py'], cwd=str(tmp_path), env=env)
    assert '1 passed' in one.stdout and 'test_b' not in one.output
    picked = run_cmd(['bash', script, '-k', 'test_a'], cwd=str(tmp_path), env=env)
    assert '1 passed, 1 deselected' in picked.stdout  # no path: pytest.ini's testpaths
    everything = run_cmd(['bash', script], cwd=str(tmp_path), env=env, returncode=1)
    assert '1 failed, 1 passed' in everything.stdout
    # a relative GENVIEW_VENV is the caller's, as bootstrap_env.sh reads it (run_tests.sh
    # read it from the root, after its cd: the bootstrap filled one venv, pytest ran another)
    (tmp_path / 'sub' / 'venv' / 'bin').mkdir(parents=True)
    executable(str(tmp_path / 'sub' / 'venv' / 'bin' / 'python'),
               f'#!/usr/bin/env bash\necho caller-venv\nexec {sys.executable} "$@"\n')
    mine = run_cmd(['bash', script, 'tests/test_a.py'], cwd=str(tmp_path / 'sub'),
                   env=dict(GENVIEW_VENV='venv'))
    assert mine.stdout.startswith('caller-venv\n') and '1 passed' in mine.stdout


def test_run_demo_sh_help_needs_no_bootstrap(tmp_path):
    """--help ran the bootstrap first: in a fresh clone, minutes of building .venv (torch's
    ~3 GB download) to print the options."""
    (tmp_path / 'tools').mkdir()
    for name in ('run_demo.sh', '_signals.sh', 'genview_demo.py'):
        shutil.copy(osp.join(TOOLS, name), tmp_path / 'tools')
    executable(str(tmp_path / 'tools' / 'bootstrap_env.sh'),
               '#!/usr/bin/env bash\necho bootstrapped >&2\nexit 1\n')
    run = run_cmd(['bash', str(tmp_path / 'tools' / 'run_demo.sh'), '--epochs', '2', '--help'],
                  cwd=str(tmp_path), env=dict(PYTHON=sys.executable))
    assert run.stdout.startswith('usage: genview_demo.py [-h] [--out-dir OUT_DIR]')
    assert 'bootstrapped' not in run.stderr


def scratch_repo(root) -> str:
    """setup.py and what it reads, configs/ and tools/ with one file each."""
    repo = osp.join(str(root), 'repo')
    for rel in ('setup.py', 'README.md', 'genview_mm/version.py',
                'genview_mm/utils/installation.py',
                'tools/bootstrap_env.sh', 'tools/constraints.txt'):
        os.makedirs(osp.dirname(osp.join(repo, rel)), exist_ok=True)
        shutil.copy(osp.join(ROOT, rel), osp.join(repo, rel))
    os.makedirs(osp.join(repo, 'configs'))
    with open(osp.join(repo, 'configs', 'a.py'), 'w') as f:
        f.write('x = 1\n')
    return repo


def linked_repo(root) -> str:
    """A :func:`scratch_repo` whose genview_mm/.mim/{configs,tools} link to configs/ and tools/
    (what the editable install leaves)."""
    repo = scratch_repo(root)
    mim = osp.join(repo, 'genview_mm', '.mim')
    os.makedirs(mim)
    for name in ('configs', 'tools'):
        os.symlink(osp.join('..', '..', name), osp.join(mim, name))
    return repo


def is_link_to(repo: str, name: str) -> bool:
    path = osp.join(repo, 'genview_mm', '.mim', name)
    return osp.islink(path) and os.readlink(path) == osp.join('..', '..', name)


def test_setup_py_keeps_the_links_and_replaces_a_stale_copy(tmp_path):
    repo = scratch_repo(tmp_path)
    mim = osp.join(repo, 'genview_mm', '.mim')
    os.makedirs(mim)
    os.symlink(osp.join('..', '..', 'configs'), osp.join(mim, 'configs'))
    shutil.copytree(osp.join(repo, 'tools'), osp.join(mim, 'tools'))  # a stale copy
    # any command but develop/editable_wheel (what `pip wheel .` runs) used to copy configs/
    out = subprocess.run([sys.executable, 'setup.py', '--version'], cwd=repo, text=True,
                         capture_output=True, check=True).stdout
    assert out.strip().splitlines()[-1].count('.') == 2
    assert is_link_to(repo, 'configs') and is_link_to(repo, 'tools')
    with open(osp.join(repo, 'configs', 'a.py'), 'w') as f:
        f.write('x = 2\n')  # an edit shows through the link at once
    with open(osp.join(mim, 'configs', 'a.py')) as f:
        assert f.read() == 'x = 2\n'


def test_bootstrap_notices_a_stale_copy_of_the_configs(tmp_path):
    repo = linked_repo(tmp_path)
    mim = osp.join(repo, 'genview_mm', '.mim')
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\nexit 0\n')  # "all installed"
    env = dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(tmp_path / 'cache'))
    script = osp.join(repo, 'tools', 'bootstrap_env.sh')
    first = run_cmd(['bash', script], cwd=repo, env=env)
    assert 'done' in first.stdout and (venv / '.genview_stamp').is_file()
    assert 'is up to date' in run_cmd(['bash', script], cwd=repo, env=env).stdout

    os.remove(osp.join(mim, 'configs'))
    shutil.copytree(osp.join(repo, 'configs'), osp.join(mim, 'configs'))  # what pip wheel left
    stale = run_cmd(['bash', script], cwd=repo, env=env)
    assert 'is up to date' not in stale.stdout
    assert 'genview_mm/.mim/configs is not a link to configs/' in stale.stdout
    assert '6/6 genview_mm (editable)' in stale.stdout  # reinstalled (which relinks)


def test_bootstrap_of_a_fresh_clone_calls_no_copy_stale(tmp_path):
    """A fresh clone has no genview_mm/.mim yet: it is installed, without the stale-copy line
    every first bootstrap printed."""
    repo = scratch_repo(tmp_path)
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\nexit 0\n')
    tmp = tmp_path / 'tmp'
    tmp.mkdir()
    env = dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(tmp_path / 'cache'), TMPDIR=str(tmp))
    out = run_cmd(['bash', osp.join(repo, 'tools', 'bootstrap_env.sh')], cwd=repo, env=env)
    assert '6/6 genview_mm (editable)' in out.stdout and 'not a link' not in out.stdout
    assert os.listdir(tmp) == []  # the report and the config probe's folder removed


def test_bootstrap_names_a_python_older_than_3_10(tmp_path):
    repo = scratch_repo(tmp_path)
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\ncase "$*" in '
               '*"version_info < (3, 10)"*) exit 1;; *python_version*) echo 3.9.18;; esac\n'
               'exit 0\n')
    env = dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(tmp_path / 'cache'))
    out = run_cmd(['bash', osp.join(repo, 'tools', 'bootstrap_env.sh')], cwd=repo, env=env,
                  returncode=1)
    assert '[bootstrap] FAILED at step: python version' in out.stderr
    assert f'{venv} has Python 3.9.18; the pinned torch needs 3.10 or newer' in out.stderr
    assert '2/6' not in out.stdout


def test_bootstrap_repoints_a_venv_another_checkout_installed_into(tmp_path):
    """Two checkouts sharing one venv (GENVIEW_VENV): the venv served the last one installed, so
    this checkout's tools run from elsewhere and its genview_mm:: configs were the other's, while
    the bootstrap said 'up to date'. It now installs this checkout again (and only it)."""
    repo = linked_repo(tmp_path)
    venv, log = tmp_path / 'venv', tmp_path / 'pip.log'
    (venv / 'bin').mkdir(parents=True)
    served = tmp_path / 'served'
    served.write_text(osp.join(os.path.realpath(repo), 'genview_mm'))
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\n'  # "all installed"
               f'case "$*" in *genview_mm.__file__*) cat {served} || exit 1;; '
               f'*" -m pip "*|"-m pip "*) echo "$*" >> {log};; esac\nexit 0\n')
    env = dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(tmp_path / 'cache'))
    script = osp.join(repo, 'tools', 'bootstrap_env.sh')
    run_cmd(['bash', script], cwd=repo, env=env)
    log.write_text('')
    same = run_cmd(['bash', script], cwd=repo, env=env).stdout
    assert 'is up to date' in same and 'installing this checkout' not in same
    assert log.read_text() == ''
    served.write_text('/elsewhere/genview_mm')  # another checkout installed itself since
    other = run_cmd(['bash', script], cwd=repo, env=env).stdout
    assert f'{venv} serves genview_mm from /elsewhere/genview_mm: installing this checkout' \
        in other and 'is up to date' in other
    assert log.read_text().split() == ['-m', 'pip', '--disable-pip-version-check', 'install',
                                       '-q', '--no-deps', '--no-build-isolation', '-e', repo]
    log.write_text('')
    served.unlink()  # the other checkout was deleted: importing genview_mm from / fails
    gone = run_cmd(['bash', script], cwd=repo, env=env).stdout
    assert f'{venv} serves genview_mm from a checkout that is gone: installing this ' \
        'checkout' in gone and log.read_text().split()[-1] == repo


def test_bootstrap_on_a_gpu_node_replaces_a_cpu_build_of_mmcv(tmp_path):
    """A venv bootstrapped on a CPU node, bootstrapped again on a GPU node (as the installation
    page says to do), was 'up to date' (the stamp did not see the GPU), and with FORCE_CUDA=1
    step 4 still kept the installed mmcv (right version, no CUDA ops). Now a visible GPU changes
    the stamp and step 4 replaces the CPU build with the cached CUDA wheel."""
    repo = linked_repo(tmp_path)
    venv, log, gpu = tmp_path / 'venv', tmp_path / 'pip.log', tmp_path / 'gpu'
    (venv / 'bin').mkdir(parents=True)
    served = osp.join(os.path.realpath(repo), 'genview_mm')
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\n'  # torch sees a GPU iff
               f'case "$*" in *genview_mm.__file__*) echo {served};; '  # the file gpu exists
               f'*cuda.is_available*) [ -f {gpu} ] && echo 1 || echo 0;; '
               '*torch.version.cuda*) echo 12.1;; *__version__.split*) echo 2.14.1;; '
               '*version_info*) echo cp311;; '
               f'*get_compiling_cuda_version*) [ ! -f {gpu} ];; '  # mmcv: the CPU build
               f'*" -m pip "*|"-m pip "*) echo "$*" >> {log};; esac\n')
    key = f'mmcv-2.1.0-torch2.14.1-cuda12.1-cp311-{os.uname().machine}'
    wheel = tmp_path / 'cache' / 'wheels' / key / 'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl'
    wheel.parent.mkdir(parents=True)
    wheel.write_bytes(b'')
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    env = dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(tmp_path / 'cache'),
               PATH=f'{bin_dir}:{os.environ["PATH"]}')
    script = osp.join(repo, 'tools', 'bootstrap_env.sh')
    cpu = run_cmd(['bash', script], cwd=repo, env=env).stdout
    assert 'replacing it' not in cpu and str(wheel) not in log.read_text()
    assert 'is up to date' in run_cmd(['bash', script], cwd=repo, env=env).stdout

    gpu.write_text('')  # the GPU node
    executable(str(bin_dir / 'nvidia-smi'), '#!/usr/bin/env bash\necho "GPU 0: NVIDIA H200"\n')
    log.write_text('')
    node = run_cmd(['bash', script], cwd=repo, env=env).stdout
    assert 'is up to date' not in node
    assert 'the installed mmcv is not mmcv 2.1.0 with cuda12.1 ops: replacing it' in node
    installs = [ln.split() for ln in log.read_text().splitlines() if str(wheel) in ln]
    assert installs == [['-m', 'pip', '--disable-pip-version-check', 'install', '-q',
                         '--force-reinstall', '--no-deps', str(wheel)]]
    assert 'is up to date' in run_cmd(['bash', script], cwd=repo, env=env).stdout


def torch_report_venv(tmp_path, repo: str, installs, more_cases: str = ''):
    """A venv in ``tmp_path`` whose python writes a ``pip --report`` of ``installs`` ((name,
    version) pairs), logs every pip call to ``pip.log`` (after ``more_cases``, bash case
    branches) and answers everything else as installed; (venv, log)."""
    venv, log = tmp_path / 'venv', tmp_path / 'pip.log'
    (venv / 'bin').mkdir(parents=True)
    report = {'install': [{'metadata': {'name': n, 'version': v}} for n, v in installs]}
    (tmp_path / 'report.json').write_text(json.dumps(report))
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\n'
               f'case "$*" in *json.load*) exec {sys.executable} "$@";; '
               f'*genview_mm.__file__*) echo {osp.join(os.path.realpath(repo), "genview_mm")};; '
               f'*--report*) echo "$*" >> {log}; prev=; for a in "$@"; do [ "$prev" != '
               f'--report ] || cp {tmp_path / "report.json"} "$a"; prev="$a"; done;; '
               + more_cases + f'*" -m pip "*|"-m pip "*) echo "$*" >> {log};; esac\nexit 0\n')
    return venv, log


def test_bootstrap_installs_torch_one_wheel_at_a_time_without_pips_cache(tmp_path):
    """A CUDA build of torch is ~3 GB of wheels that unpack to ~5.5 GB: one `pip install` held
    every wheel on disk until all were unpacked, and pip's cache a second copy (a CI machine ran
    out of disk in step 3). Step 3 now asks pip what it would install, installs that one wheel at
    a time without the cache, then checks the whole spec; a failure there names the free space."""
    repo = linked_repo(tmp_path)
    full = tmp_path / 'full'
    # the disk is full for nvidia-cublas once `full` exists
    venv, log = torch_report_venv(
        tmp_path, repo, [('torch', '2.14.1'), ('nvidia-cublas', '13.1'), ('triton', '3.8.0')],
        f'*nvidia-cublas*) echo "$*" >> {tmp_path / "pip.log"}; [ ! -f {full} ] || {{ echo '
        '"ERROR: Could not install packages due to an OSError: [Errno 28] No space left on '
        'device"; exit 1; };; ')
    env = dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(tmp_path / 'cache'),
               GENVIEW_TORCH_SPEC='torch==2.14.1 torchvision==0.29.1')
    script = osp.join(repo, 'tools', 'bootstrap_env.sh')
    run_cmd(['bash', script], cwd=repo, env=env)
    pip = [ln.split()[3:] for ln in log.read_text().splitlines()]
    start = next(i for i, args in enumerate(pip) if '--dry-run' in args)
    assert pip[start][:5] == ['install', '-q', '--no-cache-dir', '--dry-run', '--report']
    assert pip[start][6:] == ['torch==2.14.1', 'torchvision==0.29.1']
    assert pip[start + 1:start + 5] == [
        ['install', '-q', '--no-cache-dir', '--no-deps', 'torch==2.14.1'],
        ['install', '-q', '--no-cache-dir', '--no-deps', 'nvidia-cublas==13.1'],
        ['install', '-q', '--no-cache-dir', '--no-deps', 'triton==3.8.0'],
        ['install', '-q', '--no-cache-dir', 'torch==2.14.1', 'torchvision==0.29.1']]

    full.write_text('')
    (venv / '.genview_stamp').unlink()
    failed = run_cmd(['bash', script], cwd=repo, env=env, returncode=1)
    assert 'No space left on device' in failed.output
    assert '[bootstrap] FAILED at step: torch' in failed.stderr
    assert re.search(rf'takes ~5.5 GB in {re.escape(str(venv))} \(\d+\.\d GB free there\)',
                     failed.stderr)
    assert '5/6' not in failed.stdout  # stopped at the wheel that did not fit


def test_bootstrap_passes_the_torch_specs_options_to_every_wheel(tmp_path):
    """An index in GENVIEW_TORCH_SPEC (a CPU or CUDA build) reached the dry run only: the
    one-wheel installs looked ``torch==2.14.1+cpu`` up on PyPI and failed."""
    repo = linked_repo(tmp_path)
    venv, log = torch_report_venv(tmp_path, repo, [('torch', '2.14.1+cpu')])
    spec = ('--index-url https://download.pytorch.org/whl/cpu --pre --proxy http://p:3128 '
            '--timeout=60 torch==2.14.1')
    env = dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(tmp_path / 'cache'),
               GENVIEW_TORCH_SPEC=spec)
    run_cmd(['bash', osp.join(repo, 'tools', 'bootstrap_env.sh')], cwd=repo, env=env)
    pip = [ln.split()[3:] for ln in log.read_text().splitlines()]
    start = next(i for i, args in enumerate(pip) if '--dry-run' in args)
    assert pip[start + 1] == ['install', '-q', '--no-cache-dir', '--no-deps', '--index-url',
                              'https://download.pytorch.org/whl/cpu', '--pre', '--proxy',
                              'http://p:3128', '--timeout=60', 'torch==2.14.1+cpu']
    assert pip[start + 2] == ['install', '-q', '--no-cache-dir'] + spec.split()


def test_bootstrap_mends_a_venv_left_without_pip(tmp_path):
    """A venv whose creation stopped before pip (Debian without python3-venv, or Ctrl-C) has
    bin/python: every rerun failed at 'build tools' with a network hint until the user deleted
    it. The bootstrap adds pip with ensurepip, or names the package and the folder."""
    repo = linked_repo(tmp_path)
    venv, log, has_pip = tmp_path / 'venv', tmp_path / 'pip.log', tmp_path / 'has_pip'
    (venv / 'bin').mkdir(parents=True)
    ensurepip_ok = tmp_path / 'ensurepip_ok'
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\n'
               f'case "$*" in *genview_mm.__file__*) echo '
               f'{osp.join(os.path.realpath(repo), "genview_mm")};; '
               f'"-m pip --version") [ -f {has_pip} ] || exit 1;; '
               f'"-m ensurepip --upgrade") echo "$*" >> {log}; [ -f {ensurepip_ok} ] && '
               f'touch {has_pip} || exit 1;; '
               f'*" -m pip "*|"-m pip "*) [ -f {has_pip} ] || exit 1; echo "$*" >> {log};; '
               'esac\nexit 0\n')
    env = dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(tmp_path / 'cache'))
    script = osp.join(repo, 'tools', 'bootstrap_env.sh')
    broken = run_cmd(['bash', script], cwd=repo, env=env, returncode=1)
    assert '[bootstrap] FAILED at step: venv pip' in broken.stderr
    assert f'install python3-venv (Debian: apt-get install python3-venv), or delete {venv}' \
        in broken.stderr
    ensurepip_ok.write_text('')  # python3-venv installed since
    mended = run_cmd(['bash', script], cwd=repo, env=env)
    assert f'{venv} has no pip (its creation stopped early?): adding it with ensurepip' \
        in mended.stdout and 'done' in mended.stdout
    assert any('--upgrade pip' in ln for ln in log.read_text().splitlines())


def test_launchers_use_the_bootstrapped_venv(tmp_path):
    """``GENVIEW_VENV`` (bootstrap_env.sh's venv) is the launchers' interpreter too: the demo's
    dist_train.sh stage fell back to python3 without torch."""
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\nexit 0\n')
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHON', 'VIRTUAL_ENV', 'CONDA_PREFIX')}
    script = f'source {osp.join(TOOLS, "_python.sh")} && echo "$PYTHON"'
    picked = subprocess.run(['bash', '-c', script], env=dict(env, GENVIEW_VENV=str(venv)),
                            capture_output=True, text=True, check=True).stdout.strip()
    assert picked == str(venv / 'bin' / 'python')


@pytest.mark.parametrize('has_stack', [True, False])
def test_an_active_env_without_the_stack_does_not_hide_the_venv(tmp_path, has_stack):
    """Conda's base env is active by default (CONDA_PREFIX set): its ``python``, without
    torch or mmengine, was picked over the bootstrapped venv, and every launcher failed on an
    import. An active env is used when it has mmengine."""
    venv, bin_dir = tmp_path / 'venv', tmp_path / 'conda' / 'bin'
    (venv / 'bin').mkdir(parents=True)
    bin_dir.mkdir(parents=True)
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\nexit 0\n')
    executable(str(bin_dir / 'python'), f'#!/usr/bin/env bash\nexit {0 if has_stack else 1}\n')
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHON', 'VIRTUAL_ENV', 'CONDA_PREFIX')}
    env.update(GENVIEW_VENV=str(venv), CONDA_PREFIX=str(tmp_path / 'conda'),
               PATH=f'{bin_dir}:{env["PATH"]}')
    script = f'source {osp.join(TOOLS, "_python.sh")} && echo "$PYTHON"'
    picked = subprocess.run(['bash', '-c', script], env=env, capture_output=True, text=True,
                            check=True).stdout.strip()
    assert picked == ('python' if has_stack else str(venv / 'bin' / 'python'))


def test_no_python_with_the_stack_is_one_line_naming_the_fix(tmp_path):
    """No active env, no venv and a python3 without mmengine: the launcher ran python3, whose
    first import (torch) failed in a traceback naming no fix."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    executable(str(bin_dir / 'python3'), '#!/usr/bin/env bash\nexit 1\n')  # no mmengine
    env = {k: v for k, v in os.environ.items()
           if k not in ('PYTHON', 'VIRTUAL_ENV', 'CONDA_PREFIX')}
    env.update(GENVIEW_VENV=str(tmp_path / 'none'), PATH=f'{bin_dir}:{env["PATH"]}')
    script = f'source {osp.join(TOOLS, "_python.sh")} && echo "picked $PYTHON"'
    out = subprocess.run(['bash', '-c', script], env=env, capture_output=True, text=True)
    assert out.returncode == 2 and out.stdout == ''
    assert out.stderr == (
        "bash: no Python with genview_mm's stack (mmengine) found: neither an active env, "
        f"{tmp_path / 'none'} nor python3 has it; run bash {TOOLS}/bootstrap_env.sh (it makes "
        f"{tmp_path / 'none'}), or set PYTHON=/path/to/python\n")
    # an installed copy (no setup.py above its tools/): no bootstrap, no venv of its own named
    installed = tmp_path / 'site' / 'genview_mm' / '.mim' / 'tools'
    installed.mkdir(parents=True)
    shutil.copy(osp.join(TOOLS, '_python.sh'), str(installed))
    out = subprocess.run(['bash', '-c', f'source {installed}/_python.sh'],
                         env={k: v for k, v in env.items() if k != 'GENVIEW_VENV'},
                         capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr == (
        "bash: no Python with genview_mm's stack (mmengine) found: neither an active env nor "
        'python3 has it; activate the env genview_mm is installed in, or set '
        'PYTHON=/path/to/python\n')
    executable(str(bin_dir / 'python3'), '#!/usr/bin/env bash\nexit 0\n')  # it has the stack
    out = subprocess.run(['bash', '-c', script], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == 'picked python3\n'


# script, arguments, extra environment, the one line it must print (after "<script>: ")
BAD_COUNTS = [
    ('dist_train.sh', ['8', 'cfg.py'], {}, "GPUS must be a whole number >= 1, not 'cfg.py'"),
    ('dist_train.sh', ['cfg.py', '0'], {}, "GPUS must be a whole number >= 1, not '0'"),
    ('dist_test.sh', ['cfg.py', 'ckpt.pth', '2x'], {}, "GPUS must be a whole number >= 1, "
     "not '2x'"),
    ('dist_train.sh', ['cfg.py', '2'], dict(NNODES='0'),
     "NNODES must be a whole number >= 1, not '0'"),
    ('dist_test.sh', ['cfg.py', 'ckpt.pth', '2'], dict(NNODES='two'),
     "NNODES must be a whole number >= 1, not 'two'"),
    ('dist_train.sh', ['cfg.py', '2'], dict(NODE_RANK='-1'),
     "NODE_RANK must be a whole number >= 0, not '-1'"),
    ('dist_train.sh', ['cfg.py', '2'], dict(PORT='70000'),
     "PORT must be a TCP port, 1 to 65535, not '70000'"),
    ('slurm_train.sh', ['part', 'job', 'cfg.py', 'work'], dict(GPUS='eight'),
     "GPUS must be a whole number >= 1, not 'eight'"),
    ('slurm_train.sh', ['part', 'job', 'cfg.py', 'work'], dict(GPUS_PER_NODE='0'),
     "GPUS_PER_NODE must be a whole number >= 1, not '0'"),
    ('slurm_test.sh', ['part', 'job', 'cfg.py', 'ckpt.pth'], dict(CPUS_PER_TASK='-5'),
     "CPUS_PER_TASK must be a whole number >= 1, not '-5'"),
    ('slurm_generate.sh', ['part', 'job', 'src', 'views', '--pca', 'p.pth'], dict(NTASKS='0'),
     "NTASKS must be a whole number >= 1, not '0'"),
    ('slurm_generate.sh', ['part', 'job', 'src', 'views', '--pca', 'p.pth'], dict(NTASKS='abc'),
     "NTASKS must be a whole number >= 1, not 'abc'"),
    ('slurm_generate.sh', ['part', 'job', 'src', 'views', '--pca', 'p.pth'],
     dict(MAX_RUNNING='08'), "MAX_RUNNING must be a whole number >= 1, not '08'"),
]


@pytest.mark.parametrize('script, args, env, message', BAD_COUNTS,
                         ids=[s + ':' + m.split()[0] + '=' + m.split("'")[1]
                              for s, _, _, m in BAD_COUNTS])
def test_launchers_refuse_a_bad_count_before_starting_anything(tmp_path, script, args, env,
                                                              message):
    """GPUS swapped with CONFIG or 0 reached torchrun (a traceback), GPUS=eight reached srun,
    NTASKS=0 submitted a Slurm array '0--1' (NTASKS=abc: 'unbound variable')."""
    stand_ins = scratch_tools(str(tmp_path), script)
    for name in ('python', 'srun', 'sbatch'):  # record that they ran, and end at once
        executable(str(tmp_path / 'bin' / name), '#!/usr/bin/env bash\necho $$ >> "$PIDS"\n')
    run = run_cmd(['bash', str(tmp_path / 'tools' / script), *args], cwd=str(tmp_path),
                  env=dict(stand_ins, **env), returncode=2)
    assert run.stdout == '' and run.stderr.count('\n') == 1
    assert run.stderr.startswith(f'{script}: {message}; usage: ')
    assert recorded(stand_ins['PIDS']) == []  # no preflight, torchrun, srun or sbatch
    assert not (tmp_path / 'views').exists()


def refused_up_front(cmd, env, pids: str, said: str, cwd: str) -> None:
    """``cmd`` exits 2 with one line starting ``said``, before any preflight or torchrun."""
    run = run_cmd(cmd, cwd=cwd, env=env, returncode=2)
    assert run.stdout == '' and run.stderr.count('\n') == 1
    assert run.stderr.startswith(said), run.stderr
    assert recorded(pids) == []  # no preflight, no torchrun


@pytest.mark.parametrize('script, args', [('dist_train.sh', ['cfg.py', '2']),
                                          ('dist_test.sh', ['cfg.py', 'ckpt.pth', '2'])])
def test_torchrun_launchers_refuse_a_node_rank_past_the_nodes(tmp_path, script, args):
    """NODE_RANK=1 without NNODES (the second node's command with NNODES forgotten: it is 1 by
    default), or NODE_RANK=NNODES (ranks counted from 1), started torchrun, which waited
    silently, forever, for nodes that never came. Now one line and exit 2 before anything
    starts; ranks 0 to NNODES-1 reach torchrun with the given NNODES, NODE_RANK and PORT."""
    stand_ins = scratch_tools(str(tmp_path), script)
    executable(str(tmp_path / 'bin' / 'python'), '#!/usr/bin/env bash\necho "$*" >> "$PIDS"\n')
    cmd = ['bash', str(tmp_path / 'tools' / script), *args]
    for env in (dict(NODE_RANK='1'), dict(NNODES='2', NODE_RANK='2')):
        refused_up_front(cmd, dict(stand_ins, **env), stand_ins['PIDS'], (
            f"{script}: NODE_RANK={env['NODE_RANK']} with NNODES={env.get('NNODES', 1)}: node "
            'ranks are 0 to NNODES-1; set NNODES to the number of nodes (the same on every '
            "node) and NODE_RANK to this node's rank; usage: "), str(tmp_path))
    # a node past the first without MASTER_ADDR: torchrun looked for node 0 at 127.0.0.1, its
    # own address, and waited silently (900 s, then a rendezvous timeout traceback)
    for value in (None, ''):
        env = dict(stand_ins, NNODES='2', NODE_RANK='1', PORT='29600')
        env.pop('MASTER_ADDR', None) if value is None else env.update(MASTER_ADDR=value)
        refused_up_front(cmd, env, stand_ins['PIDS'], (
            f"{script}: NODE_RANK=1 without MASTER_ADDR: this node would look for node 0 at "
            "127.0.0.1 (itself) and wait; set MASTER_ADDR to node 0's address (the same on "
            'every node; 127.0.0.1 only when all nodes are this machine); usage: '),
            str(tmp_path))
    run_cmd(cmd, cwd=str(tmp_path), env=dict(stand_ins, NNODES='2', NODE_RANK='1', PORT='29600',
                                             MASTER_ADDR='10.0.0.1'))
    torchrun = (tmp_path / 'pids.txt').read_text().splitlines()[-1]
    assert ' --nnodes=2 --node_rank=1 --master_addr=10.0.0.1 --master_port=29600 ' in torchrun
    run_cmd(cmd, cwd=str(tmp_path), env=dict(stand_ins, NNODES='2', PORT='29600'))  # node 0
    assert ' --node_rank=0 --master_addr=127.0.0.1 --master_port=29600 ' in \
        (tmp_path / 'pids.txt').read_text().splitlines()[-1]
    # torchrun's elastic MIN:MAX nodes (passed on as upstream's launchers do): ranks below MAX
    run_cmd(cmd, cwd=str(tmp_path), env=dict(stand_ins, NNODES='1:3', NODE_RANK='2',
                                             MASTER_ADDR='10.0.0.1'))
    assert ' --nnodes=1:3 --node_rank=2 ' in (tmp_path / 'pids.txt').read_text()
    for nodes, rank in (('1:3', '3'), ('3:1', '0'), ('0:2', '0')):
        run = run_cmd(cmd, cwd=str(tmp_path), env=dict(stand_ins, NNODES=nodes, NODE_RANK=rank),
                      returncode=2)
        assert run.stderr.startswith(f'{script}: NODE_RANK=3 with NNODES=1:3: node ranks' if
                                     rank == '3' else f"{script}: NNODES must be a whole "
                                     f"number >= 1, not '{nodes}'"), run.stderr


SLURM_JOBS = [('slurm_train.sh', ['part', 'job', 'cfg.py', 'work']),
              ('slurm_test.sh', ['part', 'job', 'cfg.py', 'ckpt.pth'])]


@pytest.mark.parametrize('script, args', SLURM_JOBS, ids=[s for s, _ in SLURM_JOBS])
def test_slurm_launchers_refuse_gpus_that_are_not_whole_nodes(tmp_path, script, args):
    """GPUS=12 with GPUS_PER_NODE=8 reached srun as is; now more GPUs than one node holds must
    be whole nodes (exit 2, one line and the usage, before the preflight or srun). One partial
    node (GPUS=4, asking for those 4 GPUs: it asked for the whole node's 8, idling 4) and whole
    nodes (GPUS=16) still go to srun."""
    stand_ins = scratch_tools(str(tmp_path), script)
    executable(str(tmp_path / 'bin' / 'python'), '#!/usr/bin/env bash\necho $$ >> "$PIDS"\n')
    executable(str(tmp_path / 'bin' / 'srun'),
               '#!/usr/bin/env bash\necho $$ >> "$PIDS"\necho "$*" >> "$PIDS.srun"\n')
    cmd = ['bash', str(tmp_path / 'tools' / script), *args]
    run = run_cmd(cmd, cwd=str(tmp_path), env=dict(stand_ins, GPUS='12', GPUS_PER_NODE='8'),
                  returncode=2)
    assert run.stdout == '' and run.stderr.count('\n') == 1
    assert run.stderr.startswith(
        f'{script}: GPUS=12 spans several nodes but is not a multiple of GPUS_PER_NODE=8; pass '
        'GPUS=8 or 16 (whole nodes), or a GPUS_PER_NODE that divides it; usage: ')
    assert recorded(stand_ins['PIDS']) == []  # no preflight, no srun
    for gpus in ('4', '16'):
        run_cmd(cmd, cwd=str(tmp_path), env=dict(stand_ins, GPUS=gpus, GPUS_PER_NODE='8'))
    sruns = (tmp_path / 'pids.txt.srun').read_text().splitlines()
    assert [line.split()[3:7] for line in sruns] == [  # part of a node: its GPUs only (it held
        ['--gres=gpu:4', '--ntasks=4', '--ntasks-per-node=4', '--cpus-per-task=5'],  # all 8)
        ['--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8', '--cpus-per-task=5']]


@pytest.mark.parametrize('script, args', SLURM_JOBS, ids=[s for s, _ in SLURM_JOBS])
def test_slurm_launchers_pass_the_port_to_every_task(tmp_path, monkeypatch, script, args):
    """PORT, the torchrun launchers' name, reached the CPU start only: MMEngine's GPU Slurm
    start reads MASTER_PORT, so a GPU job kept 29500. Now srun gets MASTER_PORT: its own value,
    else PORT, else 29500; a port that is not one is refused before anything starts."""
    for name in ('PORT', 'MASTER_PORT'):  # the defaults, whatever the tests' shell has
        monkeypatch.delenv(name, raising=False)
    stand_ins = scratch_tools(str(tmp_path), script)
    executable(str(tmp_path / 'bin' / 'python'), '#!/usr/bin/env bash\necho $$ >> "$PIDS"\n')
    executable(str(tmp_path / 'bin' / 'srun'),
               '#!/usr/bin/env bash\necho "$MASTER_PORT" >> "$PIDS.port"\n')
    cmd = ['bash', str(tmp_path / 'tools' / script), *args]
    for env in (dict(), dict(PORT='29611'), dict(PORT='29611', MASTER_PORT='29612')):
        run_cmd(cmd, cwd=str(tmp_path), env=dict(stand_ins, **env))
    assert (tmp_path / 'pids.txt.port').read_text().split() == ['29500', '29611', '29612']
    (tmp_path / 'pids.txt').unlink()
    run = run_cmd(cmd, cwd=str(tmp_path), env=dict(stand_ins, PORT='70000'), returncode=2)
    assert run.stderr.startswith(f"{script}: MASTER_PORT must be a TCP port, 1 to 65535, not "
                                 "'70000'; usage: ")
    assert not (tmp_path / 'pids.txt').exists()  # no preflight, no srun


def test_slurm_generate_takes_gpus_per_task_0(tmp_path):
    """A CPU partition (the count check allows 0 where 0 makes sense): no --gres at all;
    --gres=gpu:0 was refused by sbatch where no gpu GRES is configured ('Invalid generic
    resource (gres) specification')."""
    stand_ins = scratch_tools(str(tmp_path), 'slurm_generate.sh')
    executable(str(tmp_path / 'bin' / 'sbatch'),
               '#!/usr/bin/env bash\necho "$*" >> "$PIDS.args"\necho 7\n')
    run_cmd(['bash', str(tmp_path / 'tools' / 'slurm_generate.sh'), 'part', 'job', 'src',
             'views', '--pca', 'p.pth'], cwd=str(tmp_path),
            env=dict(stand_ins, NTASKS='3', GPUS_PER_TASK='0', MAX_RUNNING='2'))
    array = (tmp_path / 'pids.txt.args').read_text().splitlines()[0]
    assert '--array=0-2%2 ' in array and ' --ntasks=1 --cpus-per-task=8 ' in array
    assert '--gres' not in array


@pytest.mark.parametrize('script, args', [('dist_train.sh', ['cfg.py', '3']),
                                          ('dist_test.sh', ['cfg.py', 'ckpt.pth', '3'])])
def test_torchrun_launchers_tell_the_preflight_their_process_count(tmp_path, script, args):
    """The preflight refuses more processes than the node's GPUs (test_preflight.py) only if
    the launcher passes its count."""
    stand_ins = scratch_tools(str(tmp_path), script)
    executable(str(tmp_path / 'bin' / 'python'), '#!/usr/bin/env bash\necho "$*" >> "$PIDS"\n')
    run_cmd(['bash', f'tools/{script}', *args, '--amp'], cwd=str(tmp_path), env=stand_ins)
    check, torchrun = (tmp_path / 'pids.txt').read_text().splitlines()
    assert check.split()[0].endswith('tools/check_config.py')
    assert check.endswith(' --quiet --procs-per-node=3 --amp')
    assert '--nproc_per_node=3 ' in torchrun and '--procs-per-node' not in torchrun


HELP_RUNS = [('dist_train.sh', ['cfg.py', '2'], 'train.py'),
             ('dist_test.sh', ['cfg.py', 'ckpt.pth', '2'], 'test.py'),
             ('slurm_train.sh', ['part', 'job', 'cfg.py', 'work'], 'train.py'),
             ('slurm_test.sh', ['part', 'job', 'cfg.py', 'ckpt.pth'], 'test.py')]


@pytest.mark.parametrize('script, args, tool', HELP_RUNS, ids=[s for s, _, _ in HELP_RUNS])
def test_launchers_answer_help_with_the_tools_help_once(tmp_path, script, args, tool):
    """``dist_train.sh CONFIG 8 --help`` printed tools/check_config.py's help (its --mode,
    --quiet: options train.py refuses), then started torchrun, whose every rank printed
    train.py's. Now the tool's help, once, and nothing started."""
    stand_ins = scratch_tools(str(tmp_path), script)
    executable(str(tmp_path / 'bin' / 'python'), '#!/usr/bin/env bash\necho "$*" >> "$PIDS"\n')
    executable(str(tmp_path / 'bin' / 'srun'), '#!/usr/bin/env bash\necho srun >> "$PIDS"\n')
    for flag in ('--help', '-h'):
        (tmp_path / 'pids.txt').unlink(missing_ok=True)
        run_cmd(['bash', str(tmp_path / 'tools' / script), *args, '--amp', flag],
                cwd=str(tmp_path), env=stand_ins)
        assert recorded_lines(stand_ins['PIDS']) == [f'{tmp_path}/tools/{tool} --help']


@pytest.mark.parametrize('script, args, tool', HELP_RUNS, ids=[s for s, _, _ in HELP_RUNS])
def test_launchers_answer_help_before_their_own_arguments(tmp_path, script, args, tool):
    """``dist_train.sh CONFIG --help`` (no GPUS) was a GPUS error, ``dist_test.sh --help`` the
    usage line with exit 2, ``slurm_test.sh P J CONFIG --help`` check_config.py's help (its
    CHECKPOINT) and then srun, ``slurm_train.sh P J CONFIG --help`` a preflight of work dir
    '--help'. Wherever -h/--help stands: the launcher's usage and the tool's help, exit 0."""
    stand_ins = scratch_tools(str(tmp_path), script)
    executable(str(tmp_path / 'bin' / 'python'), '#!/usr/bin/env bash\necho "$*" >> "$PIDS"\n')
    executable(str(tmp_path / 'bin' / 'srun'), '#!/usr/bin/env bash\necho srun >> "$PIDS"\n')
    for given in range(len(args) + 1):
        for flag in ('--help', '-h'):
            (tmp_path / 'pids.txt').unlink(missing_ok=True)
            run = run_cmd(['bash', str(tmp_path / 'tools' / script), *args[:given], flag],
                          cwd=str(tmp_path), env=dict(stand_ins, GPUS='eight'))
            assert recorded_lines(stand_ins['PIDS']) == [f'{tmp_path}/tools/{tool} --help']
            usage = run.stdout.splitlines()[0]
            assert usage.startswith('usage: ') and f'/tools/{script} ' in usage, run.stdout
            assert f'[{tool} options]' in usage and run.stderr == ''


def recorded_lines(path: str) -> list:
    with open(path) as f:
        return f.read().splitlines()


def test_launchers_run_from_a_relative_path_with_cdpath_exported(tmp_path):
    """With CDPATH exported, ``cd tools`` prints the folder it found, so ``$(cd ... && pwd)``
    held two lines: 'tools/_python.sh: line 52: .../tools\\n.../tools/_signals.sh: No such
    file or directory' for every launch script."""
    stand_ins = scratch_tools(str(tmp_path), 'dist_train.sh')
    run = run_cmd(['bash', 'tools/dist_train.sh', 'cfg.py', '0'], cwd=str(tmp_path),
                  env=dict(stand_ins, CDPATH=str(tmp_path)), returncode=2)
    assert run.stderr.startswith("dist_train.sh: GPUS must be a whole number >= 1, not '0'")


def test_setup_py_declares_what_an_install_without_the_bootstrap_needs(tmp_path):
    """A wheel or ``pip install -e .`` in the user's own env got whatever setuptools pip chose:
    81 has no pkg_resources, which mmengine imports for every ``genview_mm::`` base. The tests
    extra lacked packages the tests import."""
    repo = scratch_repo(tmp_path)
    out = subprocess.run([sys.executable, '-c', 'import json; from distutils.core import '
                          'run_setup; d = run_setup("setup.py", stop_after="init"); print('
                          'json.dumps([d.install_requires, d.python_requires, '
                          'd.extras_require["tests"]]))'], cwd=repo, text=True,
                         capture_output=True, check=True).stdout
    requires, python, tests = json.loads(out.strip().splitlines()[-1])
    assert 'setuptools<81,>=77' in requires and python == '>=3.10'
    names = {re.split(r'[<>=]', r)[0] for r in tests}
    assert {'pytest', 'timm', 'diffusers', 'transformers', 'mmdet', 'pycocotools',
            'scikit-image', 'scikit-learn'} <= names


def test_a_second_bootstrap_of_one_venv_waits_for_the_first(tmp_path):
    """tools/run_demo.sh and tools/run_tests.sh started together both pip-installed into one
    venv. The second bootstrap now waits for the first's lock, then runs."""
    import fcntl
    import hashlib
    import time
    repo = linked_repo(tmp_path)
    venv, cache = tmp_path / 'venv', tmp_path / 'cache'
    (venv / 'bin').mkdir(parents=True)
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\nexit 0\n')
    cache.mkdir()
    lock = cache / f'bootstrap-{hashlib.sha256(str(venv).encode()).hexdigest()[:16]}.lock'
    env = dict(os.environ, GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(cache))
    with open(lock, 'w') as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the first bootstrap, running
        proc = subprocess.Popen(['bash', osp.join(repo, 'tools', 'bootstrap_env.sh')],
                                cwd=repo, env=env, stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        time.sleep(0.5)
        assert proc.poll() is None and not (venv / '.genview_stamp').exists()
    out = line + proc.communicate(timeout=60)[0]
    assert f'another bootstrap of {venv} is running: waiting for it to finish' in out
    assert proc.returncode == 0 and 'done' in out and (venv / '.genview_stamp').is_file()


def test_bootstrap_goes_on_where_the_cache_cannot_be_locked(tmp_path):
    """A shared cache on NFS without lockd (flock: ENOLCK, status 71) or Lustre without flock:
    the bootstrap said another one was running, then stopped with flock's status."""
    repo = linked_repo(tmp_path)
    venv, bin_dir = tmp_path / 'venv', tmp_path / 'bin'
    (venv / 'bin').mkdir(parents=True)
    bin_dir.mkdir()
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\nexit 0\n')
    executable(str(bin_dir / 'flock'), '#!/usr/bin/env bash\n'
               'echo "flock: 9: No locks available" >&2\nexit 71\n')
    env = dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(tmp_path / 'cache'),
               PATH=f'{bin_dir}:{os.environ["PATH"]}')
    out = run_cmd(['bash', osp.join(repo, 'tools', 'bootstrap_env.sh')], cwd=repo, env=env)
    assert '(flock status 71): going on without the lock' in out.stdout
    assert 'waiting for it' not in out.stdout and 'done' in out.stdout


def test_bootstrap_names_a_missing_compiler_before_the_downloads(tmp_path):
    """A machine without a C++ compiler failed at the mmcv build, after torch's ~3 GB download;
    it now fails at once, unless a cached wheel or an installed mmcv makes no build needed."""
    repo = scratch_repo(tmp_path)
    venv, cache = tmp_path / 'venv', tmp_path / 'cache'
    (venv / 'bin').mkdir(parents=True)
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\ncase "$*" in '
               '*"import mmcv.ops"*) exit 1;; esac\nexit 0\n')  # no mmcv yet
    script = osp.join(repo, 'tools', 'bootstrap_env.sh')
    env = dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(cache), CXX='/nowhere/c++')
    out = run_cmd(['bash', script], cwd=repo, env=env, returncode=1)
    assert '[bootstrap] FAILED at step: C++ compiler' in out.stderr
    assert 'install a C++20 compiler (gcc>=10; Debian: apt-get install g++) or set CXX' \
        in out.stderr and '2/6' not in out.stdout
    wheel = cache / 'wheels' / 'mmcv-2.1.0-torch2.14.1-cpu-cp311-x86_64' / 'mmcv-2.1.0-x.whl'
    wheel.parent.mkdir(parents=True)
    wheel.write_bytes(b'')  # a cached wheel: nothing to compile
    assert 'C++ compiler' not in run_cmd(['bash', script], cwd=repo, env=env).output


def test_bootstrap_names_missing_python_headers_before_the_downloads(tmp_path):
    """mmcv's ops are compiled against Python.h, which Debian's and Ubuntu's python3 lacks
    without python3-dev: a fresh machine downloaded torch (~3 GB), then failed in the compile
    with 'Python.h: No such file or directory' and a fix that named only the C++ compiler. It
    now fails at once, naming the package, unless a cached wheel makes no build needed."""
    repo = scratch_repo(tmp_path)
    venv, cache = tmp_path / 'venv', tmp_path / 'cache'
    (venv / 'bin').mkdir(parents=True)
    executable(str(venv / 'bin' / 'python'), '#!/usr/bin/env bash\ncase "$*" in '
               '*"import mmcv.ops"*|*Python.h*) exit 1;; '  # no mmcv, no headers
               '*get_paths*) echo /usr/include/python3.11;; '
               '*python_version*) echo Python 3.11.2;; esac\nexit 0\n')
    script = osp.join(repo, 'tools', 'bootstrap_env.sh')
    env = dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(cache), CXX='true')
    out = run_cmd(['bash', script], cwd=repo, env=env, returncode=1)
    assert '[bootstrap] FAILED at step: Python headers' in out.stderr
    assert 'needs Python.h, which /usr/include/python3.11 lacks: install Python\'s headers ' \
        'for Python 3.11.2 (Debian/Ubuntu: apt-get install python3-dev' in out.stderr
    assert '2/6' not in out.stdout
    wheel = cache / 'wheels' / 'mmcv-2.1.0-torch2.14.1-cpu-cp311-x86_64' / 'mmcv-2.1.0-x.whl'
    wheel.parent.mkdir(parents=True)
    wheel.write_bytes(b'')  # a cached wheel: nothing to compile
    assert 'Python headers' not in run_cmd(['bash', script], cwd=repo, env=env).output


def mmcv_build_env(tmp_path, repo: str) -> dict:
    """The variables of a bootstrap in ``tmp_path`` with no mmcv and no cached wheel (its fake
    pip logs to ``pip.log``: the calls, and for ``pip wheel`` its MAX_JOBS and whether the
    unpacked sdist's setup.py asks for C++20)."""
    log = tmp_path / 'pip.log'
    sdist = tmp_path / 'sdist'  # what `pip download` fetches: a tarball with its setup.py
    (sdist / 'mmcv-2.1.0').mkdir(parents=True)
    (sdist / 'mmcv-2.1.0' / 'setup.py').write_text("args = ['-std=c++14']\n")
    subprocess.run(['tar', '-czf', str(tmp_path / 'mmcv-2.1.0.tar.gz'), '-C', str(sdist),
                    'mmcv-2.1.0'], check=True)
    venv, _ = torch_report_venv(
        tmp_path, repo, [('torch', '2.14.1')],
        '*get_compiling_cuda_version*|"-c import mmcv") exit 1;; '  # no mmcv installed
        '*cuda.is_available*) echo 0;; *__version__.split*) echo 2.14.1;; '
        '*version_info*) echo cp311;; '
        f'*" download "*) echo "$*" >> {log}; cp {tmp_path / "mmcv-2.1.0.tar.gz"} "${{@: -1}}";; '
        f'*" wheel "*) echo "MAX_JOBS=$MAX_JOBS $(grep -o c++20 setup.py)" >> {log}; '
        'mkdir -p "${@: -1}"; touch "${@: -1}/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl";; ')
    return dict(GENVIEW_VENV=str(venv), GENVIEW_CACHE=str(tmp_path / 'cache'), CXX='true')


@pytest.mark.parametrize('cgroup, jobs', [
    ({'cpu.max': '150000 100000\n'}, 2),  # v2, --cpus 1.5: 2 jobs
    ({'cpu.max': '50000 100000'}, 1),  # v2, --cpus 0.5 (no newline at the end): 1 job
    ({'cpu.max': 'max 100000\n'}, None),  # v2 without a quota: nproc
    ({'cpu/cpu.cfs_quota_us': '100000\n', 'cpu/cpu.cfs_period_us': '100000\n'}, 1),  # v1
    ({'cpu/cpu.cfs_quota_us': '-1\n', 'cpu/cpu.cfs_period_us': '100000\n'}, None)])
def test_the_mmcv_build_runs_as_many_jobs_as_the_cgroup_quota_allows(tmp_path, cgroup, jobs):
    """MAX_JOBS was nproc, which a container's CPU quota (--cpus) does not lower: a CUDA build
    of mmcv ran one compiler per CPU of the host and could run out of memory. The build (no
    cached wheel: download, unpack, ``pip wheel``) now runs at most the quota's CPUs, and not
    one job where OMP_NUM_THREADS=1 is set (GNU nproc obeys it; the tests set it)."""
    repo = linked_repo(tmp_path)
    log, root = tmp_path / 'pip.log', tmp_path / 'cgroup'
    for rel, text in cgroup.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    env = dict(mmcv_build_env(tmp_path, repo), GENVIEW_CGROUP_ROOT=str(root))
    out = run_cmd(['bash', osp.join(repo, 'tools', 'bootstrap_env.sh')], cwd=repo, env=env)
    cpus = len(os.sched_getaffinity(0))  # OMP_NUM_THREADS=1 here: nproc alone said 1
    expected = min(jobs, cpus) if jobs else cpus
    assert [ln for ln in log.read_text().splitlines() if ln.startswith('MAX_JOBS=')] == \
        [f'MAX_JOBS={expected} c++20']
    assert f'[bootstrap] compiling with MAX_JOBS={expected} (set MAX_JOBS' in out.stdout
    wheels = list((tmp_path / 'cache' / 'wheels').rglob('*.whl'))
    assert [w.parent.name for w in wheels] == [f'mmcv-2.1.0-torch2.14.1-cpu-cp311-'
                                               f'{os.uname().machine}']


def test_every_install_but_torchs_takes_the_verified_versions(tmp_path):
    """Packages without a version in the bootstrap (scikit-learn, huggingface-hub>=1.32, the
    mmcv build's opencv-python, and all that the stack pulls in) came at their newest release:
    a release after the last CI run could change, or break, a fresh venv. Every pip install of
    steps 2, 4 and 5 now takes tools/constraints.txt, which pins each of them on the verified
    Python; torch's install does not (GENVIEW_TORCH_SPEC may name another build). A change of the
    constraints changes the stamp, so the venv follows it."""
    repo = linked_repo(tmp_path)
    env = mmcv_build_env(tmp_path, repo)
    script, log = osp.join(repo, 'tools', 'bootstrap_env.sh'), tmp_path / 'pip.log'
    run_cmd(['bash', script], cwd=repo, env=env)
    constraints = osp.join(repo, 'tools', 'constraints.txt')
    calls = [ln.split()[3:] for ln in log.read_text().splitlines()
             if ln.split()[3:4] == ['install']]
    pinned = [c for c in calls if c[2:4] == ['-c', constraints]]
    assert len(pinned) == 3 and pinned[0][4:6] == ['--upgrade', 'pip']  # steps 2, 4, 5
    assert 'opencv-python' in pinned[1] and 'mmengine==0.10.7' in pinned[2]
    torch = [c for c in calls if any(a.startswith(('torch==', 'torchvision==')) for a in c)]
    assert torch and not any('-c' in c for c in torch)

    lines = [ln for ln in open(constraints).read().splitlines() if not ln.startswith('#')]
    markers, versions = set(), {}  # one verified Python, whichever runs the tests
    for line in lines:
        spec, marker = line.split(' ; ')
        name, version = spec.split('==')
        assert re.fullmatch(r'python_version == "3\.\d+"', marker), line
        assert re.fullmatch(r'[a-z0-9-]+', name), line
        markers.add(marker)
        versions[name] = version
    assert len(markers) == 1
    assert len(versions) == len(lines) > 50
    asked = {re.split(r'[<>=]', a)[0].lower().replace('_', '-') for c in pinned for a in c[4:]
             if not a.startswith('-') and '==' not in a}
    assert {'scikit-learn', 'huggingface-hub', 'opencv-python', 'pip', 'wheel'} <= asked
    assert asked - {'setuptools'} <= set(versions), asked - set(versions)  # setuptools: torch's
    assert not {'torch', 'torchvision', 'triton', 'sympy', 'mmcv'} & set(versions)
    assert not [n for n in versions if n.startswith(('nvidia-', 'cuda-'))]

    assert 'is up to date' in run_cmd(['bash', script], cwd=repo, env=env).stdout
    with open(constraints, 'a') as f:
        f.write(f'tqdm==4.0.0 ; {markers.pop()}\n')
    assert 'is up to date' not in run_cmd(['bash', script], cwd=repo, env=env).stdout


def test_the_constraints_are_what_the_freeze_script_makes_of_this_env():
    """tools/_freeze_constraints.py writes one pin per installed distribution at its installed
    version, leaving out torch's closure, mmcv and genview_mm (checked against this env)."""
    import importlib.metadata as md
    out = run_cmd([sys.executable, osp.join(ROOT, 'tools', '_freeze_constraints.py')]).stdout
    assert out.startswith('# The versions tools/bootstrap_env.sh installs')
    pins = dict(ln.split(' ; ')[0].split('==') for ln in out.splitlines()
                if not ln.startswith('#'))
    assert pins['mmengine'] == md.version('mmengine') == '0.10.7'
    assert pins['diffusers'] == md.version('diffusers')
    assert not {'torch', 'torchvision', 'triton', 'filelock', 'mmcv', 'genview-mm'} & set(pins)
