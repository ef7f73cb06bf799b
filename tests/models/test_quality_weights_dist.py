"""quality_weights(normalize='global') over 2 CPU processes (gloo): equal to one process on the
full batch, also inside GenView SimCLR's loss."""
import os

import torch
import torch.distributed as dist

from genview_mm.models.weighting import quality_weights
from genview_mm.utils.dist import gather_variable
from helpers import free_port
from helpers.dist import init_gloo, run_processes


def _worker(rank: int, world: int, port: int, q_full: torch.Tensor, sizes, out_dir: str):
    init_gloo(rank, world, port)
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


def test_global_normalisation_matches_single_process(tmp_path):
    torch.manual_seed(0)
    sizes = [3, 5]  # uneven local batches are supported too
    q_full = torch.randn(sum(sizes))
    run_processes(_worker, (2, free_port(), q_full, sizes, str(tmp_path)))
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
    init_gloo(rank, world, port)
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


def test_simclr_two_processes_global_weights(tmp_path, tiny_clip_path, tiny_scorer_pca):
    from mmpretrain.registry import MODELS

    from genview_tiny import tiny_batch, tiny_model_cfg
    scorer = dict(type='PairQualityScorer', encoder=tiny_clip_path, pca_path=tiny_scorer_pca)
    model_cfg = dict(tiny_model_cfg('SimCLR', scorer), normalize='global')
    run_processes(_simclr_worker, (2, free_port(), model_cfg, str(tmp_path)))
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
