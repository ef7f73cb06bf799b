"""Weighted k-nearest-neighbour classification of frozen features: the vote of Wu et al.,
CVPR 2018 ("Unsupervised Feature Learning via Non-Parametric Instance Discrimination", InstDisc),
with k=20 by default as DINO reports it (InstDisc itself used k=200: pass it).

Pure functions on tensors: :func:`pool_features` turns backbone outputs into L2-normalised
vectors, :func:`knn_predict` votes with weights ``exp(cos / T)`` over the ``k`` most similar
training features, :func:`knn_top1` scores the votes.
"""
from typing import Sequence, Union

import torch
import torch.nn.functional as F


def pool_features(feats: Union[torch.Tensor, Sequence[torch.Tensor]]) -> torch.Tensor:
    """Global-pool the last backbone output and L2-normalise it.

    Args:
        feats: a tensor or the backbone's tuple of outputs (the last one is used):
            (B, C, H, W) maps are average pooled, (B, N, C) tokens averaged, (B, C) kept.

    Returns:
        torch.Tensor: (B, C) unit vectors (float32).
    """
    x = feats[-1] if isinstance(feats, (list, tuple)) else feats
    if isinstance(x, (list, tuple)):  # e.g. ViT outputs (patch_tokens, cls_token)
        x = x[-1]
    if x.dim() == 4:
        x = x.mean(dim=(2, 3))
    elif x.dim() == 3:
        x = x.mean(dim=1)
    elif x.dim() != 2:
        raise ValueError(f'cannot pool backbone output of shape {tuple(x.shape)}')
    return F.normalize(x.float(), dim=1)


def knn_predict(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
                num_classes: int, k: int = 20, temperature: float = 0.07,
                chunk_size: int = 1024) -> torch.Tensor:
    """Class scores of a weighted kNN vote.

    Args:
        train_feats (Tensor): (N, C) features of the labelled memory bank (L2-normalised
            here: the vote is over cosine similarities).
        train_labels (Tensor): (N,) integer labels.
        test_feats (Tensor): (M, C) features to classify (L2-normalised here).
        num_classes (int): number of classes.
        k (int): neighbours. Defaults to 20.
        temperature (float): T in ``exp(cos / T)``. Defaults to 0.07.
        chunk_size (int): test rows per similarity block. Defaults to 1024.

    Returns:
        Tensor: (M, num_classes) summed neighbour weights ``exp((cos - cos_1) / T)``, where
        ``cos_1`` is the row's nearest similarity: ``exp(cos / T)`` over a constant per row (the
        same vote, finite for any T > 0).
    """
    if train_feats.shape[0] != train_labels.shape[0]:
        raise ValueError('train_feats and train_labels differ in length')
    if not train_feats.shape[0]:  # no neighbours: every query voted for class 0
        raise ValueError('the memory bank is empty: a kNN vote needs labelled train features')
    low, high = (int(train_labels.min()), int(train_labels.max())) if train_labels.numel() \
        else (0, -1)
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise ValueError(f'train label {bad} is outside 0..{num_classes - 1} '
                         f'(num_classes={num_classes})')
    k = min(k, train_feats.shape[0])
    # unit vectors (a no-op for pool_features' output): raw features would overflow exp(dot / T);
    # float32: exp(cos / 0.07) overflows float16 (AMP features) above cos ~0.78
    train_feats = F.normalize(train_feats.float(), dim=1)
    test_feats = F.normalize(test_feats.float(), dim=1)
    labels = train_labels.long().to(train_feats.device)
    scores = []
    for start in range(0, test_feats.shape[0], chunk_size):
        sim = test_feats[start:start + chunk_size] @ train_feats.t()  # (m, N)
        top_sim, top_idx = sim.topk(k, dim=1)
        # each row's votes scaled by exp(-max / T): the same argmax, and no overflow to inf
        # (a tie picking class 0) once cos / T > 88.7, i.e. for any T below ~0.0113
        weights = ((top_sim - top_sim[:, :1]) / temperature).exp()
        votes = torch.zeros(sim.shape[0], num_classes, device=sim.device, dtype=weights.dtype)
        votes.scatter_add_(1, labels[top_idx], weights)
        scores.append(votes)
    return torch.cat(scores) if scores else test_feats.new_zeros(0, num_classes)


def knn_hits(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
             test_labels: torch.Tensor, num_classes: int, k: int = 20,
             temperature: float = 0.07) -> int:
    """How many of ``test_feats`` :func:`knn_predict` labels right (0 for none)."""
    if test_feats.shape[0] == 0:
        return 0
    scores = knn_predict(train_feats, train_labels, test_feats, num_classes, k, temperature)
    return int((scores.argmax(dim=1).cpu() == test_labels.long().cpu()).sum())


def knn_top1(train_feats: torch.Tensor, train_labels: torch.Tensor, test_feats: torch.Tensor,
             test_labels: torch.Tensor, num_classes: int, k: int = 20,
             temperature: float = 0.07) -> float:
    """Top-1 accuracy (percent) of :func:`knn_predict`."""
    if test_feats.shape[0] == 0:
        raise ValueError('no test features to classify')
    return 100.0 * knn_hits(train_feats, train_labels, test_feats, test_labels, num_classes, k,
                            temperature) / test_feats.shape[0]
