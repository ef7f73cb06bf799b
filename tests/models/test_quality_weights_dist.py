"""Global weight normalisation over 2 CPU processes (gloo) equals one process on the full batch."""
import datetime
import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genview_mm.models.weighting import quality_weights
from genview_mm.utils.dist import gather_variable


def _run_two(fn, args: tuple, timeout: float = 150.0) -> None:
    """Run ``fn(rank, *args)`` in 2 forked processes (they inherit the imported modules instead
    of re-importing mmpretrain); fail instead of hanging if they do not finish in time."""
    context = mp.start_processes(fn, args=args, nprocs=2, join=False, start_method='fork')
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            raise TimeoutError(f'2-process run did not finish in {timeout} s')


def _init(rank: int, world: int, port: int) -> None:
    torch.set_num_threads(1)  # OpenMP pools do not survive fork (as in DataLoader workers)
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))  # fail, never hang


def _worker(rank: int, world: int, port: int, q_full: torch.Tensor, sizes, out_dir: str):
    _init(rank, world, port)
    try:
        start = sum(sizes[:rank])
        q_local = q_full[start:start + sizes[rank]]
        w_global, bad = quality_weights(q_local, gamma=1.5, normalize='global')
        w_local, _ = quality_weights(q_local, gamma=1.5, normalize='local')
        gathered, offset = gather_variable(w_global)
        torch.save(dict(w_global=w_global, w_local=w_local, bad=bad, gathered=gathered,
                        offset=offset), os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_global_normalisation_matches_single_process(tmp_path):
    torch.manual_seed(0)
    sizes = [3, 5]  # uneven local batches are supported too
    q_full = torch.randn(sum(sizes))
    _run_two(_worker, (2, _free_port(), q_full, sizes, str(tmp_path)))
    results = [torch.load(tmp_path / f'rank{r}.pth') for r in range(2)]
    reference, _ = quality_weights(q_full, gamma=1.5, normalize='local')
    merged = torch.cat([r['w_global'] for r in results])
    torch.testing.assert_close(merged, reference, atol=1e-6, rtol=0)
    assert abs(merged.mean().item() - 1.0) < 1e-6
    assert [r['offset'] for r in results] == [0, 3]
    torch.testing.assert_close(results[0]['gathered'], merged)
    # local normalisation depends on the split: each rank's own mean is 1
    for r, n in zip(results, sizes):
        assert abs(r['w_local'].mean().item() - 1.0) < 1e-6 and r['w_local'].numel() == n
        assert r['bad'] == 0
    assert not torch.allclose(torch.cat([r['w_local'] for r in results]), reference)


def _simclr_worker(rank: int, world: int, port: int, model_cfg: dict, out_dir: str):
    from mmpretrain.registry import MODELS

    from genview_tiny import tiny_batch
    _init(rank, world, port)
    try:
        torch.manual_seed(0)
        model = MODELS.build(model_cfg)
        data = model.data_preprocessor(tiny_batch('SimCLR', n=3, seed=rank), True)
        losses = model(**data, mode='loss')
        losses['loss'].backward()
        scores = model.scorer(*data['inputs'], data_preprocessor=model.data_preprocessor)
        weights = quality_weights(scores.q, model.gamma, model.normalize).weights
        torch.save(dict(loss=losses['loss'].detach(), w=weights,
                        grad=model.backbone.conv1.weight.grad.abs().sum()),
                   os.path.join(out_dir, f'simclr{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_simclr_two_processes_global_weights(tmp_path, tiny_clip_path, tiny_clip_pca_path):
    from mmpretrain.registry import MODELS

    from genview_tiny import tiny_batch, tiny_model_cfg
    scorer = dict(type='PairQualityScorer', encoder=tiny_clip_path, pca_path=tiny_clip_pca_path)
    model_cfg = dict(tiny_model_cfg('SimCLR', scorer), normalize='global')
    _run_two(_simclr_worker, (2, _free_port(), model_cfg, str(tmp_path)))
    results = [torch.load(tmp_path / f'simclr{r}.pth') for r in range(2)]
    model = MODELS.build(model_cfg)
    views = [model.data_preprocessor(tiny_batch('SimCLR', n=3, seed=r), True)['inputs']
             for r in range(2)]
    single = model.scorer(torch.cat([views[0][0], views[1][0]]),
                          torch.cat([views[0][1], views[1][1]]), model.data_preprocessor)
    # global normalisation over 2 ranks = one rank holding the whole batch
    torch.testing.assert_close(torch.cat([r['w'] for r in results]),
                               quality_weights(single.q, 1.0, 'local').weights,
                               atol=1e-5, rtol=0)
    for r in results:
        assert torch.isfinite(r['loss']) and r['grad'] > 0
    # every rank computes NT-Xent over the same 2 * N_global rows with the same weights
    assert abs(results[0]['loss'].item() - results[1]['loss'].item()) < 1e-5
