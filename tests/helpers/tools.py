"""Running the repository's tools as a user does: as a subprocess with this checkout on
``PYTHONPATH``, one thread, offline and without launcher variables, or in this process (which
saves the several seconds an interpreter needs to import the OpenMMLab stack)."""
import glob
import importlib.util
import json
import os
import os.path as osp
import runpy
import shlex
import subprocess
import sys
import types
from typing import Dict, List, Optional, Sequence

from genview_mm.utils.dist import free_port  # noqa: F401  (the tests' master ports)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(ROOT, 'tools')
# What a launcher (torchrun, Slurm, dist_train.sh) sets: a tool must not inherit the test's.
DIST_VARS = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT',
             'TORCHELASTIC_RUN_ID')
TAIL = 6000  # characters of output an assertion message shows


def checkout_root(folder) -> str:
    """``folder`` as the root of a fresh clone of this checkout (no data/): a ``tools`` link to
    its tools, so the fix lines name ``python tools/X.py`` there as in the checkout's root."""
    os.symlink(TOOLS, osp.join(str(folder), 'tools'))
    return str(folder)


def tool_env(**extra: str) -> Dict[str, str]:
    """The environment of a tool subprocess.

    One thread per process (on a shared 2-core machine OpenMP's spinning threads slow tiny
    convolutions down several-fold), this checkout first on the path and this interpreter for
    the shell launchers (``PYTHON``, read by tools/_python.sh), no model hub, no GPU (the runs
    are CPU runs: gloo, SyncBN replaced, on a GPU machine too), unbuffered output, no launcher
    variables; ``extra`` is applied last.
    """
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHON=sys.executable, OMP_NUM_THREADS='1',
               MKL_NUM_THREADS='1', PYTHONUNBUFFERED='1', HF_HUB_OFFLINE='1',
               TRANSFORMERS_OFFLINE='1', CUDA_VISIBLE_DEVICES='')
    for key in DIST_VARS:
        env.pop(key, None)
    env.update(extra)
    return env


def tool_cmd(name: str, *args: object) -> List[str]:
    """The command line of ``tools/<name>`` (``python`` or ``bash`` by its extension)."""
    interpreter = 'bash' if name.endswith('.sh') else sys.executable
    return [interpreter, osp.join(TOOLS, name), *map(str, args)]


class ToolRun(subprocess.CompletedProcess):
    """A finished subprocess (text mode) with its stdout and stderr together as ``output``."""

    @property
    def output(self) -> str:
        return (self.stdout or '') + (self.stderr or '')


def run_cmd(cmd: Sequence[object], cwd: str = ROOT, env: Optional[Dict[str, str]] = None,
            timeout: float = 600, returncode: Optional[int] = 0) -> ToolRun:
    """Run ``cmd`` in the :func:`tool_env` environment and capture its output.

    Args:
        cmd (Sequence[object]): the command line (items are turned into strings).
        cwd (str): the working folder. Defaults to the repository root.
        env (dict, optional): variables on top of :func:`tool_env`. Defaults to None.
        timeout (float): seconds before the run is killed (and the test fails). Defaults to 600.
        returncode (int, optional): the exit status the run must end with; None checks nothing.
            Defaults to 0.

    Returns:
        ToolRun: the finished run.
    """
    cmd = [str(c) for c in cmd]
    proc = subprocess.run(cmd, cwd=cwd, env=tool_env(**(env or {})), capture_output=True,
                          text=True, timeout=timeout)
    run = ToolRun(proc.args, proc.returncode, proc.stdout, proc.stderr)
    if returncode is not None:
        assert run.returncode == returncode, (
            f'{shlex.join(cmd)} (in {cwd}) exited with {run.returncode}, expected {returncode}; '
            f'the end of its output:\n{run.output[-TAIL:]}')
    return run


def run_tool(name: str, *args: object, **kwargs) -> ToolRun:
    """:func:`run_cmd` of ``tools/<name> ARGS`` (same keyword arguments)."""
    return run_cmd(tool_cmd(name, *args), **kwargs)


def load_tool(name: str) -> types.ModuleType:
    """``tools/<name>.py`` imported as a module (``load_tool('generate_views').main(argv)``)."""
    spec = importlib.util.spec_from_file_location(f'tool_{name}', osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, *args: object) -> None:
    """Run ``python tools/<name> ARGS`` in this process (for tools whose ``main`` reads
    ``sys.argv``); a ``SystemExit`` of the tool propagates."""
    path = osp.join(TOOLS, name)
    saved = sys.argv
    sys.argv = [path, *map(str, args)]
    try:
        runpy.run_path(path, run_name='__main__')
    finally:
        sys.argv = saved


def scalar_rows(work_dir: str, key: Optional[str] = None) -> List[dict]:
    """The rows MMEngine logged to ``work_dir/<timestamp>/vis_data/scalars.json``.

    Args:
        work_dir (str): the runner's work folder; every run in it is read, oldest first.
        key (str, optional): keep only the rows that log this scalar. Defaults to None.

    Returns:
        List[dict]: one dict per logged line.
    """
    rows = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if key is None or key in r]
