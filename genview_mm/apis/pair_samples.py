"""Load a few positive pairs and score them, for :mod:`tools/visualize_pairs.py`."""
import os
import os.path as osp
from typing import Optional, Tuple

import numpy as np
import torch

from genview_mm.models.scorers import PairQualityScorer, PairScores
from genview_mm.models.weighting import quality_weights
from genview_mm.utils.image_files import IMAGE_EXTENSIONS
from genview_mm.visualization.pair_grid import views_to_uint8

from .config import load_config


def _load_square(path: str, size: int) -> np.ndarray:
    """Resize the short side to ``size`` and centre-crop (uint8 RGB)."""
    from PIL import Image
    img = Image.open(path).convert('RGB')
    scale = size / min(img.size)
    img = img.resize((max(size, round(img.width * scale)), max(size, round(img.height * scale))),
                     Image.BICUBIC)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


Scored = Tuple[np.ndarray, np.ndarray, PairScores, torch.Tensor]


def score_folders(dir1: str, dir2: str, scorer: PairQualityScorer, num: int = 8,
                  gamma: float = 1.0) -> Scored:
    """Pair images of two folders by sorted file name and score the first ``num`` pairs.

    Returns:
        tuple: the (N, S, S, 3) uint8 views of each side, their scores and their weights
        ``N * softmax(gamma * q)`` over these N pairs.
    """
    names = [sorted(f for f in os.listdir(d) if f.lower().endswith(IMAGE_EXTENSIONS))[:num]
             for d in (dir1, dir2)]
    if not names[0] or len(names[0]) != len(names[1]):
        raise ValueError(f'{dir1!r} and {dir2!r} must hold the same number (>0) of images')
    size = scorer.encoder.input_size
    imgs = [np.stack([_load_square(osp.join(d, f), size) for f in fs])
            for d, fs in zip((dir1, dir2), names)]
    raw = [torch.from_numpy(a).permute(0, 3, 1, 2).float() for a in imgs]
    scores = scorer(raw[0], raw[1], data_preprocessor=None)
    return imgs[0], imgs[1], scores, quality_weights(scores.q, gamma).weights


def score_config_samples(config: str, num: int = 8, checkpoint: Optional[str] = None,
                         device: str = 'cpu') -> Scored:
    """Build a GenView config's model and training set; score its first ``num`` pairs and
    weight them with the model's rule (over these pairs, as on one GPU).

    Args:
        config (str): a GenView pretraining config (its model has a ``scorer``).
        num (int): number of samples. Defaults to 8.
        checkpoint (str, optional): SSL checkpoint to load into the model (the frozen scorer
            does not depend on it). Defaults to None.
        device (str): device to score on. Defaults to 'cpu'.
    """
    from mmengine.dataset import default_collate
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS, MODELS

    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model).to(device).eval()
    if getattr(model, 'scorer', None) is None:
        raise ValueError(f'{config!r} has no GenView scorer (model.scorer); use a GenView config '
                         'or --view1-dir/--view2-dir with --encoder and --pca.')
    if checkpoint:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, checkpoint, map_location=device, strict=False)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    batch = default_collate([dataset[i] for i in range(min(num, len(dataset)))])
    data = model.data_preprocessor(batch, False)
    v1, v2 = model.pair_views(data['inputs'])
    scores = model.scorer(v1, v2, data_preprocessor=model.data_preprocessor)
    weights = quality_weights(scores.q, model.gamma).weights
    mean, std, bgr = model.scorer._ssl_normalisation(model.data_preprocessor)
    return (views_to_uint8(v1, mean, std, bgr), views_to_uint8(v2, mean, std, bgr), scores,
            weights)
