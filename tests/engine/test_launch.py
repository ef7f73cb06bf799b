"""prepare_cfg: SyncBN -> BN without CUDA, gloo wrapper settings, --amp on CPU."""
import pytest
import torch
from mmengine.config import Config

from genview_mm.apis.launch import prepare_cfg, replace_sync_bn


def test_replace_sync_bn_walks_nested_dicts_and_lists():
    heads = [dict(norm_cfg=dict(type='MMSyncBN')), dict(norm_cfg=dict(type='GN'))]
    cfg = dict(model=dict(backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True)),
                          heads=heads))
    assert replace_sync_bn(cfg) == 2
    assert cfg['model']['backbone']['norm_cfg'] == dict(type='BN', requires_grad=True)
    assert cfg['model']['heads'][0]['norm_cfg']['type'] == 'BN'
    assert cfg['model']['heads'][1]['norm_cfg']['type'] == 'GN'


def test_prepare_cfg_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)  # a GPU machine too
    cfg = Config(dict(model=dict(backbone=dict(norm_cfg=dict(type='SyncBN'))), sync_bn='torch',
                      optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))))
    prepare_cfg(cfg, 'none', None, str(tmp_path / 'my_cfg.py'), amp=True)
    assert cfg.model.backbone.norm_cfg.type == 'BN'
    assert not cfg.sync_bn
    assert cfg.work_dir.endswith('work_dirs/my_cfg')
    assert cfg.optim_wrapper.type == 'OptimWrapper'  # --amp ignored without an accelerator
    assert cfg.launcher == 'none'
    # num_workers=0 (debugging) with the configs' persistent_workers: torch's bare ValueError
    cfg = Config(dict(train_dataloader=dict(num_workers=0, persistent_workers=True),
                      val_dataloader=dict(num_workers=2, persistent_workers=True)))
    prepare_cfg(cfg, 'none', None, str(tmp_path / 'my_cfg.py'))
    assert cfg.train_dataloader.persistent_workers is False
    assert cfg.val_dataloader.persistent_workers is True


def test_inherited_collate_fn_scope_is_ignored_by_any_runner(repo_root, tmp_path):
    """compat fixes Runner.build_dataloader itself: a script building its own loader from an
    mmpretrain:: config works (upstream fails with default_collate(_scope_=...))."""
    import os.path as osp

    import torch
    from mmengine.runner import Runner

    from helpers import write_photos
    cfg = Config.fromfile(osp.join(repo_root, 'configs/demo/mocov2_r18_tiny_cpu.py'))
    assert cfg.train_dataloader.collate_fn.get('_scope_') == 'mmpretrain'  # added by MMEngine
    write_photos(str(tmp_path / 'imgs' / 'a'), 4, size=40)
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'imgs')
    cfg.train_dataloader.batch_size = 4
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    loader = Runner.build_dataloader(cfg.train_dataloader)
    batch = next(iter(loader))
    assert isinstance(batch['inputs'][0], torch.Tensor) and batch['inputs'][0].shape[0] == 4
    assert cfg.train_dataloader.collate_fn.get('_scope_') == 'mmpretrain'  # config untouched


def test_slurm_on_cpu_finds_the_first_node_as_mmengine_does(tmp_path, monkeypatch):
    """The CPU (gloo) Slurm path asked for MASTER_ADDR, 'tools/slurm_train.sh does this', which
    it does not: now the first host of SLURM_NODELIST (scontrol), as MMEngine's GPU path."""
    import os

    import torch.distributed as dist

    from genview_mm.apis import launch
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    scontrol = bin_dir / 'scontrol'
    scontrol.write_text('#!/bin/sh\n[ "$1 $2 $3" = "show hostnames node[7-8]" ] && '
                        'printf "node7\\nnode8\\n"\n')
    scontrol.chmod(0o755)
    for key in ('MASTER_ADDR', 'MASTER_PORT', 'RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'PORT'):
        monkeypatch.setenv(key, '')  # recorded, so what the launch sets is undone after
        monkeypatch.delenv(key)
    monkeypatch.setenv('SLURM_PROCID', '0')
    monkeypatch.setenv('SLURM_NTASKS', '1')
    monkeypatch.setenv('SLURM_NODELIST', 'node[7-8]')
    monkeypatch.setenv('PATH', f'{bin_dir}{os.pathsep}{os.environ["PATH"]}')
    started = []
    monkeypatch.setattr(dist, 'init_process_group', lambda **kw: started.append(kw))
    launch.init_cpu_distributed('slurm')
    assert os.environ['MASTER_ADDR'] == 'node7' and os.environ['MASTER_PORT'] == '29500'
    assert started == [dict(backend='gloo', init_method='env://')]
    monkeypatch.delenv('MASTER_ADDR')
    monkeypatch.setenv('PATH', str(tmp_path / 'nothing'))  # no scontrol: told what to set
    with pytest.raises(launch.OptionRefused, match='set MASTER_ADDR to its host name'):
        launch.init_cpu_distributed('slurm')


def test_a_config_with_amp_trains_in_fp32_without_an_accelerator(repo_root, tmp_path):
    """The MoCo v3 configs inherit mmpretrain's AmpOptimWrapper: on CPU the run died in
    MMEngine's assert ('only available training on gpu, npu, mlu or musa') after the
    preflight had passed. Without an accelerator it is a plain OptimWrapper, as --amp is
    ignored there, with a warning."""
    import logging
    import os.path as osp

    from mmengine.logging import MMLogger
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope

    from genview_mm.apis import load_config
    cfg = load_config(osp.join(repo_root, 'configs/baselines/mocov3_r50_in1k.py'))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and 'loss_scale' in cfg.optim_wrapper
    logger = MMLogger.get_instance('amp_on_cpu')  # the current one: print_log's
    seen = []
    handler = logging.Handler()
    handler.emit = seen.append
    logger.addHandler(handler)
    prepare_cfg(cfg, 'none', None, str(tmp_path / 'mocov3.py'))
    logger.removeHandler(handler)
    assert cfg.optim_wrapper.type == 'OptimWrapper' and 'loss_scale' not in cfg.optim_wrapper
    assert any('AmpOptimWrapper' in r.getMessage() for r in seen), [r.msg for r in seen]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        wrapper = build_optim_wrapper(torch.nn.Conv2d(3, 4, 1), cfg.optim_wrapper)
    assert type(wrapper).__name__ == 'OptimWrapper'
    assert type(wrapper.optimizer).__name__ == 'LARS'


@pytest.mark.parametrize('tool', ['train', 'test'])
@pytest.mark.parametrize('launcher, said', [
    ('pytorch', "--launcher pytorch needs ['RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'] "
                'in the environment'),
    ('slurm', "--launcher slurm outside a Slurm job step (['SLURM_PROCID', 'SLURM_NTASKS'] not "
              'set)'),
    ('mpi', "--launcher mpi needs ['MASTER_ADDR'] in the environment")])
def test_a_launcher_without_its_variables_is_one_line(tool, launcher, said, repo_root, tmp_path,
                                                      monkeypatch, capsys):
    """Tracebacks before (a RuntimeError, or KeyError: 'SLURM_PROCID'); MPI's MASTER_PORT
    defaults to 29500 as in MMEngine."""
    import os.path as osp

    from helpers import run_script
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'SLURM_PROCID',
                'SLURM_NTASKS'):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    config = osp.join(repo_root, 'configs', *(
        ['demo', 'genview_mocov2_r18_tiny_cpu.py'] if tool == 'train' else
        ['benchmarks', 'genview_mocov2_r50_linear-steplr-100e_in1k.py']))
    extra = ['ckpt.pth'] if tool == 'test' else []
    with pytest.raises(SystemExit) as exc:
        run_script(f'{tool}.py', config, *extra, '--launcher', launcher, '--skip-preflight',
                   '--work-dir', str(tmp_path / 'w'))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(f'{tool}.py: error: {said}'), err
    assert err.count('\n') == 1


@pytest.mark.parametrize('tool', ['train', 'test'])
def test_option_abbreviations_are_refused(tool, repo_root, capsys):
    """``--pref`` was --preflight to argparse, not to the launchers' exact match: torchrun
    started and every rank printed the checklist again. (check_config.py, which the launchers
    run first, leaves options it does not know to train.py and test.py.)"""
    import os.path as osp

    from helpers import run_script
    config = osp.join(repo_root, 'configs', 'demo', 'genview_mocov2_r18_tiny_cpu.py')
    with pytest.raises(SystemExit) as exc:
        run_script(f'{tool}.py', config, *(['ckpt.pth'] if tool == 'test' else []), '--pref')
    assert exc.value.code == 2
    assert 'unrecognized arguments: --pref' in capsys.readouterr().err


def test_ddp_on_cpu_turns_a_necks_default_sync_bn_into_bn(tmp_path, monkeypatch):
    """The config's SyncBN entries became BN, but MMPretrain's NonLinearNeck (MoCo v3, BYOL,
    SimSiam, SimCLR) builds SyncBN by default: DDP on CPU processes ended in 'SyncBatchNorm
    layers only work with GPU modules'. The CPU wrapper turns them into BatchNorm."""
    import torch.distributed as dist
    from mmengine.registry import MODEL_WRAPPERS, DefaultScope
    from mmpretrain.registry import MODELS
    from torch.nn.modules.batchnorm import _BatchNorm

    from genview_mm.apis import launch
    from genview_mm.engine import CPU_DDP

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(launch, 'init_cpu_distributed', lambda launcher: None)
    cfg = Config(dict(model=dict(type='NonLinearNeck', in_channels=4, hid_channels=6,
                                 out_channels=3, num_layers=2)))
    prepare_cfg(cfg, 'pytorch', str(tmp_path / 'w'), None)
    assert cfg.model_wrapper_cfg == dict(type=CPU_DDP, device_ids=None)
    own = Config(dict(model_wrapper_cfg=dict(type='MyWrapper', find_unused_parameters=True)))
    prepare_cfg(own, 'pytorch', str(tmp_path / 'w'), None)
    assert own.model_wrapper_cfg == dict(type='MyWrapper', find_unused_parameters=True,
                                         device_ids=None)  # a wrapper of the user's: kept

    dist.init_process_group('gloo', init_method=f'file://{tmp_path / "store"}', rank=0,
                            world_size=1)
    try:
        for scope in ('mmpretrain', 'mmdet'):  # found from a detection config too
            neck = MODELS.build(cfg.model)
            synced = [m for m in neck.modules() if isinstance(m, torch.nn.SyncBatchNorm)]
            assert len(synced) == 2  # the neck's default norm_cfg
            synced[0].running_mean.fill_(0.5)
            keys = sorted(neck.state_dict())
            with DefaultScope.overwrite_default_scope(scope):
                model = MODEL_WRAPPERS.build(dict(cfg.model_wrapper_cfg),
                                             default_args=dict(module=neck))
            assert type(model).__name__ == 'CPUDistributedDataParallel'
            assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
            assert sorted(model.module.state_dict()) == keys
            bn = [m for m in model.modules() if isinstance(m, _BatchNorm)]
            assert len(bn) == 2 and torch.all(bn[0].running_mean == 0.5)  # statistics kept
            out = model([torch.randn(4, 4, 1, 1)])[0]
            out.sum().backward()
            assert out.shape == (4, 3) and torch.isfinite(out).all()
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize('variables, rank, size, local', [
    (dict(OMPI_COMM_WORLD_RANK='2', OMPI_COMM_WORLD_SIZE='4', OMPI_COMM_WORLD_LOCAL_RANK='1',
          PMI_RANK='0', PMI_SIZE='1', MPI_LOCALRANKID='0'), '2', '4', '1'),  # Open MPI's first
    (dict(PMI_RANK='1', PMI_SIZE='3', MPI_LOCALRANKID='1'), '1', '3', '1'),  # MPICH, Intel MPI
    ({}, '0', '1', '0')])  # not started by mpirun: one process
def test_mpi_on_cpu_takes_the_rank_of_each_mpi(variables, rank, size, local, monkeypatch):
    """Under MPICH or Intel MPI (PMI_RANK/PMI_SIZE, which is_first_rank reads too) every process
    started as rank 0 of a group of 1: N copies of one run writing the same checkpoints."""
    import os

    import torch.distributed as dist

    from genview_mm.apis import launch
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'OMPI_COMM_WORLD_RANK',
                'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK', 'PMI_RANK', 'PMI_SIZE',
                'MPI_LOCALRANKID', 'PMIX_RANK'):  # (LOCAL_RANK: the launch sets it, it stayed)
        monkeypatch.setenv(key, '')  # recorded, so what the launch sets is undone after
        monkeypatch.delenv(key)
    monkeypatch.setenv('MASTER_ADDR', 'node1')
    monkeypatch.setenv('MASTER_PORT', '29501')
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    started = []
    monkeypatch.setattr(dist, 'init_process_group', lambda **kw: started.append(kw))
    launch.init_cpu_distributed('mpi')
    assert (os.environ['RANK'], os.environ['WORLD_SIZE']) == (rank, size)
    assert os.environ['LOCAL_RANK'] == local
    assert started == [dict(backend='gloo', init_method='env://')]
    if variables:
        return
    # srun --mpi=pmix sets PMIx's rank alone: each process ran as rank 0 of 1
    monkeypatch.setenv('PMIX_RANK', '3')
    for key in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        monkeypatch.delenv(key)
    with pytest.raises(launch.OptionRefused) as exc:
        launch.init_cpu_distributed('mpi')
    assert str(exc.value) == (
        "--launcher mpi found only PMIx's PMIX_RANK=3 (srun --mpi=pmix?), not the world size: "
        'under srun use --launcher slurm (tools/slurm_train.sh), or start the job with mpirun')
    assert len(started) == 1 and 'RANK' not in os.environ


@pytest.mark.parametrize('variables', [
    dict(PMI_RANK='1', PMI_SIZE='2', MPI_LOCALRANKID='1', MASTER_ADDR='node1'),  # MPICH
    dict(OMPI_COMM_WORLD_RANK='1', OMPI_COMM_WORLD_SIZE='2',
         OMPI_COMM_WORLD_LOCAL_RANK='1')])  # Open MPI without MASTER_ADDR
def test_mpi_on_gpu_without_open_mpi_variables_is_refused(variables, monkeypatch, tmp_path):
    """On GPU MMEngine's own MPI start reads OMPI_COMM_WORLD_* and MASTER_ADDR: under MPICH
    or Intel MPI (which 757a644 made work on CPU) every rank died in a KeyError traceback,
    after rank 0's preflight; it is one line naming the launchers that work."""
    from genview_mm.apis.launch import OptionRefused
    for key in ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK',
                'PMI_RANK', 'PMI_SIZE', 'MPI_LOCALRANKID', 'MASTER_ADDR'):
        monkeypatch.delenv(key, raising=False)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    with pytest.raises(OptionRefused, match=r"^--launcher mpi on GPU needs \[.*\] in the "
                       r'environment .*tools/slurm_train\.sh$') as exc:
        prepare_cfg(Config(dict()), 'mpi', str(tmp_path / 'w'), None)
    unset = str(exc.value).split('needs ', 1)[1].split(']', 1)[0]
    assert ('MASTER_ADDR' in unset) == ('MASTER_ADDR' not in variables)
    for key, value in dict(OMPI_COMM_WORLD_RANK='1', OMPI_COMM_WORLD_SIZE='2',
                           OMPI_COMM_WORLD_LOCAL_RANK='1', MASTER_ADDR='node1').items():
        monkeypatch.setenv(key, value)
    prepare_cfg(Config(dict()), 'mpi', str(tmp_path / 'w'), None)  # mpirun -x MASTER_ADDR


RANK_ENV = ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK', 'PMI_RANK')


@pytest.mark.parametrize('variables, launcher, first', [
    (dict(RANK='0', SLURM_PROCID='1'), 'pytorch', True),  # srun torchrun: nodes numbered apart
    (dict(RANK='0', SLURM_PROCID='1'), 'none', True),     # (load_config: no launcher known)
    (dict(RANK='0', SLURM_PROCID='1'), None, True),
    (dict(RANK='3', SLURM_PROCID='0'), 'pytorch', False),
    (dict(RANK='3', SLURM_PROCID='0'), None, False),
    (dict(RANK='0', SLURM_PROCID='2'), 'slurm', False),   # MMEngine's slurm start: SLURM_PROCID
    (dict(SLURM_PROCID='0', RANK=''), 'slurm', True),
    (dict(SLURM_PROCID='1'), None, False),
    (dict(OMPI_COMM_WORLD_RANK='0', SLURM_PROCID='1'), 'mpi', True),  # mpirun in an allocation
    (dict(OMPI_COMM_WORLD_RANK='0', SLURM_PROCID='1'), None, True),
    (dict(OMPI_COMM_WORLD_RANK='2', PMI_RANK='0'), 'mpi', False),  # Open MPI's first
    (dict(PMI_RANK='1'), 'mpi', False),
    ({}, None, True), ({}, 'none', True)])
def test_the_first_rank_is_read_from_one_launchers_variable(variables, launcher, first,
                                                             monkeypatch):
    """Every variable had to be 0: torchrun started by srun (one task per node) gave RANK=0 to a
    process with SLURM_PROCID=1, so no process ran the preflight or said a warning once. The
    launcher's own variable decides, else the innermost set (RANK before SLURM_PROCID)."""
    from genview_mm.utils.dist import is_first_rank
    for key in RANK_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    assert is_first_rank(launcher) is first


@pytest.mark.parametrize('tool', ['train', 'test'])
@pytest.mark.parametrize('launcher, variables, checked', [
    ('pytorch', dict(RANK='0', SLURM_PROCID='1'), True),   # srun, one torchrun per node
    ('pytorch', dict(RANK='5', SLURM_PROCID='0'), False),
    ('slurm', dict(RANK='0', SLURM_PROCID='2'), False)])   # a RANK the slurm start overwrites
def test_the_tools_preflight_runs_on_their_launchers_first_rank(tool, launcher, variables,
                                                                checked, repo_root, monkeypatch):
    """Under ``srun torchrun``, RANK=0 ran with SLURM_PROCID=1: no rank checked the config."""
    import os.path as osp

    from genview_mm.apis import launch
    from helpers import run_script
    for key in RANK_ENV:
        monkeypatch.delenv(key, raising=False)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    ran = []

    def stop(what):
        def record(*args, **kwargs):
            ran.append(what)
            raise SystemExit(0)
        return record
    monkeypatch.setattr(launch, 'preflight_or_exit', stop('preflight'))
    monkeypatch.setattr(launch, 'prepare_cfg', stop('prepare'))
    config = osp.join(repo_root, 'configs', *(
        ['demo', 'genview_mocov2_r18_tiny_cpu.py'] if tool == 'train' else
        ['benchmarks', 'genview_mocov2_r50_linear-steplr-100e_in1k.py']))
    with pytest.raises(SystemExit):
        run_script(f'{tool}.py', config, *(['ckpt.pth'] if tool == 'test' else []),
                   '--launcher', launcher)
    assert ran == ['preflight' if checked else 'prepare']
