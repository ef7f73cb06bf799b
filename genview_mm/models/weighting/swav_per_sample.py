"""Per-sample SwAV loss computed from an upstream ``SwAVLoss``'s own components.

Upstream ``SwAVLoss.forward`` averages inside its loops, so there is no per-sample hook. This
computes the same terms without the batch mean, using the loss module's prototypes, queue and
``distributed_sinkhorn``; it updates the prototypes' normalisation and the queue exactly as a
forward call would, and ``per_sample.mean()`` equals ``SwAVLoss.forward`` (tested).

Adapted from ``mmpretrain.models.losses.SwAVLoss.forward`` (MMPretrain 1.2.0): the same
queue update, Sinkhorn codes and swapped cross-entropies, summed per sample instead of averaged.
"""
import torch
import torch.nn.functional as F
from mmpretrain.models.losses.swav_loss import distributed_sinkhorn
from torch import nn


def swav_per_sample_loss(loss: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Swapped-prediction loss of each sample, summed over all its crops.

    Sample ``i``'s term averages, over the assignment crops ``c`` and every other crop ``v``,
    the cross-entropy between ``c``'s Sinkhorn codes and ``v``'s prototype softmax.

    Args:
        loss (nn.Module): an upstream ``SwAVLoss`` (prototypes, queue, temperature, ...).
        x (torch.Tensor): (V*B, C) features, crop-major (rows ``v*B:(v+1)*B`` are crop ``v``).

    Returns:
        torch.Tensor: (B,) per-sample losses.
    """
    with torch.no_grad():
        loss.prototypes.weight.copy_(F.normalize(loss.prototypes.weight.data.clone(), dim=1))
    embedding, output = x.detach(), loss.prototypes(x)
    n_crops = int(sum(loss.num_crops))
    bs = x.size(0) // n_crops
    total = output.new_zeros(bs)
    for i, crop_id in enumerate(loss.crops_for_assign):
        with torch.no_grad():
            out = output[bs * crop_id:bs * (crop_id + 1)].detach()
            if loss.queue is not None:
                if loss.use_queue or not torch.all(loss.queue[i, -1, :] == 0):
                    loss.use_queue = True
                    out = torch.cat((torch.mm(loss.queue[i], loss.prototypes.weight.t()), out))
                loss.queue[i, bs:] = loss.queue[i, :-bs].clone()
                loss.queue[i, :bs] = embedding[crop_id * bs:(crop_id + 1) * bs]
            codes = distributed_sinkhorn(out, loss.sinkhorn_iterations, loss.world_size,
                                         loss.epsilon)[-bs:]
        sub = output.new_zeros(bs)
        for v in range(n_crops):
            if v != crop_id:
                logp = F.log_softmax(output[bs * v:bs * (v + 1)] / loss.temperature, dim=1)
                sub = sub - (codes * logp).sum(dim=1)
        total = total + sub / (n_crops - 1)
    return total / len(loss.crops_for_assign)
