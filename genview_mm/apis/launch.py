"""Runner set-up shared by ``tools/train.py`` and ``tools/test.py``.

Keeps the launch scripts thin and makes the same config run on a GPU cluster and on a laptop:

* ``--launcher pytorch|slurm|mpi`` without CUDA initialises a ``gloo`` process group before the
  Runner is built (MMEngine's own ``init_dist`` calls ``torch.cuda.set_device`` and dies on CPU)
  and wraps the model in DDP with ``device_ids=None``;
* without CUDA, ``SyncBN`` in a config becomes ``BN`` (SyncBN needs CUDA) with a logged warning,
  and DDP on CPU (:class:`~genview_mm.engine.CPUDistributedDataParallel`) turns the SyncBN
  layers a model builds by default (MMPretrain's necks) into BatchNorm;
* ``--amp`` selects ``AmpOptimWrapper`` where an accelerator exists and warns otherwise.

(The ``_scope_`` of inherited ``collate_fn`` configs is handled in :mod:`genview_mm.compat`.)
"""
import argparse
import copy
import logging
import os
import os.path as osp
import re
import subprocess
import sys
import zipfile
from typing import Any, Optional

import torch
import torch.distributed as dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from ..engine import CPU_DDP
from ..utils.config_keys import type_name
from ..utils.file_safety import config_dump_problem
from .config import load_config
from .genview_settings import without_applied_settings
from .preflight import format_checklist, has_notes, preflight_passes, run_preflight

SYNC_BN_TYPES = ('SyncBN', 'MMSyncBN', 'TorchSyncBN', 'SyncBatchNorm', 'NaiveSyncBN')


def replace_sync_bn(node: Any) -> int:
    """Replace every ``norm_cfg``-style ``dict(type='SyncBN')`` in a config tree by ``BN``.

    Returns:
        int: the number of replacements.
    """
    count = 0
    if isinstance(node, dict):
        if type_name(node) in SYNC_BN_TYPES:
            node['type'] = 'BN'
            count += 1
        for value in node.values():
            count += replace_sync_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            count += replace_sync_bn(value)
    return count


def first_slurm_host(nodelist: str) -> Optional[str]:
    """The first host of a Slurm node list (``scontrol show hostnames``); None if unknown."""
    try:
        out = subprocess.run(['scontrol', 'show', 'hostnames', nodelist], capture_output=True,
                             text=True, timeout=30, check=True).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return out[0] if out else None


def init_cpu_distributed(launcher: str) -> None:
    """Initialise a gloo process group from torchrun/slurm variables when there is no CUDA.

    Why this exists: MMEngine's ``init_dist`` (which the Runner calls for ``--launcher``) calls
    ``torch.cuda.set_device`` and NCCL unconditionally, so multi-process training on CPU (tests,
    laptops) would die; once a process group exists, the Runner skips its own initialisation.
    A variable the launcher must set and did not (the script run without it): OptionRefused.
    """
    if dist.is_initialized():
        return
    if launcher == 'slurm':
        unset = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS') if k not in os.environ]
        if unset:
            raise OptionRefused(f'--launcher slurm outside a Slurm job step ({unset} not set): '
                                'start it with srun (tools/slurm_train.sh), or drop --launcher')
        os.environ.setdefault('RANK', os.environ['SLURM_PROCID'])
        os.environ.setdefault('WORLD_SIZE', os.environ['SLURM_NTASKS'])
        os.environ.setdefault('LOCAL_RANK', os.environ.get('SLURM_LOCALID', '0'))
        os.environ.setdefault('MASTER_PORT', os.environ.get('PORT', '29500'))
        if 'MASTER_ADDR' not in os.environ:  # the first node, as MMEngine's GPU path finds it
            host = first_slurm_host(os.environ.get('SLURM_NODELIST', ''))
            if host is None:
                raise OptionRefused('slurm launch on CPU: the first node of SLURM_NODELIST '
                                    'could not be found with scontrol: set MASTER_ADDR to its '
                                    'host name')
            os.environ['MASTER_ADDR'] = host
    elif launcher == 'mpi':  # Open MPI's variables, else MPICH's and Intel MPI's (PMI_*):
        env = os.environ     # without these every process was rank 0 of 1, N copies of one run
        if not {'RANK', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK'} & env.keys() and 'PMIX_RANK' in env:
            raise OptionRefused(  # srun --mpi=pmix: PMIx gives the rank alone, no world size
                f"--launcher mpi found only PMIx's PMIX_RANK={env['PMIX_RANK']} (srun "
                '--mpi=pmix?), not the world size: under srun use --launcher slurm '
                '(tools/slurm_train.sh), or start the job with mpirun')
        env.setdefault('RANK', env.get('OMPI_COMM_WORLD_RANK', env.get('PMI_RANK', '0')))
        env.setdefault('WORLD_SIZE',
                       env.get('OMPI_COMM_WORLD_SIZE', env.get('PMI_SIZE', '1')))
        env.setdefault('LOCAL_RANK', env.get('OMPI_COMM_WORLD_LOCAL_RANK',
                                             env.get('MPI_LOCALRANKID', '0')))
        os.environ.setdefault('MASTER_PORT', '29500')  # as MMEngine's MPI path
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise OptionRefused(f'--launcher {launcher} needs {missing} in the environment: start '
                            'the job through tools/dist_train.sh (torchrun) or '
                            'tools/slurm_train.sh, or drop --launcher')
    dist.init_process_group(backend='gloo', init_method='env://')


def work_dir_of(cfg: Config, work_dir: Optional[str] = None,
                config_path: Optional[str] = None) -> Optional[str]:
    """``--work-dir``, else the config's ``work_dir``, else ``./work_dirs/<config name>``."""
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir') is not None or config_path is None:
        return cfg.get('work_dir')
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def checkpoint_dir_of(cfg: Config, work_dir: Optional[str]) -> Optional[str]:
    """The folder MMEngine's ``CheckpointHook`` saves into: ``work_dir``, or
    ``<default_hooks.checkpoint.out_dir>/<work_dir's name>`` when the config sets ``out_dir``."""
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    out_dir = hook.get('out_dir') if isinstance(hook, dict) else None
    if not work_dir or not out_dir:
        return work_dir
    name = osp.basename(osp.abspath(work_dir))
    return f"{out_dir.rstrip('/')}/{name}" if '://' in out_dir else osp.join(out_dir, name)


class OptionRefused(ValueError):
    """A train option the config cannot honour (the tools print it in one line and exit with
    status 2)."""


class ResumeRefused(OptionRefused):
    """``--resume`` cannot tell which checkpoint to continue from, and starting afresh would
    overwrite the run's checkpoints (the tools print it in one line and exit with status 2)."""


_CHECKPOINT_NAME = re.compile(r'(epoch|iter)_(\d+)\.pth')  # CheckpointHook's default names


def resume_checkpoint(work_dir: Optional[str], checkpoint_dir: Optional[str] = None
                      ) -> Optional[str]:
    """What ``--resume`` without a path continues from: the checkpoint that ``last_checkpoint``
    in ``work_dir`` names (MMEngine's rule), None without one (training starts afresh). A name
    outside the run's checkpoint folder (``checkpoint_dir``, :func:`checkpoint_dir_of`; default
    ``work_dir``) means the folder was copied or moved: it is read from that folder itself, so
    a copy never resumes another run's checkpoint; the preflight then checks that file.
    :class:`ResumeRefused` when ``last_checkpoint`` is missing or empty (a kill or a full disk
    while it was written), or names a local file that is gone, but the local checkpoint folder
    holds ``epoch_N.pth``/``iter_N.pth``: starting afresh would overwrite them."""
    if not work_dir:
        return None
    folder, marker, named = checkpoint_dir or work_dir, osp.join(work_dir, 'last_checkpoint'), ''
    if osp.isfile(marker):
        with open(marker, encoding='utf-8') as f:
            named = f.read().strip()
    if not named:
        _refuse_over_saved(folder, f'{marker} is {"empty" if osp.isfile(marker) else "missing"}')
        return None
    if '://' in folder or '://' in named:
        if named.rsplit('/', 1)[0] != folder.rstrip('/'):
            return f"{folder.rstrip('/')}/{named.rsplit('/', 1)[-1]}"
        return named
    if osp.realpath(osp.dirname(osp.join(work_dir, named))) != osp.realpath(folder):
        named = osp.join(folder, osp.basename(named))
    if not osp.isfile(named):  # deleted, with the save after it cut short (max_keep_ckpts)
        _refuse_over_saved(folder, f'{marker} names {named}, which is not there')
    return named


def _refuse_over_saved(folder: str, why: str) -> None:
    """:class:`ResumeRefused` (``why``, and the newest checkpoint saved whole, or that none
    is) when the local ``folder`` holds ``epoch_N.pth``/``iter_N.pth``; else nothing."""
    names = os.listdir(folder) if '://' not in folder and osp.isdir(folder) else []
    saved = sorted((int(m[2]), m[0]) for m in map(_CHECKPOINT_NAME.fullmatch, names) if m)
    if not saved:
        return
    newer = [name for _, name in reversed(saved)]  # the newest whole zip (torch.save's
    whole = next((i for i, name in enumerate(newer)  # format): a kill cuts a save short
                  if zipfile.is_zipfile(osp.join(folder, name))), None)
    head = f'--resume: {why}, but {folder} holds {len(saved)} checkpoint(s) of a run'
    if whole is None:
        raise ResumeRefused(f'{head}, none of them whole (each cut short: a kill during a '
                            'save): delete them to start over, or pass another --work-dir')
    cut = f' saved whole ({", ".join(newer[:whole])} {"is" if whole == 1 else "are"} cut ' \
        'short: a kill during a save)' if whole else ''
    raise ResumeRefused(f'{head} that training afresh would overwrite: pass --resume '
                        f'{osp.join(folder, newer[whole])} to continue from the newest{cut}, '
                        'or another --work-dir to start over')


def _refuse_a_dumps_old_resume(cfg: Config, args: argparse.Namespace) -> None:
    """:class:`ResumeRefused` when ``args.config`` is a run's own config dump (``WORK_DIR/<its
    name>``) whose ``resume=True`` and ``load_from``, baked in by that run's ``--resume``, name a
    local checkpoint other than the newest of the work dir: rerun without ``--resume``, MMEngine
    resumed that older one (in a copied work dir, the original run's) and overwrote the rest."""
    load_from, config = cfg.load_from, getattr(args, 'config', None)
    work_dir = work_dir_of(cfg, getattr(args, 'work_dir', None), config)
    if not (isinstance(load_from, str) and config and work_dir) or '://' in load_from + work_dir \
            or osp.realpath(osp.join(work_dir, osp.basename(config))) != osp.realpath(config):
        return
    try:
        newest = resume_checkpoint(work_dir, checkpoint_dir_of(cfg, work_dir))
    except ResumeRefused:  # no last_checkpoint to go by: the config's load_from, as before
        return
    if newest is None or not osp.isfile(newest) or osp.realpath(newest) == osp.realpath(load_from):
        return
    raise ResumeRefused(
        f'{config} holds resume=True and load_from={load_from} (the config dump of a run with '
        f'--resume), but {work_dir} has saved {newest} since: resuming {load_from} would train '
        f'again from there and overwrite it; pass --resume to continue from the newest, or '
        f'--resume {load_from} to go back to it')


def apply_train_options(cfg: Config, args: argparse.Namespace) -> Config:
    """Apply ``tools/train.py``'s ``--resume [CKPT]``, ``--no-validate`` and ``--auto-scale-lr``
    (:class:`OptionRefused` without ``auto_scale_lr.base_batch_size``) to ``cfg`` in place
    (and return it), before the preflight: ``tools/check_config.py``, which the launch scripts
    run for ``tools/train.py``, applies them the same way, so it checks what the run will need.

    ``--resume`` without a path (``'auto'``) names the checkpoint now, from the work dir of
    ``--work-dir``/the config (:func:`resume_checkpoint`), so the preflight checks it. With none
    there yet (the first submission of a job that always passes ``--resume``) the run starts as
    it would without ``--resume``, from the config's ``load_from`` if it has one (MMEngine's rule
    of resume=True with load_from=None dropped it: training started from scratch, silently).
    """
    resume = getattr(args, 'resume', None)
    if resume is None and cfg.get('resume') is True and not cfg.get('load_from'):
        resume = 'auto'  # the config's resume=True: MMEngine's own search skips the rules below
    elif resume is None and cfg.get('resume') is True:
        _refuse_a_dumps_old_resume(cfg, args)
    if resume == 'auto':
        work_dir = work_dir_of(cfg, getattr(args, 'work_dir', None), args.config)
        found = resume_checkpoint(work_dir, checkpoint_dir_of(cfg, work_dir))
        if found is not None:
            cfg.resume, cfg.load_from = True, found
        else:
            cfg.resume = False
    elif resume is not None:
        cfg.resume, cfg.load_from = True, resume
    if getattr(args, 'no_validate', False):
        cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    if getattr(args, 'auto_scale_lr', False):
        scale = cfg.get('auto_scale_lr')
        if not (isinstance(scale, dict) and scale.get('base_batch_size')):
            raise OptionRefused(  # it was dropped silently: the lr stayed unscaled
                '--auto-scale-lr needs the batch size the config\'s lr is set for, and this '
                'config has no auto_scale_lr.base_batch_size: pass --cfg-options '
                'auto_scale_lr.base_batch_size=N (N: the total batch of its recipe)')
        cfg.auto_scale_lr = dict(scale, enable=True)
    return cfg


def run_work_dir(cfg: Config, work_dir: Optional[str] = None,
                 config_path: Optional[str] = None) -> Optional[str]:
    """The run's work dir (:func:`work_dir_of`); :class:`OptionRefused` when it holds
    ``config_path``, a config of the user's own that MMEngine's dump would replace
    (``config_dump_problem``): the default work dir or the config's ``work_dir`` too (``--work-dir``
    is checked as the tools parse it). ``tools/check_config.py`` calls it as well, so that the
    launchers stop once, before their processes start."""
    folder = work_dir_of(cfg, work_dir, config_path)
    problem = config_dump_problem(folder, config_path) if folder is not None else ''
    if problem:
        raise OptionRefused(f'the work dir {problem}')
    return folder


def prepare_cfg(cfg: Config, launcher: str = 'none', work_dir: Optional[str] = None,
                config_path: Optional[str] = None, amp: bool = False) -> Config:
    """Apply the launch-time rules above to ``cfg`` in place and return it."""
    cfg.launcher = launcher
    folder = run_work_dir(cfg, work_dir, config_path)
    if folder is not None:
        cfg.work_dir = folder

    has_cuda = torch.cuda.is_available()
    if has_cuda and launcher == 'mpi':  # MMEngine's own MPI start reads Open MPI's variables
        unset = [k for k in ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE',
                             'OMPI_COMM_WORLD_LOCAL_RANK', 'MASTER_ADDR') if k not in os.environ]
        if unset:  # (a KeyError traceback on every rank; under MPICH or Intel MPI, PMI_RANK,
            # after the preflight of one of them)
            raise OptionRefused(
                f'--launcher mpi on GPU needs {unset} in the environment (MMEngine starts '
                "from Open MPI's mpirun, with MASTER_ADDR set): start it with Open MPI's "
                'mpirun -x MASTER_ADDR=HOST, or through tools/dist_train.sh (torchrun) or '
                'tools/slurm_train.sh')
    if not has_cuda:
        n = replace_sync_bn(cfg._cfg_dict) if isinstance(cfg, Config) else replace_sync_bn(cfg)
        if cfg.get('sync_bn'):
            cfg.sync_bn = None
            n += 1
        if n:
            print_log(f'No CUDA: replaced {n} SyncBN setting(s) by BN (SyncBN needs CUDA).',
                      logger='current', level=logging.WARNING)
        if launcher != 'none':
            init_cpu_distributed(launcher)
            wrapper = cfg.get('model_wrapper_cfg') or ConfigDict(type='MMDistributedDataParallel')
            if type_name(wrapper) == 'MMDistributedDataParallel':  # and the neck defaults' SyncBN
                wrapper['type'] = CPU_DDP
            wrapper['device_ids'] = None
            cfg.model_wrapper_cfg = wrapper
            env_cfg = cfg.get('env_cfg') or ConfigDict()
            env_cfg.setdefault('dist_cfg', ConfigDict())['backend'] = 'gloo'
            cfg.env_cfg = env_cfg

    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(name)  # num_workers=0 (debugging): torch refuses persistent workers
        if isinstance(loader, dict) and loader.get('num_workers') == 0 and \
                loader.get('persistent_workers'):
            loader['persistent_workers'] = False
    has_amp_device = has_cuda or getattr(torch, 'npu', None) is not None
    optim_wrapper = cfg.get('optim_wrapper')
    if not has_amp_device and isinstance(optim_wrapper, dict) and \
            type_name(optim_wrapper) == 'AmpOptimWrapper':  # MMEngine asserts an accelerator
        cfg.optim_wrapper = type(optim_wrapper)(
            {k: v for k, v in optim_wrapper.items()
             if k not in ('loss_scale', 'dtype', 'use_fsdp')}, type='OptimWrapper')
        print_log('No CUDA/NPU: the config\'s AmpOptimWrapper trains in fp32 here '
                  '(OptimWrapper; AMP needs an accelerator).', logger='current',
                  level=logging.WARNING)
    if amp:
        if not has_amp_device:
            print_log('--amp ignored: AmpOptimWrapper needs a CUDA/NPU device; training in fp32.',
                      logger='current', level=logging.WARNING)
        elif cfg.optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            print_log('AMP is already enabled in the config.', logger='current')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    return cfg


def load_cfg(args: argparse.Namespace, options: Optional[dict] = None) -> Config:
    """Read ``args.config`` with ``options`` (typed ``--cfg-options``) and the ``genview``
    settings (:func:`genview_mm.apis.load_config`); :func:`prepare_cfg` applies the launch
    rules."""
    os.environ.setdefault('LOCAL_RANK', str(getattr(args, 'local_rank', 0)))
    return load_config(args.config, options)


def preflight_or_exit(cfg: Config, args: argparse.Namespace, mode: str,
                      checkpoint: Optional[str] = None) -> None:
    """Run the preflight (:mod:`genview_mm.apis.preflight`): with ``--preflight`` print the whole
    checklist and exit; otherwise print it and exit with status 2 only if something is
    missing, print only its notes (usable, worth knowing: e.g. views missing for some images,
    which train on the original) and go on when all is there, and stay silent without notes."""
    checks = run_preflight(cfg, mode, checkpoint)
    ok = preflight_passes(checks)
    if args.preflight or not ok:
        print(format_checklist(checks, args.config, verbose=args.preflight), flush=True)
        sys.exit(0 if ok else 2)
    if has_notes(checks):
        print(format_checklist(checks, args.config), flush=True)


def _nothing_left_notice():
    """A hook saying so when a resumed run is already at its end (MMEngine then trains nothing
    and exits 0, which a requeued job wants, but a user who meant to train longer does not)."""
    from mmengine.hooks import Hook
    from mmengine.runner import IterBasedTrainLoop

    class NothingLeftNotice(Hook):
        def before_train(self, runner) -> None:
            by_iter = isinstance(runner.train_loop, IterBasedTrainLoop)
            what, key = ('iteration', 'max_iters') if by_iter else ('epoch', 'max_epochs')
            at = runner.iter if by_iter else runner.epoch
            end = getattr(runner.train_loop, key, None)  # a custom loop may have neither
            if isinstance(end, int) and at >= end:
                runner.logger.warning(f'resumed at {what} {at} of {end} (train_cfg.{key}): '
                                      f'nothing left to train; raise train_cfg.{key} to '
                                      'train longer')
    return NothingLeftNotice()


def build_runner(cfg: Config):
    """The config's runner: MMEngine's ``Runner`` unless it names a ``runner_type``. It records
    (in its work dir, checkpoints and visualizer) the config without the values the ``genview``
    settings wrote into its pipelines (:func:`~.genview_settings.without_applied_settings`),
    so a run started from that record takes new ``genview`` overrides; its data loaders are
    built from ``cfg`` itself."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    plain = without_applied_settings(cfg)
    runner = Runner.from_cfg(plain) if 'runner_type' not in plain else RUNNERS.build(plain)
    if cfg.get('resume') and cfg.get('train_cfg'):
        runner.register_hook(_nothing_left_notice(), 'LOWEST')
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if isinstance(getattr(runner, f'_{name}', None), dict) and cfg.get(name) is not None:
            setattr(runner, f'_{name}', copy.deepcopy(cfg[name]))  # not built yet: still a dict
    return runner
