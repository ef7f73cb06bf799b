"""Load a few positive pairs and score them, for :mod:`tools/visualize_pairs.py`."""
import functools
import os
import os.path as osp
import random
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
import torch

from genview_mm.models.scorers import PairQualityScorer, PairScores
from genview_mm.models.weighting import quality_weights
from genview_mm.utils.image_files import is_hidden, is_image_file
from genview_mm.visualization.pair_grid import views_to_uint8

from .config import load_config


def _load_square(path: str, size: int) -> np.ndarray:
    """Resize the short side to ``size`` and centre-crop (uint8 RGB); an image that does not
    decode is an OSError that names it."""
    from PIL import Image
    try:
        img = Image.open(path).convert('RGB')
    except OSError as exc:  # PIL's 'Truncated File Read' names no file
        raise OSError(f'{path}: {exc}' if path not in str(exc) else str(exc)) from None
    scale = size / min(img.size)
    img = img.resize((max(size, round(img.width * scale)), max(size, round(img.height * scale))),
                     Image.BICUBIC)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


Scored = Tuple[np.ndarray, np.ndarray, PairScores, torch.Tensor]


class FolderPairs(NamedTuple):
    """Images of two folders paired by file name without extension (``a/x.jpg``-``b/x.png``).

    ``pairs`` are (name in folder 1, name in folder 2), sorted by stem; ``unmatched1`` and
    ``unmatched2`` the images of each folder without a partner (or whose stem two of its
    images share, which leaves the pairing ambiguous).
    """

    pairs: List[Tuple[str, str]]
    unmatched1: List[str]
    unmatched2: List[str]


def pair_by_stem(dir1: str, dir2: str) -> FolderPairs:
    """Pair the images of ``dir1`` and ``dir2`` by file stem (see :class:`FolderPairs`)."""
    stems, unmatched = [], ([], [])
    for d, lost in zip((dir1, dir2), unmatched):
        names = sorted(f for f in os.listdir(d)  # not macOS's '._x.jpg' (not an image)
                       if is_image_file(f) and not is_hidden(f))
        by_stem = {}
        for name in names:
            by_stem.setdefault(osp.splitext(name)[0], []).append(name)
        lost += [n for group in by_stem.values() if len(group) > 1 for n in group]
        stems.append({s: group[0] for s, group in by_stem.items() if len(group) == 1})
    common = sorted(set(stems[0]) & set(stems[1]))
    for side, lost in zip(stems, unmatched):
        lost += [name for s, name in side.items() if s not in stems[0] or s not in stems[1]]
    return FolderPairs([(stems[0][s], stems[1][s]) for s in common], sorted(unmatched[0]),
                       sorted(unmatched[1]))


def score_folders(dir1: str, dir2: str, scorer: PairQualityScorer, num: int = 8,
                  gamma: float = 1.0, device: str = 'cpu') -> Scored:
    """Pair images of two folders by file name (:func:`pair_by_stem`) and score the first
    ``num`` pairs on ``device`` (the scorer is moved there).

    Returns:
        tuple: the (N, S, S, 3) uint8 views of each side, their scores and their weights
        ``N * softmax(gamma * q)`` over these N pairs.
    """
    pairs = pair_by_stem(dir1, dir2).pairs[:num]
    if not pairs:
        raise ValueError(f'{dir1!r} and {dir2!r} have no images of the same name (x.jpg in one '
                         'pairs with x.* in the other)')
    names = list(zip(*pairs))
    size = scorer.encoder.input_size
    imgs = [np.stack([_load_square(osp.join(d, f), size) for f in fs])
            for d, fs in zip((dir1, dir2), names)]
    raw = [torch.from_numpy(a).permute(0, 3, 1, 2).float().to(device) for a in imgs]
    scores = scorer.to(device)(raw[0], raw[1], data_preprocessor=None)
    scores = PairScores(*(t.cpu() for t in scores))  # back on the CPU for the picture
    return imgs[0], imgs[1], scores, quality_weights(scores.q, gamma).weights


def _keeps_random_state(fn):
    """``fn`` with its caller's Python, numpy and torch (CPU) random states restored after it."""
    @functools.wraps(fn)
    def kept(*args, **kwargs):
        states = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            try:
                return fn(*args, **kwargs)
            finally:
                random.setstate(states[0])
                np.random.set_state(states[1])
    return kept


@_keeps_random_state  # a library call: the model's init and the seeded crops are its own
def score_config_samples(config: str, num: int = 8, checkpoint: Optional[str] = None,
                         device: str = 'cpu', cfg_options: Optional[dict] = None,
                         seed: Optional[int] = None) -> Scored:
    """Build a GenView config's model and training set; score its first ``num`` pairs and
    weight them with the model's rule (over these pairs, as on one GPU). The same seed draws
    the same crops, so the same pairs and numbers (with or without ``checkpoint``).

    Args:
        config (str): a GenView pretraining config (its model has a ``scorer``).
        num (int): number of samples. Defaults to 8.
        checkpoint (str, optional): SSL checkpoint to load into the model (the frozen scorer
            does not depend on it). Defaults to None.
        device (str): device to score on. Defaults to 'cpu'.
        cfg_options (dict, optional): settings that override the config's (``--cfg-options``).
            Defaults to None.
        seed (int, optional): the seed of the random crops. Defaults to the config's
            ``randomness.seed``, else 0.
    """
    from mmengine.dataset import default_collate
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import DATASETS, MODELS

    cfg = load_config(config, cfg_options)
    if seed is None:
        seed = (cfg.get('randomness') or {}).get('seed') or 0
    if not (isinstance(seed, int) and 0 <= seed < 2 ** 32):  # numpy's range
        raise ValueError(f"the seed must be an integer in [0, 2**32 - 1] (--seed, or the "
                         f"config's randomness.seed), got {seed!r}")
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = MODELS.build(cfg.model).to(device).eval()
    if getattr(model, 'scorer', None) is None:
        raise ValueError(f'{config!r} has no GenView scorer (model.scorer); use a GenView config '
                         'or --view1-dir/--view2-dir with --encoder and --pca.')
    if checkpoint:  # read as the other tools read them: a damaged file is one clear line
        from mmengine.runner.checkpoint import load_state_dict

        from ..evaluation.checkpoint_io import read_checkpoint
        from ..evaluation.convert import state_dict_of
        state = state_dict_of(read_checkpoint(checkpoint))
        if not set(state) & set(model.state_dict()):  # hundreds of 'missing keys', then exit 0
            raise ValueError(f'{checkpoint} holds no weights of the model {config!r} builds '
                             f'(its keys: {", ".join(list(state)[:3]) or "none"}): pass a '
                             'checkpoint this config trained')
        load_state_dict(model, state, strict=False)
    try:
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
    except RuntimeError as exc:  # MMPretrain's 'Found 0 files in subfolders of ...'
        raise ValueError(f'the train dataset of {config!r} cannot be built: '
                         f'{str(exc).splitlines()[0]}') from None
    if not len(dataset):
        raise ValueError(f'the train dataset of {config!r} has no images')
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)
    batch = default_collate([dataset[i] for i in range(min(num, len(dataset)))])
    data = model.data_preprocessor(batch, False)
    v1, v2 = model.pair_views(data['inputs'])
    scores = model.scorer(v1, v2, data_preprocessor=model.data_preprocessor)
    weights = quality_weights(scores.q, model.gamma).weights
    mean, std, bgr = model.scorer._ssl_normalisation(model.data_preprocessor)
    return (views_to_uint8(v1, mean, std, bgr), views_to_uint8(v2, mean, std, bgr), scores,
            weights)
