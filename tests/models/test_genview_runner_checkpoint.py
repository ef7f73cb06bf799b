"""A GenView model under MMEngine's Runner: its checkpoint holds no CLIP weights, and the
telemetry reaches the message hub."""
import math

import torch
from mmengine.dataset import default_collate
from mmengine.runner import Runner
from mmpretrain.structures import DataSample
from torch.utils.data import DataLoader, Dataset

from genview_tiny import tiny_model_cfg


class PairViews(Dataset):
    """Eight random two-view samples in the layout of MMPretrain's PackInputs."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        views = [torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)
                 for _ in range(2)]
        return dict(inputs=views, data_samples=DataSample())


def test_runner_checkpoint_has_no_clip_and_logs_weights(tmp_path, tiny_clip_path,
                                                        tiny_scorer_pca):
    scorer = dict(type='PairQualityScorer', encoder=tiny_clip_path, pca_path=tiny_scorer_pca)
    runner = Runner(
        model=tiny_model_cfg('MoCo', scorer), work_dir=str(tmp_path), default_scope='mmpretrain',
        train_dataloader=DataLoader(PairViews(), batch_size=4, collate_fn=default_collate),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)))
    runner.train()
    ckpt = torch.load(tmp_path / 'iter_2.pth', map_location='cpu', weights_only=True)
    keys = list(ckpt['state_dict'])
    assert keys and all(k.split('.')[0] in ('backbone', 'neck', 'head', 'encoder_k', 'queue',
                                           'queue_ptr', 'data_preprocessor') for k in keys)
    assert not any('scorer' in k or 'vision_model' in k for k in keys)
    clip_state = runner.model.scorer.encoder.state_dict()
    assert not set(clip_state) & set(keys)
    hub = runner.message_hub
    w_mean = hub.get_scalar('train/genview_w_mean').current()
    assert abs(w_mean - 1.0) < 1e-5
    assert hub.get_scalar('train/genview_w_max').current() >= hub.get_scalar(
        'train/genview_w_min').current()
    assert 'train/genview_sf' in hub.log_scalars and 'train/genview_sb' in hub.log_scalars
    assert math.isfinite(hub.get_scalar('train/loss').current())
