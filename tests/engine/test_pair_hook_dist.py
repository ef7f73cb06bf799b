"""GenViewPairHook's run checks over 2 CPU processes (gloo): the processes decide together, so
that all stop at one iteration; one stopping alone left the others waiting in their next
collective (under plain srun until the collective timed out)."""
import json
import os
from types import SimpleNamespace

import torch
import torch.distributed as dist
from mmengine.logging import MessageHub
from mmengine.structures import BaseDataElement

from genview_mm.engine import RunCheckFailed
from genview_mm.engine.hooks.genview_pair_hook import GenViewPairHook
from helpers import free_port
from helpers.dist import init_gloo, run_processes


def _stops_at(hook, runner, batches) -> dict:
    """The iteration and message at which ``hook`` stopped the run fed ``batches`` of
    ``(data_batch, nonfinite)``, or None."""
    for i, (data_batch, nonfinite) in enumerate(batches):
        runner.iter = i
        try:
            hook.after_train_iter(runner, i, data_batch,
                                  dict(genview_nonfinite=torch.tensor(float(nonfinite))))
        except RunCheckFailed as exc:
            return dict(iter=i, message=str(exc).split('.')[0])
    return dict(iter=None, message=None)


def _worker(rank: int, world: int, port: int, out_dir: str):
    init_gloo(rank, world, port)
    try:
        hub = MessageHub(f'dist-hook-{rank}')
        runner = SimpleNamespace(logger=SimpleNamespace(info=print, warning=print),
                                 message_hub=hub, iter=0)
        # rank 1's generated views all fail to read, rank 0's all read: 10 of 20 together
        views = [BaseDataElement(genview_slot=-1 if rank else 0, genview_noise_level=300,
                                 genview_fallback=bool(rank)) for _ in range(10)]
        fallbacks = GenViewPairHook(max_fallback_fraction=0.4, fallback_window=40)
        fallbacks._expects_fields = True
        got = dict(fallbacks=_stops_at(fallbacks, runner, [(dict(data_samples=views), 0)] * 8))
        # rank 1's scorer gives 2 non-finite scores an iteration, rank 0's none
        scores = GenViewPairHook(max_unweighted=3)
        got['scores'] = _stops_at(scores, runner, [({}, 2 * rank)] * 8)
        # normalize='global': each rank counts the 3 non-finite scores of the global batch
        runner.model = SimpleNamespace(normalize='global')
        got['global'] = _stops_at(GenViewPairHook(max_unweighted=2), runner, [({}, 3)] * 8)
        with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(got, f)
    finally:
        dist.destroy_process_group()


def _resume_worker(rank: int, world: int, port: int, out_dir: str):
    """A resumed run whose saved window held unreadable views; rank 1's start check finds one
    of its sampled view files unreadable, rank 0's reads all of its own."""
    from mmpretrain.datasets import CustomDataset

    from helpers.data import photos_with_views
    init_gloo(rank, world, port)
    try:
        data = photos_with_views(os.path.join(out_dir, f'rank{rank}'), 6, 24, ext='.png')
        if rank:
            os.remove(os.path.join(data.gen_dir, sorted(os.listdir(data.gen_dir))[0]))
        dataset = CustomDataset(data_root=data.src_root, with_label=False, pipeline=[dict(
            type='GenViewPairDataset', manifest=data.manifest, transforms=[[]])])
        hub = MessageHub(f'dist-resume-{rank}')
        hub.update_scalar('train/genview_fallbacks', 5.0)  # a resume: the hub's count
        runner = SimpleNamespace(logger=SimpleNamespace(info=print, warning=print),
                                 message_hub=hub, iter=0,
                                 train_dataloader=SimpleNamespace(dataset=dataset))
        hook = GenViewPairHook(fallback_window=8)
        hook.after_load_checkpoint(runner, dict(meta=dict(genview_pair_hook=dict(
            window=[6, 5], unweighted=0))))
        hook.before_train(runner)
        with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(hook._window, f)
    finally:
        dist.destroy_process_group()


def test_a_resume_forgets_the_saved_window_on_every_process_or_none(tmp_path):
    """Each process decided alone whether the views were restored (every sampled view file
    read): with a view unreadable on one node only, the windows differed and that process
    could stop alone, the others waiting in their next collective."""
    run_processes(_resume_worker, (2, free_port(), str(tmp_path)), timeout=90)
    windows = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in range(2)]
    assert windows == [[6, 5], [6, 5]]


def test_processes_stop_together(tmp_path):
    run_processes(_worker, (2, free_port(), str(tmp_path)), timeout=90)
    got = [json.loads((tmp_path / f'rank{r}.json').read_text()) for r in range(2)]
    assert got[0] == got[1]  # the same iteration and message on both ranks
    assert got[0]['fallbacks'] == dict(
        iter=1, message='GenView: 20 of the last 40 generated views drawn could not be read '
        '(missing, empty or undecodable files; counted in train/genview_fallbacks), so their '
        'images trained on the original (plain SSL)')
    assert got[0]['scores'] == dict(
        iter=2, message='GenView: 2 pair score(s) of iteration 3 were not finite, so its batch '
        'trained with uniform weights (the upstream loss; counted in train/genview_nonfinite), '
        'and so did the 2 before it: the run is training the upstream loss, not GenView\'s')
    assert got[0]['global'] == dict(  # 3 scores, counted once (not once per rank: 6)
        iter=1, message='GenView: 3 pair score(s) of iteration 2 were not finite, so its batch '
        'trained with uniform weights (the upstream loss; counted in train/genview_nonfinite), '
        'and so did the 1 before it: the run is training the upstream loss, not GenView\'s')
